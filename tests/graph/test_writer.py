"""graph.writer: the Numba de-duplication and CSR kernels agree with a pandas reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graph.writer import _hash_strings, canonical_edges, transpose_csr, user_tweet_csr, write_graph


def _random_rows(rng, n, nu, nt, nr):
    return (rng.integers(0, nu, n), rng.integers(0, nt, n), rng.integers(0, nr, n),
            rng.integers(1_000, 1_100, n))


def _reference(u, t, e, tm, c=None):
    df = pd.DataFrame({"u": u, "t": t, "e": e, "tm": tm, "c": np.ones(len(u), np.int64) if c is None else c})
    g = df.groupby(["u", "t", "e"], sort=True).agg(tm=("tm", "max"), c=("c", "sum")).reset_index()
    return g


@pytest.mark.parametrize("seed,nu", [(0, 40), (1, 40), (2, 40), (0, 2000)])
def test_canonical_edges_match_pandas_groupby(seed, nu):
    rng = np.random.default_rng(seed)  # nu=40: long per-user runs (argsort); 2000: short ones (insertion sort)
    u, t, e, tm = _random_rows(rng, 5000, nu, 60, 3)
    cu, ct, ce, ctm, cc, merged = canonical_edges(u, t, e, tm, num_users=nu, num_tweets=60, num_types=3)
    ref = _reference(u, t, e, tm)
    np.testing.assert_array_equal(cu, ref["u"])
    np.testing.assert_array_equal(ct, ref["t"])
    np.testing.assert_array_equal(ce, ref["e"])
    np.testing.assert_array_equal(ctm, ref["tm"])
    np.testing.assert_array_equal(cc, ref["c"])
    assert merged == 5000 - len(ref)
    assert cu.dtype == np.int32 and ct.dtype == np.int32 and ce.dtype == np.int8 and ctm.dtype == np.int64


def test_counts_are_summed_when_given():
    u, t, e, tm = [0, 0, 1], [2, 2, 0], [0, 0, 0], [5, 9, 1]
    _, _, _, ctm, cc, merged = canonical_edges(u, t, e, tm, counts=[3, 4, 1], num_users=2, num_tweets=3, num_types=1)
    assert ctm.tolist() == [9, 1] and cc.tolist() == [7, 1] and merged == 1


def test_transpose_is_sorted_by_tweet_user_etype():
    rng = np.random.default_rng(5)
    u, t, e, tm = _random_rows(rng, 3000, 30, 20, 2)
    ut, _ = user_tweet_csr(u, t, e, tm, num_users=30, num_tweets=20, num_types=2)
    tu = transpose_csr(ut, 20)
    ref = _reference(u, t, e, tm).sort_values(["t", "u", "e"])
    rows = np.repeat(np.arange(20), np.diff(tu.indptr))
    np.testing.assert_array_equal(rows, ref["t"])
    np.testing.assert_array_equal(tu.indices, ref["u"])
    np.testing.assert_array_equal(tu.etype, ref["e"])
    np.testing.assert_array_equal(tu.time, ref["tm"])
    np.testing.assert_array_equal(tu.count, ref["c"])


def test_out_of_range_ids_are_rejected():
    with pytest.raises(ValueError, match="tweet ids"):
        user_tweet_csr([0], [5], [0], [1], num_users=1, num_tweets=5, num_types=1)


def test_hash_strings_equals_per_value_sha256():
    import hashlib

    values = ["a", "bé", "", "x\x00"]
    h = hashlib.sha256()
    for v in values:
        h.update(v.encode("utf-8") + b"\x00")
    assert _hash_strings(values) == h.hexdigest()[:16]


def test_write_graph_accepts_arrow_and_integer_ids(tmp_path):
    import pyarrow as pa

    g = write_graph(tmp_path / "g", user_ids=pa.array(["a", "b"]), tweet_ids=[10, 11, 12], users=[0, 1, 1],
                    tweets=[2, 0, 0], etypes=[0, 0, 0], times=[1, 2, 3], relations=["fav"], write_dgl_binary=False)
    assert g.user_ids.tolist() == ["a", "b"]
    assert g.tweet_ids.tolist() == ["10", "11", "12"]
    assert g.manifest["duplicates_merged"] == 1
    assert np.asarray(g.csr("user_tweet").count).tolist() == [1, 2]



def test_a_failed_background_write_leaves_the_old_artifact_and_no_temporary(tmp_path, monkeypatch):
    """The user->tweet CSR is saved by a second thread while the transpose runs: its error
    reaches the caller, and the atomic write leaves the previous artifact as it was."""
    import graph.writer as writer

    args = dict(user_ids=["a", "b"], tweet_ids=["x", "y"], users=[0, 1], tweets=[1, 0], etypes=[0, 0], times=[1, 2],
                relations=["fav"], write_dgl_binary=False)
    old = write_graph(tmp_path / "g", **args)
    before = sorted(p.name for p in tmp_path.iterdir())

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "save_csr", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_graph(tmp_path / "g", **{**args, "users": [1, 1]})
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no .tmp-<pid> directory left
    assert np.asarray(old.csr("user_tweet").indptr).tolist() == [0, 1, 2]

@pytest.mark.parametrize("seed", [3, 4])
def test_parallel_parts_give_the_serial_result(monkeypatch, seed):
    """The counting sorts cut the rows into one part per thread; any cut gives the same CSRs."""
    import graph.writer as writer

    rng = np.random.default_rng(seed)
    u, t, e, tm = _random_rows(rng, 4000, 50, 70, 3)
    c = rng.integers(1, 5, 4000)
    serial = user_tweet_csr(u, t, e, tm, counts=c, num_users=50, num_tweets=70, num_types=3)
    serial_t = transpose_csr(serial[0], 70)
    monkeypatch.setattr(writer, "_MIN_ROWS_PER_PART", 1)
    monkeypatch.setattr(writer, "_n_parts", lambda n: 7)  # more parts than threads, uneven cuts
    parts = user_tweet_csr(u, t, e, tm, counts=c, num_users=50, num_tweets=70, num_types=3)
    parts_t = transpose_csr(parts[0], 70)
    assert parts[1] == serial[1]
    for a, b in ((serial[0], parts[0]), (serial_t, parts_t)):
        for f in ("indptr", "indices", "etype", "time", "count"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    ref = _reference(u, t, e, tm, c)
    np.testing.assert_array_equal(parts[0].count, ref["c"])
    np.testing.assert_array_equal(parts[0].time, ref["tm"])
    # the edges grouped by type for graph.dgl: a stable sort by etype of the user-ordered edges
    ut = parts[0]
    bounds, src, dst, t_out, c_out = writer._edges_by_type(ut, 3)
    rows = np.repeat(np.arange(50), np.diff(ut.indptr))
    order = np.argsort(ut.etype, kind="stable")
    np.testing.assert_array_equal(bounds, np.concatenate([[0], np.cumsum(np.bincount(ut.etype, minlength=3))]))
    for got, want in ((src, rows), (dst, ut.indices), (t_out, ut.time), (c_out, ut.count)):
        np.testing.assert_array_equal(got, np.asarray(want)[order])


def test_id_array_hash_equals_string_hash():
    """The fingerprint hashes arrow id arrays from their buffers: same digest as the strings."""
    import pyarrow as pa

    from graph.writer import _hash_id_array

    values = ["a", "bé", "", "x y", "0" * 50]
    assert _hash_id_array(pa.array(values)) == _hash_strings(values)
    assert _hash_id_array(pa.array(["q"] + values).slice(1)) == _hash_strings(values)
    assert _hash_id_array(pa.array(values, pa.large_string())) == _hash_strings(values)
    assert _hash_id_array(pa.array([], pa.string())) == _hash_strings([])


def test_scratch_reuse_gives_the_same_transpose_and_grouping():
    """write_graph reuses the CSR build's grouping buffers for the transpose and the per-type
    grouping (graph.writer._Scratch): the arrays must equal freshly allocated ones."""
    from graph.writer import _edges_by_type, _Scratch, _user_tweet_csr, transpose_fields

    rng = np.random.default_rng(3)
    n, nu, nt, nr = 5000, 60, 300, 3
    rows = [rng.integers(0, nu, n).astype(np.int32), rng.integers(0, nt, n).astype(np.int32),
            rng.integers(0, nr, n).astype(np.int8), rng.integers(0, 10**9, n).astype(np.int64), None]
    ref_ut, _ = user_tweet_csr(*[r.copy() if r is not None else None for r in rows], num_users=nu, num_tweets=nt,
                               num_types=nr)
    buffers = []
    ut, _ = _user_tweet_csr(list(rows), nu, nt, nr, scratch=buffers)
    assert len(buffers) == 3 and sum(b.nbytes for b in buffers) == 20 * n  # keys, times, counts
    scratch = _Scratch(buffers)
    fresh = dict(transpose_fields(ref_ut, nt))
    for field, arr in transpose_fields(ut, nt, scratch):
        assert arr.dtype == fresh[field].dtype and np.array_equal(arr, fresh[field]), field
        if field != "indptr":
            assert any(np.shares_memory(arr, b) for b in buffers), field  # really a reused buffer
    got, want = _edges_by_type(ut, nr, scratch), _edges_by_type(ref_ut, nr)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # the four grouped arrays are distinct regions of the scratch buffers
    for i in range(1, 5):
        for j in range(i + 1, 5):
            assert not np.shares_memory(got[i], got[j])


def test_scratch_falls_back_to_fresh_memory_when_full():
    from graph.writer import _Scratch

    s = _Scratch([np.zeros(16, np.uint8)])
    a = s.take(2, np.int64)  # 16 bytes: fills the buffer
    b = s.take(1, np.int32)  # no room: a new array
    assert np.shares_memory(a, s.buffers[0]) and not np.shares_memory(b, s.buffers[0])
    s.reset()
    assert np.shares_memory(s.take(4, np.int32), s.buffers[0])
