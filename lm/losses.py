"""Social losses as pure functions of embeddings, and a registry of them.

Each loss is a small class whose math lives in :meth:`compute_loss_from_embeddings`, so
tests call it on plain tensors without a model. Inputs are the embeddings of the two sides
of B positive pairs, ``za[i]`` and ``zb[i]`` (``[B, d]``). Under DDP the trainer passes the
*global* batch (gathered with gradients, :mod:`lm.distributed`) plus ``rows``, the indices
of the anchors this process owns (:func:`lm.distributed.local_rows`), so the mean over processes equals the single-process loss.

Optional ``ids`` ([2B] int64, tweet identities of ``cat(za, zb)``) mark duplicates: a text
equal to the anchor's own positive (the same tweet in another pair) is not used as a negative.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _rows(n2: int, rows) -> torch.Tensor:
    """Anchor row indices: all 2B rows, or the given index tensor / slice."""
    if rows is None:
        return torch.arange(n2)
    if isinstance(rows, slice):
        return torch.arange(n2)[rows]
    return torch.as_tensor(rows, dtype=torch.long)


def _negative_mask(n: int, ids: torch.Tensor | None, device) -> torch.Tensor:
    """[2B, 2B] bool: True where column j may serve as a negative of row i."""
    n2 = 2 * n
    idx = torch.arange(n2, device=device)
    pos = (idx + n) % n2
    ok = torch.ones(n2, n2, dtype=torch.bool, device=device)
    ok[idx, idx] = False
    ok[idx, pos] = False
    if ids is not None:
        ids = ids.to(device)
        ok &= ids[None, :] != ids[:, None]  # same tweet as the anchor
        ok &= ids[None, :] != ids[pos][:, None]  # same tweet as the anchor's positive
    return ok


def infonce_loss(za: torch.Tensor, zb: torch.Tensor, temperature: float = 0.1,
                 ids: torch.Tensor | None = None, rows=None) -> torch.Tensor:
    """Symmetric NT-Xent (SimCLR / TwHIN-BERT) with in-batch negatives.

    ``z = cat(za, zb)`` ([2B, d]) is L2-normalised; row i's positive is its pair partner
    ``(i + B) mod 2B`` and its negatives are the other 2B-2 texts (the 2B-1 candidates of the
    softmax are everything but itself). Returns the mean cross-entropy over the anchor
    ``rows`` (all 2B by default).
    """
    n = za.shape[0]
    z = F.normalize(torch.cat([za, zb]).float(), dim=-1)  # [2B, d]
    r = _rows(2 * n, rows).to(z.device)
    sim = z[r] @ z.T / temperature  # [R, 2B]
    keep = _negative_mask(n, ids, z.device)[r]
    pos = (r + n) % (2 * n)
    keep[torch.arange(len(r), device=z.device), pos] = True  # the positive stays in the softmax
    sim = sim.masked_fill(~keep, float("-inf"))
    return F.cross_entropy(sim, pos)


def angular_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """arccos(cosine) / pi in [0, 1] between rows of ``a`` [n, d] and ``b`` [m, d] -> [n, m]."""
    cos = F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T
    return torch.arccos(cos.clamp(-1 + eps, 1 - eps)) / math.pi


def triplet_angular_loss(za: torch.Tensor, zb: torch.Tensor, margin: float = 0.1,
                         ids: torch.Tensor | None = None, rows=None) -> torch.Tensor:
    """MetricBERT: margin triplet loss on angular distance with the hardest in-batch negative.

    For every anchor i of ``z = cat(za, zb)`` the positive is its pair partner and the
    negative is the closest other text that is not the anchor, its partner, or (with
    ``ids``) a copy of either: ``mean(relu(d(i, pos) - d(i, hardest neg) + margin))``.
    """
    n = za.shape[0]
    z = torch.cat([za, zb])  # [2B, d]
    r = _rows(2 * n, rows).to(z.device)
    d = angular_distance(z[r], z)  # [R, 2B]
    pos = (r + n) % (2 * n)
    d_pos = d[torch.arange(len(r), device=z.device), pos]
    keep = _negative_mask(n, ids, z.device)[r]
    d_neg = d.masked_fill(~keep, float("inf")).min(dim=1).values
    # An anchor with no admissible negative (all copies) contributes nothing.
    loss = torch.relu(d_pos - d_neg + margin)
    loss = torch.where(torch.isfinite(d_neg), loss, torch.zeros_like(loss))
    return loss.mean()


class InfoNCELoss:
    """NT-Xent with in-batch negatives (TwHIN-BERT's social loss)."""

    name = "infonce"

    def __init__(self, temperature: float = 0.1):
        self.temperature = temperature

    def compute_loss_from_embeddings(self, za, zb, ids=None, rows=None) -> torch.Tensor:
        return infonce_loss(za, zb, self.temperature, ids=ids, rows=rows)


class TripletAngularLoss:
    """Angular-margin triplet loss with hard in-batch negatives (MetricBERT)."""

    name = "triplet"

    def __init__(self, margin: float = 0.1):
        self.margin = margin

    def compute_loss_from_embeddings(self, za, zb, ids=None, rows=None) -> torch.Tensor:
        return triplet_angular_loss(za, zb, self.margin, ids=ids, rows=rows)


LOSSES = {"infonce": InfoNCELoss, "triplet": TripletAngularLoss}


def make_social_loss(config) -> InfoNCELoss | TripletAngularLoss | None:
    """The social loss of ``config.objective`` (None for the MLM-only ablation)."""
    if config.objective == "infonce":
        return InfoNCELoss(config.temperature)
    if config.objective == "triplet":
        return TripletAngularLoss(config.margin)
    return None
