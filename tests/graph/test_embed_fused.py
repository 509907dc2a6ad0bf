"""The fused sparse Adagrad path (--optimizer fused, the default) against DGL's SparseAdagrad:
row grouping, the update itself, and whole training runs, all required to be bit-identical."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graph.embed.train as train_mod
from graph.embed import EmbedConfig, train_embeddings
from graph.embed.sparse_adagrad import fused_adagrad_, group_occurrences
from graph.embed.tables import zeros_table
from tests.graph.test_embed_train import cfg, planted_graph


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


def test_fused_update_bit_identical_to_dgl_sparse_adagrad():
    """fused_adagrad_ == dgl.optim.SparseAdagrad.update (duplicates averaged), bit for bit, over
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
        assert torch.equal(tables[0].weight, tables[1].weight), step
        assert torch.equal(tables[0].optm_state[0], tables[1].optm_state[0]), step
    assert not torch.equal(tables[0].weight, init)


def test_training_fused_equals_dgl_optimizer(g, tmp_path):
    """Whole runs (3 epochs, many steps, short last chunks and batches): identical arrays and losses."""
    runs = {opt: train_embeddings(g, tmp_path / opt, cfg(epochs=3, batch_size=300, chunk_size=64, optimizer=opt),
                                  write=False, progress=False) for opt in ("fused", "dgl")}
    for name in ("user", "tweet", "relation"):
        assert np.array_equal(runs["fused"]["arrays"][name], runs["dgl"]["arrays"][name]), name
    assert [h["loss"] for h in runs["fused"]["history"]] == [h["loss"] for h in runs["dgl"]["history"]]
    assert runs["fused"]["metrics"] == runs["dgl"]["metrics"]


def test_optimizer_state_identical_and_interchangeable(g):
    """After the same steps both paths hold the same DGL state; the optimizer is not part of the
    resume key, so a checkpoint of one path resumes under the other."""
    from graph.embed.data import graph_edges
    from graph.embed.negatives import NegativeSampler

    edges = graph_edges(g)
    te = train_mod._torch_edges(edges)
    states = {}
    for opt in ("fused", "dgl"):
        c = cfg(batch_size=500, chunk_size=128, optimizer=opt)
        tw = train_mod.TwHINModel(g.num_users, g.num_tweets, len(g.relations), c)
        sampler = NegativeSampler(g.num_users, g.num_tweets, edges.users, edges.tweets, c.tweet_negatives, c.user_negatives,
                                  c.degree_fraction)
        gen = torch.Generator().manual_seed(9)
        perm = torch.randperm(len(edges), generator=gen)
        for s in range(0, 6 * 500, 500):
            tw.train_batch(te, perm[s:s + 500], sampler, gen)
        states[opt] = tw.state()
    for name in ("user", "tweet", "user_adagrad", "tweet_adagrad", "relation", "relation_adagrad"):
        assert np.array_equal(states["fused"][name], states["dgl"][name]), name
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

    full = train_embeddings(g, tmp_path / "full", cfg(epochs=2, optimizer="fused"), progress=False)
    save = train_mod._save_checkpoint

    def crash_after_epoch_1(path, tw, meta):
        save(path, tw, meta)
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(train_mod, "_save_checkpoint", crash_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        train_embeddings(g, tmp_path / "mixed", cfg(epochs=2, optimizer="dgl"), progress=False)
    monkeypatch.setattr(train_mod, "_save_checkpoint", save)
    resumed = train_embeddings(g, tmp_path / "mixed", cfg(epochs=2, optimizer="fused"), resume=True, progress=False)
    a, b = load_embeddings(tmp_path / "full", graph=g), load_embeddings(tmp_path / "mixed", graph=g)
    for name in ("user", "tweet", "relation"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert resumed["metrics"] == full["metrics"]
