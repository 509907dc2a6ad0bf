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
from tests.graph.test_embed_train import cfg, planted_graph


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
    from graph.embed.data import graph_edges
    from graph.embed.negatives import NegativeSampler

    edges = graph_edges(g)
    te = train_mod._torch_edges(edges)
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
    save = train_mod._save_checkpoint

    def crash_after_epoch_1(path, tw, meta):
        save(path, tw, meta)
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(train_mod, "_save_checkpoint", crash_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        train_embeddings(g, tmp_path / "mixed", cfg(epochs=2, optimizer="dgl", matmul_precision="float32"), progress=False)
    monkeypatch.setattr(train_mod, "_save_checkpoint", save)
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
