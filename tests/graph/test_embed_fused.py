"""The fused sparse Adagrad path (--optimizer fused, the default) against DGL's SparseAdagrad:
row grouping, the update itself, and whole training runs.

The fused pass takes the correctly rounded square root where DGL's step takes torch's (MKL's
vector sqrt, off by an ulp for some inputs), so the state must come out bit-identical after an
update, the weights within an ulp-sized bound, and whole runs equal up to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graph.embed.train as train_mod
from graph.embed import EmbedConfig, train_embeddings
from graph.embed.sparse_adagrad import RowGrouper, fused_adagrad_, group_occurrences
from graph.embed.tables import zeros_table
from tests.graph.test_embed_train import cfg, crash_after_epoch_1, planted_graph


def assert_close_runs(a: dict, b: dict, names=("user", "tweet", "relation")) -> None:
    """Arrays of two runs equal up to float32 rounding (the square roots' last bits, compounded over
    the run's steps), and their held-out metrics alike."""
    for name in names:
        assert np.allclose(a[name], b[name], rtol=1e-5, atol=1e-5), (name, np.abs(a[name] - b[name]).max())


def assert_close_metrics(a: dict, b: dict) -> None:
    for k in ("mrr", "hits@1", "hits@10", "hits@50"):
        assert abs(a[k] - b[k]) <= 0.005, (k, a[k], b[k])


@pytest.fixture(scope="module")
def g(tmp_path_factory):
    return planted_graph(tmp_path_factory.mktemp("gf") / "g", num_users=200, num_tweets=400, num_edges=5000)


def test_group_occurrences_against_naive():
    ids = torch.tensor([5, 3, 5, 9, 3, 5, 0], dtype=torch.int64)
    unique, inverse, order, starts = group_occurrences(ids)
    assert unique.tolist() == [0, 3, 5, 9]
    assert torch.equal(unique[inverse], ids)
    groups = {int(unique[i]): order[starts[i]:starts[i + 1]].tolist() for i in range(len(unique))}
    assert groups == {0: [6], 3: [1, 4], 5: [0, 2, 5], 9: [3]}  # each id's positions, ascending
    rng = torch.Generator().manual_seed(0)
    big = torch.randint(0, 300, (5000,), generator=rng)
    unique, inverse, order, starts = group_occurrences(big)
    ref_u, ref_inv, ref_cnt = torch.unique(big, return_inverse=True, return_counts=True)
    assert torch.equal(unique, ref_u) and torch.equal(inverse, ref_inv) and torch.equal(starts.diff(), ref_cnt)
    assert torch.equal(big[order], unique.repeat_interleave(ref_cnt))
    assert len(group_occurrences(torch.tensor([7]))[0]) == 1


def test_row_grouper_same_groups_as_group_occurrences():
    """The fused step's sort-free grouping: the same rows with the same occurrence lists (ascending),
    rows in order of first occurrence, and its node table restored for the next batch."""
    grouper = RowGrouper(300)
    rng = torch.Generator().manual_seed(3)
    for ids in (torch.tensor([5, 3, 5, 9, 3, 5, 0]), torch.randint(0, 300, (5000,), generator=rng),
                torch.randint(0, 20, (999,), generator=rng), torch.tensor([299])):
        rows, starts, order = grouper.group(ids)
        unique, _, ref_order, ref_starts = group_occurrences(ids)
        got = {int(rows[i]): order[starts[i]:starts[i + 1]].tolist() for i in range(len(rows))}
        ref = {int(unique[i]): ref_order[ref_starts[i]:ref_starts[i + 1]].tolist() for i in range(len(unique))}
        assert got == ref
        first = [int(ids[order[starts[i]]]) for i in range(len(rows))]
        assert rows.tolist() == first and sorted(int(order[starts[i]]) for i in range(len(rows))) == [int(order[starts[i]]) for i in range(len(rows))]
        assert (grouper.slot == -1).all()
    assert RowGrouper(10).group(torch.tensor([4, 4]))[0].tolist() == [4]


def test_fused_update_equals_dgl_sparse_adagrad():
    """fused_adagrad_ == dgl.optim.SparseAdagrad.update (duplicates averaged) up to the square root's last bit, over
    many steps with gradients from 1e-8 to 10 (so eps and the square root's rounding matter)."""
    import dgl

    N, d = 600, 24
    init = torch.randn(N, d, generator=torch.Generator().manual_seed(1)) * 0.1
    tables = [dgl.nn.NodeEmbedding(N, d, f"test_fused_{i}_{id(init)}", init_func=lambda t: t.copy_(init)) for i in range(2)]
    opts = [dgl.optim.SparseAdagrad([t], lr=0.05, eps=1e-10) for t in tables]
    gen = torch.Generator().manual_seed(2)
    for step in range(12):
        idx = torch.randint(0, 40 if step % 3 == 0 else N, (900,), generator=gen)  # every third step: heavy duplicates
        grad = torch.randn(900, d, generator=gen) * 10.0 ** torch.randint(-8, 2, (900, 1), generator=gen).float()
        opts[0].update(idx, grad, tables[0])
        unique, _, order, starts = group_occurrences(idx)
        fused_adagrad_(tables[1].weight, tables[1].optm_state[0], unique, starts, order, grad[:333], grad[333:], 0.05, 1e-10)
        assert torch.equal(tables[0].optm_state[0], tables[1].optm_state[0]), step
        # each step's weight change differs by at most an ulp of the square root (~1e-7 relative),
        # which moves a weight by at most ~lr * 1e-7, plus the weight's own rounding
        diff = (tables[0].weight - tables[1].weight).abs()
        assert diff.max().item() <= (step + 1) * (0.05 * 2e-7 + 2e-8), (step, diff.max().item())
    assert not torch.equal(tables[0].weight, init)
    # the sqrt really differs for some elements: the tolerance above is needed, and not loose
    assert 0 < (tables[0].weight != tables[1].weight).float().mean().item() < 0.5


def test_training_fused_equals_dgl_optimizer(g, tmp_path):
    """Whole runs (3 epochs, many steps, short last chunks and batches; float32 products, so that only the
    optimiser differs): the same arrays, losses and metrics
    up to float32 rounding."""
    runs = {opt: train_embeddings(g, tmp_path / opt, cfg(epochs=3, batch_size=300, chunk_size=64, optimizer=opt, matmul_precision="float32"),
                                  write=False, progress=False) for opt in ("fused", "dgl")}
    assert_close_runs(runs["fused"]["arrays"], runs["dgl"]["arrays"])
    assert np.allclose([h["loss"] for h in runs["fused"]["history"]], [h["loss"] for h in runs["dgl"]["history"]], rtol=1e-5)
    assert_close_metrics(runs["fused"]["metrics"], runs["dgl"]["metrics"])


def test_optimizer_state_identical_and_interchangeable(g):
    """After the same steps both paths hold the same DGL state; the optimizer is not part of the
    resume key, so a checkpoint of one path resumes under the other."""
    from graph.embed.data import PackedEdges, graph_edges
    from graph.embed.negatives import NegativeSampler

    edges = graph_edges(g)
    te = PackedEdges(edges)
    states = {}
    for opt in ("fused", "dgl"):
        c = cfg(batch_size=500, chunk_size=128, optimizer=opt, matmul_precision="float32")
        tw = train_mod.TwHINModel(g.num_users, g.num_tweets, len(g.relations), c)
        sampler = NegativeSampler(g.num_users, g.num_tweets, edges.users, edges.tweets, c.tweet_negatives, c.user_negatives,
                                  c.degree_fraction)
        gen = torch.Generator().manual_seed(9)
        perm = torch.randperm(len(edges), generator=gen)
        for s in range(0, 6 * 500, 500):
            tw.train_batch(te, perm[s:s + 500], sampler, gen)
        states[opt] = tw.state()
    assert_close_runs(states["fused"], states["dgl"], ("user", "tweet", "user_adagrad", "tweet_adagrad", "relation", "relation_adagrad"))
    assert states["fused"]["tweet_adagrad"].any()
    assert cfg(optimizer="fused").training_key() == cfg(optimizer="dgl").training_key()
    assert EmbedConfig().optimizer == "fused"


def test_zeros_table():
    for rows, dim in ((3, 2), (100_000, 64)):  # a small one (plain tensor) and one on huge pages where available
        t = zeros_table(rows, dim)
        assert t.shape == (rows, dim) and t.dtype == torch.float32 and t.is_contiguous()
        assert not t.any()
        t[-1, -1] = 2.0
        assert t.sum().item() == 2.0


def test_checkpoint_of_dgl_path_resumes_under_fused(g, tmp_path, monkeypatch):
    """Interrupted after epoch 1 with --optimizer dgl, resumed with fused == uninterrupted fused run."""
    from graph.embed import load_embeddings

    full = train_embeddings(g, tmp_path / "full", cfg(epochs=2, optimizer="fused", matmul_precision="float32"), progress=False)
    crash_after_epoch_1(g, tmp_path / "mixed", cfg(epochs=2, optimizer="dgl", matmul_precision="float32"), monkeypatch)
    resumed = train_embeddings(g, tmp_path / "mixed", cfg(epochs=2, optimizer="fused", matmul_precision="float32"), resume=True, progress=False)
    a, b = load_embeddings(tmp_path / "full", graph=g), load_embeddings(tmp_path / "mixed", graph=g)
    assert_close_runs({n: getattr(a, n) for n in ("user", "tweet", "relation")}, {n: getattr(b, n) for n in ("user", "tweet", "relation")})
    assert_close_metrics(resumed["metrics"], full["metrics"])


def test_dense_adagrad_equals_torch_adagrad():
    """The relation vectors' hand-written Adagrad takes torch.optim.Adagrad's steps bit for bit."""
    gen = torch.Generator().manual_seed(4)
    init = torch.randn(5, 16, generator=gen)
    ref = torch.nn.Parameter(init.clone())
    opt = torch.optim.Adagrad([ref], lr=0.01)
    ours = train_mod.DenseAdagrad(torch.nn.Parameter(init.clone()), lr=0.01)
    for _ in range(6):
        grad = torch.randn(5, 16, generator=gen) * 10.0 ** torch.randint(-6, 2, (5, 1), generator=gen).float()
        ref.grad = grad.clone()
        opt.step()
        ours.step(grad)
        assert torch.equal(ours.param, ref) and torch.equal(ours.sum, opt.state[ref]["sum"])
    assert ours.steps == int(opt.state[ref]["step"]) == 6 and not torch.equal(ref, init)


def test_rowwise_update_equals_reference():
    """--optimizer rowwise: the fused pass with a [N] state == the plain-torch row-wise Adagrad
    (float64 inside) over many steps with duplicates and gradients from 1e-8 to 10."""
    from graph.embed.sparse_adagrad import rowwise_adagrad_reference_

    N, d = 600, 24
    init = torch.randn(N, d, generator=torch.Generator().manual_seed(1)) * 0.1
    w, ref_w = init.clone(), init.clone()
    s, ref_s = torch.zeros(N), torch.zeros(N)
    grouper = RowGrouper(N)
    gen = torch.Generator().manual_seed(2)
    seen = torch.zeros(N, dtype=torch.bool)
    for step in range(12):
        idx = torch.randint(0, 40 if step % 3 == 0 else N, (300,), generator=gen)
        grad = torch.randn(300, d, generator=gen) * 10.0 ** torch.randint(-8, 2, (300, 1), generator=gen).float()
        seen[idx] = True
        rows, starts, order = grouper.group(idx)
        fused_adagrad_(w, s, rows, starts, order, grad[:111], grad[111:], 0.05, 1e-10)
        rowwise_adagrad_reference_(ref_w, ref_s, idx, grad, 0.05, 1e-10)
        assert torch.allclose(s, ref_s, rtol=1e-5, atol=0), step
        assert torch.allclose(w, ref_w, rtol=1e-5, atol=1e-7), (step, (w - ref_w).abs().max().item())
    assert 0 < seen.sum() < N and torch.equal(s > 0, seen)
    assert not torch.equal(w, init) and torch.equal(w[~seen], init[~seen])  # untouched rows stay as they were
    # one step's size is the same for every coordinate of a row (lr / sqrt(state)): not element-wise Adagrad
    e_w, e_s = init.clone(), torch.zeros(N, d)
    idx, grad = torch.tensor([3, 3, 7]), torch.randn(3, d, generator=gen)
    rows, starts, order = grouper.group(idx)
    fused_adagrad_(e_w, e_s, rows, starts, order, grad, grad[:0], 0.05, 1e-10)
    r_w = init.clone()
    fused_adagrad_(r_w, torch.zeros(N), rows, starts, order, grad, grad[:0], 0.05, 1e-10)
    assert not torch.allclose(e_w[3], r_w[3])
    step_ratio = (init[7] - r_w[7]) / grad[2]
    assert torch.allclose(step_ratio, step_ratio[0].expand(d), rtol=1e-4)


def test_group_two_equals_two_groupings():
    a, b, a2, b2 = RowGrouper(300), RowGrouper(1000), RowGrouper(300), RowGrouper(1000)
    gen = torch.Generator().manual_seed(6)
    for _ in range(3):
        ia, ib = torch.randint(0, 300, (2000,), generator=gen), torch.randint(0, 1000, (700,), generator=gen)
        got = train_mod.group_two(a, ia, b, ib)
        want = (a2.group(ia), b2.group(ib))
        assert all(torch.equal(x, y) for p, q in zip(got, want) for x, y in zip(p, q))
        assert (a.slot == -1).all() and (b.slot == -1).all()


def test_rowwise_training_run_and_resume_key(g, tmp_path):
    """A whole run with --optimizer rowwise: a [N] state per table, metrics alike the element-wise
    optimiser's, and its checkpoints are not interchangeable with the element-wise ones."""
    runs = {opt: train_embeddings(g, tmp_path / opt, cfg(epochs=3, optimizer=opt), write=False, progress=False)
            for opt in ("fused", "rowwise")}
    a, b = runs["fused"], runs["rowwise"]
    assert not np.allclose(a["arrays"]["user"], b["arrays"]["user"], atol=1e-4)  # a different optimiser
    assert b["metrics"]["mrr"] > 0.5 * a["metrics"]["mrr"] and b["history"][-1]["loss"] < b["history"][0]["loss"]
    tw = train_mod.TwHINModel(g.num_users, g.num_tweets, len(g.relations), cfg(optimizer="rowwise"))
    assert tuple(tw.state()["user_adagrad"].shape) == (g.num_users,)
    assert cfg(optimizer="rowwise").training_key() != cfg(optimizer="fused").training_key()
    with pytest.raises(ValueError, match="rowwise"):
        tw.train_batch_autograd(None, torch.arange(3), None, None)


def test_packed_edges_select_and_bounds():
    from coengage.errors import ArtifactError
    from graph.embed.data import EdgeSet, PackedEdges

    rng = np.random.default_rng(0)
    e = EdgeSet(rng.integers(0, 2**31 - 1, 1000), rng.integers(0, 50, 1000), rng.integers(0, 4, 1000),
                rng.random(1000).astype(np.float32))
    p = PackedEdges(e)
    idx = rng.integers(0, 1000, 300)
    bu, bt, br, bw = p.select(idx)
    assert np.array_equal(bu, e.users[idx]) and np.array_equal(bt, e.tweets[idx]) and np.array_equal(br, e.rels[idx])
    assert np.array_equal(bw, e.weights[idx]) and bu.dtype == np.int64 and bw.dtype == np.float32
    assert np.array_equal(p.users, e.users) and np.array_equal(p.tweets, e.tweets) and len(p) == 1000
    with pytest.raises(ArtifactError, match="user ids outside"):
        PackedEdges(EdgeSet(np.array([2**31]), np.array([0]), np.array([0]), np.ones(1, np.float32)))
    # packing the edges at given positions = packing the taken copy
    pos = np.sort(rng.choice(1000, 700, replace=False))
    q = PackedEdges(e, pos)
    assert np.array_equal(q.rows, PackedEdges(e.take(pos)).rows) and len(q) == 700
    assert np.array_equal(q.select(np.arange(700))[3], e.weights[pos])


def test_choose_omp_wait(monkeypatch):
    import os

    from graph.embed import OMP_SPINCOUNT, choose_omp_wait

    for var in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):  # set first, so the teardown restores what was there
        monkeypatch.setenv(var, "x")
        monkeypatch.delenv(var)
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "getloadavg", lambda: (cores - 0.5, 0.0, 0.0))  # quiet: a bounded spin
    assert choose_omp_wait() == "bounded spin"
    assert os.environ["GOMP_SPINCOUNT"] == OMP_SPINCOUNT and "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("GOMP_SPINCOUNT", "7")
    assert choose_omp_wait() == "environment" and os.environ["GOMP_SPINCOUNT"] == "7"  # the user's setting wins
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 1.0, 0.0, 0.0))  # busy: sleep at once
    assert choose_omp_wait() == "passive"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in os.environ
    assert choose_omp_wait() == "environment"  # an explicit wait policy is left alone


