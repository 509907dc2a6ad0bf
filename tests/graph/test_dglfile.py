"""graph.dglfile writes DGL's graph.dgl itself: the same bytes as dgl.save_graphs, readable by dgl."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from graph.dglfile import write_forward_graph


def _edges(names, nu, nt, sizes, seed):
    rng = np.random.default_rng(seed)
    parts = [(rng.integers(0, nu, s).astype(np.int32), rng.integers(0, nt, s).astype(np.int32),
              rng.integers(0, 2**40, s).astype(np.int64), rng.integers(1, 9, s).astype(np.int32)) for s in sizes]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    src, dst, time, count = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return bounds, src, dst, time, count


def _dgl_reference(path, names, nu, nt, bounds, src, dst, time, count):
    """dgl's own save of the same graph (built by dgl.heterograph, as load_dgl's fallback does)."""
    import dgl

    from graph.writer import _forward_graph

    g = _forward_graph((bounds, src, dst, time, count), names, nu, nt)
    dgl.save_graphs(str(path), [g.formats("coo")])
    return g


CASES = [
    (["fav", "rt"], 7, 11, [3, 1]),
    (["rt", "fav", "Zq", "reply"], 13, 5, [5, 0, 2, 7]),  # unsorted names, an empty relation
    (["only"], 3, 4, [1]),
    (["fav", "retweet", "reply", "quote"], 5000, 20000, [40000, 9000, 3000, 100]),
]


@pytest.mark.parametrize("names,nu,nt,sizes", CASES)
def test_bytes_equal_dgl_save_graphs(tmp_path, names, nu, nt, sizes):
    edges = _edges(names, nu, nt, sizes, seed=len(names))
    _dgl_reference(tmp_path / "dgl.dgl", names, nu, nt, *edges)
    write_forward_graph(tmp_path / "ours.dgl", names, nu, nt, *edges)
    theirs, ours = (tmp_path / "dgl.dgl").read_bytes(), (tmp_path / "ours.dgl").read_bytes()
    assert len(ours) == len(theirs)
    # DGL leaves the rest of its 4 KiB header block uninitialised: compare the header fields and
    # everything after the block
    assert ours[:32] == theirs[:32] and ours[4096:] == theirs[4096:]
    assert ours[32:4096] == bytes(4096 - 32)


@pytest.mark.parametrize("names,nu,nt,sizes", CASES[:2])
def test_dgl_loads_our_file_back(tmp_path, names, nu, nt, sizes):
    import dgl

    edges = _edges(names, nu, nt, sizes, seed=7)
    ref = _dgl_reference(tmp_path / "dgl.dgl", names, nu, nt, *edges)
    write_forward_graph(tmp_path / "ours.dgl", names, nu, nt, *edges)
    g = dgl.load_graphs(str(tmp_path / "ours.dgl"))[0][0]
    assert g.canonical_etypes == ref.canonical_etypes and g.idtype == ref.idtype
    assert {t: g.num_nodes(t) for t in g.ntypes} == {"user": nu, "tweet": nt}
    for et in ref.canonical_etypes:
        assert [x.tolist() for x in g.edges(etype=et)] == [x.tolist() for x in ref.edges(etype=et)]
        for k in ("time", "count"):
            got, want = g.edges[et].data[k], ref.edges[et].data[k]
            assert got.dtype == want.dtype and got.tolist() == want.tolist()


def test_rejects_bad_input(tmp_path):
    bounds, src, dst, time, count = _edges(["a"], 3, 3, [2], seed=0)
    with pytest.raises(ValueError, match="distinct"):
        write_forward_graph(tmp_path / "x.dgl", ["a", "a"], 3, 3, np.array([0, 1, 2]), src, dst, time, count)
    with pytest.raises(ValueError, match="at least one"):
        write_forward_graph(tmp_path / "x.dgl", [], 3, 3, np.array([0]), src[:0], dst[:0], time[:0], count[:0])


def test_graph_build_imports_neither_dgl_nor_torch(tmp_path):
    """The build writes graph.dgl itself; dgl (and torch with it) stays out of its process."""
    log = tmp_path / "log.csv"
    log.write_text("user_id,tweet_id,engagement,timestamp\nu1,t1,fav,1\nu2,t1,retweet,2\nu1,t2,fav,3\n")
    code = ("import sys; from coengage.cli import main; "
            f"rc = main(['graph', 'build', '--log', {str(log)!r}, '--out', {str(tmp_path / 'g')!r}]); "
            "print(rc, 'dgl' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["0", "False", "False"]
    assert (tmp_path / "g" / "graph.dgl").stat().st_size > 4096
