"""Social losses vs naive per-anchor reference implementations (values and gradients)."""

import math

import pytest
import torch

from lm.losses import InfoNCELoss, TripletAngularLoss, infonce_loss, triplet_angular_loss


def naive_infonce(za, zb, tau, ids=None):
    """Loop over anchors: -log(exp(s(i,pos)/tau) / sum_{j != i, j admissible} exp(s(i,j)/tau))."""
    z = torch.cat([za, zb])
    n2, n = len(z), len(za)
    total = 0.0
    for i in range(n2):
        p = (i + n) % n2
        def cos(j):
            return torch.dot(z[i], z[j]) / (z[i].norm() * z[j].norm())
        denom = []
        for j in range(n2):
            if j == i:
                continue
            if j != p and ids is not None and (ids[j] == ids[i] or ids[j] == ids[p]):
                continue
            denom.append(torch.exp(cos(j) / tau))
        total = total - torch.log(torch.exp(cos(p) / tau) / torch.stack(denom).sum())
    return total / n2


def naive_triplet(za, zb, margin, ids=None):
    z = torch.cat([za, zb])
    n2, n = len(z), len(za)
    eps = 1e-6

    def ang(i, j):
        c = torch.dot(z[i], z[j]) / (z[i].norm() * z[j].norm())
        return torch.arccos(c.clamp(-1 + eps, 1 - eps)) / math.pi

    total = 0.0
    for i in range(n2):
        p = (i + n) % n2
        negs = [ang(i, j) for j in range(n2) if j not in (i, p)
                and not (ids is not None and (ids[j] == ids[i] or ids[j] == ids[p]))]
        if not negs:
            continue
        total = total + torch.relu(ang(i, p) - torch.stack(negs).min() + margin)
    return total / n2


def _emb(B=6, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    za = torch.randn(B, d, generator=g, dtype=torch.float64, requires_grad=True)
    zb = torch.randn(B, d, generator=g, dtype=torch.float64, requires_grad=True)
    return za, zb


@pytest.mark.parametrize("tau", [0.1, 0.5])
@pytest.mark.parametrize("with_ids", [False, True])
def test_infonce_matches_naive_reference_values_and_gradients(tau, with_ids):
    za, zb = _emb()
    ids = torch.tensor([0, 1, 2, 3, 4, 0, 5, 6, 7, 8, 9, 3]) if with_ids else None  # tweet 0 and 3 repeat
    ours = infonce_loss(za, zb, tau, ids=ids)
    # our implementation normalises in float32; compare with the float64 reference in float32 tolerance
    ref = naive_infonce(za, zb, tau, ids)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    g_ours = torch.autograd.grad(ours, (za, zb))
    g_ref = torch.autograd.grad(ref, (za, zb))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_infonce_duplicate_masking_changes_the_loss():
    za, zb = _emb()
    ids = torch.tensor([0, 1, 2, 3, 4, 0, 5, 6, 7, 8, 9, 3])
    assert infonce_loss(za, zb, 0.1, ids=ids).item() != pytest.approx(infonce_loss(za, zb, 0.1).item(), rel=1e-6)


def test_infonce_perfect_pairs_beat_random_pairs():
    za, _ = _emb(B=8, d=16)
    aligned = infonce_loss(za.detach(), za.detach() + 0.01, 0.1)
    shuffled = infonce_loss(za.detach(), za.detach()[torch.randperm(8)] + 0.01, 0.1)
    assert aligned < 0.1 < shuffled


def test_infonce_rows_split_averages_to_the_full_loss():
    za, zb = _emb(B=4)
    full = infonce_loss(za, zb, 0.1)
    rows0 = torch.tensor([0, 1, 4, 5])
    rows1 = torch.tensor([2, 3, 6, 7])
    halves = (infonce_loss(za, zb, 0.1, rows=rows0) + infonce_loss(za, zb, 0.1, rows=rows1)) / 2
    assert halves.item() == pytest.approx(full.item(), rel=1e-6)


@pytest.mark.parametrize("margin", [0.05, 0.3])
@pytest.mark.parametrize("with_ids", [False, True])
def test_triplet_matches_naive_reference_values_and_gradients(margin, with_ids):
    za, zb = _emb(seed=3)
    ids = torch.tensor([0, 1, 2, 3, 4, 0, 5, 6, 7, 8, 9, 3]) if with_ids else None
    ours = triplet_angular_loss(za, zb, margin, ids=ids)
    ref = naive_triplet(za, zb, margin, ids)
    assert ours.item() > 0
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    g_ours = torch.autograd.grad(ours, (za, zb))
    g_ref = torch.autograd.grad(ref, (za, zb))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_triplet_is_zero_when_every_positive_is_closer_by_the_margin():
    # Pairs on well-separated axes: partner at angle ~0, every other text at 90 degrees.
    za = torch.eye(4, dtype=torch.float64)
    zb = za + 1e-3
    assert triplet_angular_loss(za, zb, margin=0.2).item() == 0.0
    assert triplet_angular_loss(za, zb, margin=0.6).item() > 0  # 0.5 (90 degrees) < margin


def test_loss_classes_wrap_the_functions():
    za, zb = _emb()
    assert InfoNCELoss(0.2).compute_loss_from_embeddings(za, zb).item() == pytest.approx(infonce_loss(za, zb, 0.2).item())
    assert TripletAngularLoss(0.1).compute_loss_from_embeddings(za, zb).item() == pytest.approx(
        triplet_angular_loss(za, zb, 0.1).item())