def test_rowwise_checkpoint_resumes_bit_identically(g, tmp_path, monkeypatch):
    """--optimizer rowwise: interrupted after epoch 1 and resumed == the uninterrupted run (its [N]
    Adagrad state goes through the checkpoint); a fused run refuses that checkpoint."""
    from coengage.errors import ArtifactError
    from graph.embed import load_embeddings

    c = cfg(epochs=2, optimizer="rowwise", matmul_precision="float32")
    train_embeddings(g, tmp_path / "full", c, progress=False)
    crash_after_epoch_1(g, tmp_path / "resumed", c, monkeypatch)
    state = np.load(train_mod.latest_checkpoint(train_mod.checkpoint_dir(tmp_path / "resumed")) / "user_adagrad.npy")
    assert state.shape == (g.num_users,) and state.any()
    with pytest.raises(ArtifactError, match="other settings"):
        train_embeddings(g, tmp_path / "resumed", cfg(epochs=2, optimizer="fused", matmul_precision="float32"), resume=True,
                         progress=False)
    train_embeddings(g, tmp_path / "resumed", c, resume=True, progress=False)
    a, b = load_embeddings(tmp_path / "full", graph=g), load_embeddings(tmp_path / "resumed", graph=g)
    for name in ("user", "tweet", "relation"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_rowwise_update_is_the_same_in_every_process(tmp_path):
    """The row-wise step's result must be the same in every process. A fast-math sum of squares
    gave other last bits in the process that compiled the kernel than in those that loaded it
    from Numba's cache, so the first subprocess here compiles into an empty cache directory and
    the others load from it (and their buffers land elsewhere: a varying amount of junk first)."""
    import os
    import subprocess
    import sys

    code = ("import hashlib, numpy as np, torch\n"
            "from graph.embed.sparse_adagrad import RowGrouper, fused_adagrad_\n"
            "junk = [np.empty(int(n), np.uint8) for n in np.random.randint(1, 9000, np.random.randint(1, 30))]\n"
            "g = torch.Generator().manual_seed(0)\n"
            "w = torch.randn(3000, 100, generator=g); ids = torch.randint(0, 3000, (6000,), generator=g)\n"
            "grads = torch.randn(6000, 100, generator=g) * 10.0 ** torch.randint(-6, 2, (6000, 1), generator=g).float()\n"
            "s = torch.zeros(3000)\n"
            "rows, starts, order = RowGrouper(3000).group(ids)\n"
            "fused_adagrad_(w, s, rows, starts, order, grads[:5000], grads[5000:], 0.1, 1e-10)\n"
            "print(hashlib.sha256(w.numpy().tobytes() + s.numpy().tobytes()).hexdigest())\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}
    outs = [subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout.strip()
            for _ in range(4)]
    assert any((tmp_path / "numba_cache").rglob("*sparse_adagrad*.nbc"))  # the later processes had a cache to load
    assert len(set(outs)) == 1, outs
