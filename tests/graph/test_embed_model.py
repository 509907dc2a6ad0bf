"""graph.embed pieces without training: score and loss vs a per-edge reference, negatives,
ranking metrics on hand-made examples, EMB_DIR I/O and its fingerprint check."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from coengage.errors import ArtifactError, InputError
from graph.embed import EmbedConfig, load_embeddings
from graph.embed import model
from graph.embed.evaluation import (TranslationScorer, knn_label_agreement, link_prediction_metrics, link_prediction_ranks,
                                    random_label_agreement, rank_against_candidates, summarize_ranks)
from graph.embed.io import write_embeddings
from graph.embed.negatives import NegativeSampler, split_count


def _naive_f(u, r, t):
    return sum((u[k] + r[k]) * t[k] for k in range(len(u)))


def _naive_softplus(x):
    return math.log1p(math.exp(x))


@pytest.fixture
def tiny():
    g = torch.Generator().manual_seed(3)
    B, d, n, Nt, Nu = 7, 4, 3, 2, 3  # chunk size 3: chunks of 3, 3 and 1 positives
    return dict(u=torch.randn(B, d, generator=g, dtype=torch.float64), r=torch.randn(B, d, generator=g, dtype=torch.float64),
                t=torch.randn(B, d, generator=g, dtype=torch.float64), w=torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 2.0], dtype=torch.float64),
                neg_t=torch.randn(n, Nt, d, generator=g, dtype=torch.float64), neg_u=torch.randn(n, Nu, d, generator=g, dtype=torch.float64))


def test_chunk_scores_match_per_edge_reference(tiny):
    u, r, t, neg_t, neg_u = (tiny[k][:6].view(2, 3, 4) if k in "urt" else tiny[k][:2] for k in ("u", "r", "t", "neg_t", "neg_u"))
    pos, tneg, uneg = model.chunk_scores(u, r, t, neg_t, neg_u)
    for c in range(2):
        for i in range(3):
            assert pos[c, i].item() == pytest.approx(_naive_f(u[c, i].tolist(), r[c, i].tolist(), t[c, i].tolist()))
            for j in range(neg_t.shape[1]):  # corrupt the tweet: f(u, t', r)
                assert tneg[c, i, j].item() == pytest.approx(_naive_f(u[c, i].tolist(), r[c, i].tolist(), neg_t[c, j].tolist()))
            for j in range(neg_u.shape[1]):  # corrupt the user: f(u', t, r)
                assert uneg[c, i, j].item() == pytest.approx(_naive_f(neg_u[c, j].tolist(), r[c, i].tolist(), t[c, i].tolist()))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_batch_loss_matches_per_edge_reference(tiny, reduction):
    x = tiny
    chunk = 3
    got = model.batch_loss(x["u"], x["r"], x["t"], x["w"], x["neg_t"], x["neg_u"], chunk, reduction).item()
    total = 0.0
    for i in range(7):
        c = i // chunk  # positive i shares chunk c's negatives
        u, r, t = x["u"][i].tolist(), x["r"][i].tolist(), x["t"][i].tolist()
        pos_term = x["w"][i].item() * -math.log(1 / (1 + math.exp(-_naive_f(u, r, t))))
        negs = [_naive_f(u, r, nt.tolist()) for nt in x["neg_t"][c]] + [_naive_f(nu.tolist(), r, t) for nu in x["neg_u"][c]]
        neg_terms = [-math.log(1 / (1 + math.exp(s))) for s in negs]  # -log sigma(-f)
        total += pos_term + (sum(neg_terms) / len(neg_terms) if reduction == "mean" else sum(neg_terms))
    assert got == pytest.approx(total / 7, rel=1e-10)
    assert _naive_softplus(0.0) == pytest.approx(math.log(2))


def test_batch_loss_gradient_pulls_positive_together():
    u = torch.zeros(1, 2, requires_grad=True)
    t = torch.tensor([[1.0, 0.0]])
    r = torch.zeros(1, 2)
    loss = model.batch_loss(u, r, t, torch.ones(1), torch.tensor([[[0.0, 1.0]]]), torch.zeros(1, 1, 2), 1)
    loss.backward()
    # descending the loss moves u towards t (raises f(u, t, r)) and away from the negative tweet's direction
    assert u.grad[0, 0] < 0
    assert u.grad[0, 1] > 0


def test_negative_sampler_mix_and_degree_proportional():
    users = np.zeros(1000, dtype=np.int64)
    tweets = np.concatenate([np.zeros(900, np.int64), np.arange(1, 101)])  # tweet 0 has 90% of the edges
    assert split_count(10, 0.3) == (7, 3)
    s = NegativeSampler(5, 1000, users, tweets, tweet_negatives=10, user_negatives=4, degree_fraction=1.0)
    neg = s.sample(2000, torch.Generator().manual_seed(0))
    assert neg.tweets.shape == (2000, 10) and neg.users.shape == (2000, 4)
    assert (neg.tweets == 0).float().mean().item() == pytest.approx(0.9, abs=0.01)  # degree-proportional
    assert (neg.users == 0).all()  # the only user with edges
    s = NegativeSampler(5, 1000, users, tweets, 10, 4, degree_fraction=0.0)
    neg = s.sample(2000, torch.Generator().manual_seed(0))
    assert (neg.tweets == 0).float().mean().item() < 0.01  # uniform over 1000 tweets
    assert neg.users.min() >= 0 and neg.users.max() == 4 and neg.tweets.max() >= 990


def test_rank_on_hand_made_example():
    pos = np.array([5.0, 5.0])
    cand = np.array([[6.0, 5.0, 1.0, 7.0], [6.0, 5.0, 1.0, 7.0]])
    is_true = np.array([[False] * 4, [False, True, False, False]])
    # two higher, one tie (counted half); in row 2 the tie is the true tweet itself, excluded
    assert rank_against_candidates(pos, cand, is_true).tolist() == [3.5, 3.0]
    m = summarize_ranks(np.array([1.0, 2.0, 20.0, 100.0]))
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0.05 + 0.01) / 4)
    assert (m["hits@1"], m["hits@10"], m["hits@50"], m["count"]) == (0.25, 0.5, 0.75, 4)


def test_perfect_embedding_gives_mrr_one_and_per_relation():
    n = 50
    tweet = np.eye(n, dtype=np.float32)  # tweet j = e_j; user j = 10 e_j engages tweet j
    user = 10 * np.eye(n, dtype=np.float32)
    rel = np.zeros((2, n), dtype=np.float32)
    users = np.arange(n)
    rels = np.arange(n) % 2
    ranks = link_prediction_ranks(TranslationScorer(user, tweet, rel), users, rels, users, n, num_candidates=1000, seed=1)
    m = link_prediction_metrics(ranks, rels, ["fav", "reply"])
    assert m["mrr"] == 1.0 and m["hits@1"] == 1.0
    assert m["per_relation"]["reply"]["count"] == 25 and m["per_relation"]["fav"]["mrr"] == 1.0
    # the worst embedding (true tweet scores lowest) ranks last among the other candidates
    ranks = link_prediction_ranks(TranslationScorer(-user, tweet, rel), users, rels, users, n, num_candidates=1000, seed=1)
    assert ranks.min() > 900


def test_knn_and_random_label_agreement():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)) * 10
    labels = np.repeat(np.arange(3), 20)
    x = centers[labels] + rng.normal(size=(60, 8)) * 0.1
    assert knn_label_agreement(x, labels, k=5) == 1.0
    assert knn_label_agreement(rng.normal(size=(60, 8)), labels, k=5) < 0.6
    assert random_label_agreement(np.array(["a", "a", "b"])) == pytest.approx(2 / 6)


def test_config_validates_and_explains():
    with pytest.raises(InputError, match="negatives must be an even"):
        EmbedConfig(negatives=3)
    with pytest.raises(InputError, match="holdout"):
        EmbedConfig(holdout=0.7)
    assert "degree" in EmbedConfig.help("degree_fraction")
    c = EmbedConfig(dim=8)
    assert EmbedConfig.from_dict(c.to_dict()) == c


def _write(tmp_path, fp="graphA"):
    rng = np.random.default_rng(0)
    arrays = dict(user=rng.normal(size=(4, 3)).astype(np.float32), tweet=rng.normal(size=(5, 3)).astype(np.float32),
                  relation=np.zeros((2, 3), np.float32))
    write_embeddings(tmp_path / "e", **arrays, graph_fingerprint=fp, relations=["fav", "rt"], config={"dim": 3},
                     metrics={"mrr": 0.5})
    return arrays


def test_embeddings_round_trip_and_fingerprint_refusal(tmp_path):
    arrays = _write(tmp_path)
    e = load_embeddings(tmp_path / "e", graph="graphA")
    assert np.array_equal(e.user, arrays["user"]) and np.array_equal(e.tweet, arrays["tweet"])
    assert e.dim == 3 and e.relations == ["fav", "rt"] and e.metrics["mrr"] == 0.5
    with pytest.raises(ArtifactError, match="graph graphA.*graph graphB"):
        load_embeddings(tmp_path / "e", graph="graphB")
    (tmp_path / "e" / "tweet.npy").unlink()
    with pytest.raises(ArtifactError, match="missing tweet.npy"):
        load_embeddings(tmp_path / "e")
    assert not list(tmp_path.glob("e.tmp-*"))  # the atomic write left no temporary directory


def test_loader_imports_neither_dgl_nor_torch():
    code = ("import sys, graph.embed, graph.embed.io, graph.embed.evaluation; "
            "bad = [m for m in ('dgl', 'torch') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("B", [6, 7])  # whole chunks only, and a short last chunk
def test_stacked_closed_form_gradients_equal_autograd(B, reduction):
    """stacked_loss_and_grads (the training hot path) == autograd through batch_loss."""
    g = torch.Generator().manual_seed(4)
    d, N, chunk = 4, 3, 3  # as many tweet as user negatives, as the config guarantees
    n = -(-B // chunk)
    t64 = dict(dtype=torch.float64)
    u, r, t = (torch.randn(B, d, generator=g, **t64) for _ in range(3))
    w = torch.rand(B, generator=g, **t64) + 0.5
    neg_t, neg_u = torch.randn(n, N, d, generator=g, **t64), torch.randn(n, N, d, generator=g, **t64)
    leaves = [v.clone().requires_grad_() for v in (u, r, t, neg_t, neg_u)]
    ref = model.batch_loss(leaves[0], leaves[1], leaves[2], w, leaves[3], leaves[4], chunk, reduction)
    ref.backward()
    x, y = torch.stack([u + r, t]), torch.stack([neg_t, neg_u])
    loss, du, dr, dt, dy = model.stacked_loss_and_grads(x, y, r, torch.arange(B), w, chunk, reduction)  # relation i = row i
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    for got, leaf, name in ((du, leaves[0], "u"), (dr, leaves[1], "r"), (dt, leaves[2], "t"), (dy[0], leaves[3], "neg_t"),
                            (dy[1], leaves[4], "neg_u")):
        assert torch.allclose(got, leaf.grad, rtol=1e-10, atol=1e-12), name
        assert got.abs().sum() > 0, name


def test_stacked_bfloat16_products_close_to_float32():
    """matmul_dtype=bfloat16 (the products' inputs rounded to 8-bit mantissas, float32 accumulation):
    the loss and every gradient stay within bfloat16's rounding of the float32 ones, and differ."""
    g = torch.Generator().manual_seed(7)
    B, d, N, chunk = 1000, 32, 10, 256  # three full chunks and a short one
    n = -(-B // chunk)
    x = torch.randn(2, B, d, generator=g) * 0.3
    y = torch.randn(2, n, N, d, generator=g) * 0.3
    rel, ids = torch.randn(4, d, generator=g) * 0.1, torch.randint(0, 4, (B,), generator=g)
    w = torch.rand(B, generator=g) + 0.5
    ref = model.stacked_loss_and_grads(x, y, rel, ids, w, chunk)
    low = model.stacked_loss_and_grads(x, y, rel, ids, w, chunk, matmul_dtype=torch.bfloat16)
    x2 = x.clone()
    low2 = model.stacked_loss_and_grads(x2, y, rel, ids, w, chunk, matmul_dtype=torch.bfloat16, overwrite_x=True)
    assert all(torch.equal(a, b) for a, b in zip(low, low2))  # the same results, written into x2's memory
    assert low2[1].data_ptr() == x2.data_ptr() and not torch.equal(x2, x)
    assert low[0].item() == pytest.approx(ref[0].item(), rel=1e-3)
    for a, b, name in zip(ref[1:], low[1:], ("du", "drel", "dt", "dy")):
        err = (a - b).norm() / a.norm()
        assert 0 < err < 2e-2, (name, err.item())
        assert b.dtype == torch.float32, name


def test_score_grads_kernels_match_torch_over_the_whole_range():
    """The fused score kernels (polynomial exp / log1p) against torch's softplus and sigmoid in
    float64, for scores from -100 to 100 (no overflow, no NaN), in float32 (float64 arithmetic) and
    bfloat16 (float32 arithmetic)."""
    import numpy as np

    from graph.embed import kernels

    P, N, k = 300, 40, 1e-3
    s = torch.linspace(-100, 100, 2 * P * N, dtype=torch.float64)[torch.randperm(2 * P * N, generator=torch.Generator().manual_seed(0))]
    S = s.view(2 * P, N).float()
    rt = torch.randn(P, generator=torch.Generator().manual_seed(1)).float()
    full = S.double().clone()
    full[P:] += rt.double().view(P, 1)
    ref_loss = torch.nn.functional.softplus(full).sum(1)
    ref_g = torch.sigmoid(full) * k
    G, gu, loss_rows = torch.empty_like(S), torch.empty(P), np.empty(2 * P)
    kernels.score_grads(S.numpy(), rt.numpy(), k, G.numpy(), gu.numpy(), loss_rows)
    assert np.allclose(loss_rows, ref_loss.numpy(), rtol=1e-9, atol=1e-12)
    assert torch.allclose(G.double(), ref_g, rtol=1e-6, atol=1e-30)
    assert torch.allclose(gu.double(), ref_g[P:].sum(1), rtol=1e-5)
    # bfloat16 in, bfloat16 out: the input's rounding aside, G is torch's conversion of the exact value
    Sb = S.bfloat16()
    Gb = torch.empty_like(Sb)
    kernels.score_grads_bf16(model._bits(Sb), rt.numpy(), k, model._bits(Gb), gu.numpy(), loss_rows)
    exact = Sb.double().clone()
    exact[P:] += rt.double().view(P, 1)
    want = (torch.sigmoid(exact) * k).float().bfloat16()
    live = exact > -60  # below, both are < 1e-29 (the kernel stops at exp(-64))
    mismatch = (Gb != want)[live].double().mean().item()
    assert mismatch < 1e-3, mismatch  # only values within the kernel's error of a rounding tie may differ,
    rel = ((Gb.double() - want.double()).abs() / want.double().abs())[live]
    assert rel.max() <= 2.0 ** -7, rel.max()  # and then by one bfloat16 step
    assert Gb.double()[~live].max() < 1e-25 and want.double()[~live].max() < 1e-25
    assert np.allclose(loss_rows, torch.nn.functional.softplus(exact).sum(1).numpy(), rtol=1e-6)
    assert torch.allclose(gu.double(), (torch.sigmoid(exact[P:]) * k).sum(1), rtol=1e-6)


@pytest.mark.parametrize("n,holdout,seed", [(1000, 0.01, 0), (777, 0.3, 5), (10, 0.0, 1)])
def test_split_is_a_seeded_permutations_two_sorted_parts(n, holdout, seed):
    """Held-out = the first round(holdout * n) positions of the seeded permutation, train = the
    rest, both sorted (the train part now comes from a mask instead of a sort: same arrays)."""
    from graph.embed.data import split_edges

    train, held = split_edges(n, holdout, seed)
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0x5E1])).permutation(n)
    k = int(round(holdout * n))
    np.testing.assert_array_equal(held, np.sort(perm[:k]))
    np.testing.assert_array_equal(train, np.sort(perm[k:]))
    assert train.dtype == held.dtype == np.int64 and len(train) + len(held) == n


def test_metrics_of_nothing_held_out_are_null_in_json_not_nan():
    import json

    m = link_prediction_metrics(np.array([1.0, 4.0]), np.array([0, 0]), ["fav", "reply"])
    assert m["per_relation"]["reply"] == {"mrr": None, "hits@1": None, "hits@10": None, "hits@50": None, "count": 0}
    text = json.dumps(m)
    assert "NaN" not in text and json.loads(text)["per_relation"]["fav"]["count"] == 2
