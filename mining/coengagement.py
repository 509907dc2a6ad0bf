"""Exact co-engagement counting between tweets through shared users, as a Numba kernel.

Two tweets *a* and *b* co-engage through user *u* when *u* engaged with both. For every tweet
*a* the kernel walks its users *u*, then each user's tweets *b*, and accumulates per *b* in a
dense per-thread scratch array (it is the sparse product ``AᵀA`` of the user x tweet
incidence matrix, computed one row at a time and filtered before anything is stored).

Definitions (all exact, no sampling)
------------------------------------
* ``deg(u)``: the number of edges of user *u*: engagements of all types, one per
  (user, tweet, type). Users with ``deg(u) > max_user_degree`` are dropped entirely (Twitter's
  tweet-similarity job drops users with more than 100 favs): they contribute to no count and
  no degree below.
* ``count(a, b)``: the number of *distinct* kept users who engaged with both *a* and *b* (a
  user who faved and retweeted both still counts once). With ``window_s = W`` a user counts only
  if some engagement of theirs with *a* and some with *b* lie within ``W`` seconds of each other
  (``|t(a,u) - t(b,u)| <= W``, on the edge times of the graph: the latest time per type).
* ``n(t)``: the number of distinct kept users of tweet *t* (no window applied).
* scores by ``normalize``:

  - ``"count"``: ``count(a, b)``;
  - ``"cosine"``: ``count / sqrt(n(a) * n(b))`` (cosine of the binary engagement vectors);
  - ``"jaccard"``: ``count / (n(a) + n(b) - count)``;
  - ``"swing"``: ``sum over the shared users u of 1 / log2(2 + deg(u))``. This is the
    *user-weighting* part of Swing (Alibaba), in its Adamic-Adar-like form: a shared user who
    engages with little says more than a hyperactive one. Swing proper also weighs each *pair*
    of shared users by their overlap, which is quadratic in the shared users; we do not
    compute that term.

Pairs with ``count(a, b) >= min_count`` are emitted in both orders (a with b, b with a), and
with ``top_k`` only the ``top_k`` best-scoring ``b`` per ``a`` are kept (ties: smaller ``b``).

Parallelism and memory
----------------------
``prange`` over per-thread chunks of tweets, balanced by work. Each thread owns dense scratch
arrays of ``n_tweets`` entries (count, first-touch list, and for swing a float sum), reset after
each tweet. Tweets are processed in blocks whose output slots are bounded in advance
(``sum_u deg(u) // min_count`` per tweet), so the output is written in place in parallel
without a second counting pass, and memory stays bounded by the block size. Output is identical
for any thread count.
"""

from __future__ import annotations

import logging

import numpy as np
from numba import get_num_threads, njit, prange

log = logging.getLogger(__name__)

NORMALIZATIONS = {"count": 0, "cosine": 1, "jaccard": 2, "swing": 3}
_NO_WINDOW = -1


@njit(parallel=True, nogil=True, cache=True)
def tweet_stats(tu_indptr, tu_indices, ut_indptr, cap):
    """Per tweet: ``n(t)`` distinct kept users, and the work bound ``sum of deg(u)`` over kept edges."""
    T = len(tu_indptr) - 1
    n = np.zeros(T, dtype=np.int64)
    work = np.zeros(T, dtype=np.int64)
    for t in prange(T):
        prev = -1
        c = 0
        w = 0
        for j in range(tu_indptr[t], tu_indptr[t + 1]):
            u = tu_indices[j]
            d = ut_indptr[u + 1] - ut_indptr[u]
            if d > cap:
                continue
            w += d
            if u != prev:
                c += 1
                prev = u
        n[t] = c
        work[t] = w
    return n, work


@njit(cache=True)
def _within(tu_time, ja0, ja1, ut_time, jb0, jb1, window):
    """Whether some engagement time of (a,u) and some of (u,b) lie within ``window`` seconds."""
    for x in range(ja0, ja1):
        ta = tu_time[x]
        for y in range(jb0, jb1):
            dt = ta - ut_time[y]
            if -window <= dt <= window:
                return True
    return False


@njit(cache=True)
def _one_tweet(a, tu_indptr, tu_indices, tu_time, ut_indptr, ut_indices, ut_time, cap, window, swing,
               cnt, wsum, touched):
    """Accumulate count(a, b) (and swing sums) into the scratch; return how many b were touched."""
    n_touched = 0
    j = tu_indptr[a]
    end = tu_indptr[a + 1]
    while j < end:
        u = tu_indices[j]
        ja0 = j
        while j < end and tu_indices[j] == u:  # all edges (a, u, *) are adjacent
            j += 1
        ulo = ut_indptr[u]
        uhi = ut_indptr[u + 1]
        if uhi - ulo > cap:
            continue
        wu = 0.0
        if swing:
            wu = 1.0 / np.log2(2.0 + (uhi - ulo))
        k = ulo
        while k < uhi:
            b = ut_indices[k]
            kb0 = k
            while k < uhi and ut_indices[k] == b:  # all edges (u, b, *) are adjacent
                k += 1
            if b == a:
                continue
            if window >= 0 and not _within(tu_time, ja0, j, ut_time, kb0, k, window):
                continue
            if cnt[b] == 0:
                touched[n_touched] = b
                n_touched += 1
            cnt[b] += 1
            if swing:
                wsum[b] += wu
    return n_touched


@njit(parallel=True, nogil=True, cache=True)
def _coengage_block(t_lo, chunk_bounds, slot_start, tu_indptr, tu_indices, tu_time, ut_indptr, ut_indices,
                    ut_time, cap, window, min_count, norm, top_k, n_user, cnt_s, wsum_s, touched_s, cand_b_s,
                    cand_s_s, out_b, out_s, out_n):
    """Tweets ``t_lo + i`` for the chunks in ``chunk_bounds``; tweet i writes at ``out_*[slot_start[i]:]``."""
    n_chunks = len(chunk_bounds) - 1
    swing = norm == 3
    for c in prange(n_chunks):
        cnt = cnt_s[c]
        wsum = wsum_s[c]
        touched = touched_s[c]
        cand_b = cand_b_s[c]
        cand_s = cand_s_s[c]
        for i in range(chunk_bounds[c], chunk_bounds[c + 1]):
            a = t_lo + i
            nt = _one_tweet(a, tu_indptr, tu_indices, tu_time, ut_indptr, ut_indices, ut_time, cap, window, swing,
                            cnt, wsum, touched)
            m = 0
            for x in range(nt):
                b = touched[x]
                cab = cnt[b]
                if cab >= min_count:
                    cand_b[m] = b
                    if norm == 0:
                        cand_s[m] = cab
                    elif norm == 1:
                        cand_s[m] = cab / np.sqrt(np.float64(n_user[a]) * np.float64(n_user[b]))
                    elif norm == 2:
                        cand_s[m] = cab / np.float64(n_user[a] + n_user[b] - cab)
                    else:
                        cand_s[m] = wsum[b]
                    m += 1
                cnt[b] = 0
                if swing:
                    wsum[b] = 0.0
            base = slot_start[i]
            if m == 0:
                out_n[i] = 0
                continue
            order = np.argsort(cand_b[:m])  # b ascending
            if top_k > 0 and m > top_k:
                sc = np.empty(m, dtype=np.float64)
                for x in range(m):
                    sc[x] = -cand_s[order[x]]
                best = np.argsort(sc, kind="mergesort")  # stable: ties keep b ascending
                for x in range(top_k):
                    o = order[best[x]]
                    out_b[base + x] = cand_b[o]
                    out_s[base + x] = cand_s[o]
                out_n[i] = top_k
            else:
                for x in range(m):
                    out_b[base + x] = cand_b[order[x]]
                    out_s[base + x] = cand_s[order[x]]
                out_n[i] = m


def _balanced_bounds(work: np.ndarray, n_chunks: int) -> np.ndarray:
    """Split ``len(work)`` items into ``n_chunks`` contiguous ranges of about equal total work."""
    cum = np.cumsum(work + 1, dtype=np.float64)  # +1: every tweet costs something
    targets = cum[-1] * np.arange(1, n_chunks) / n_chunks
    inner = np.searchsorted(cum, targets, side="left")
    return np.concatenate([[0], inner, [len(work)]]).astype(np.int64)


def coengagement_pairs(tu_indptr, tu_indices, tu_time, ut_indptr, ut_indices, ut_time, *,
                       max_user_degree=100, window_s=None, min_count=2, normalize="count", top_k=None,
                       progress=True, block_slots=1 << 22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact co-engagement pairs of every tweet (see the module docstring for the definitions).

    Parameters
    ----------
    tu_indptr, tu_indices, tu_time
        The tweet -> user CSR (``GraphArtifact.csr("tweet_user")``): int64 ``[T+1]`` row
        offsets, int32 ``[E]`` user ids (sorted within a row), int64 ``[E]`` edge times (unix s).
    ut_indptr, ut_indices, ut_time
        The user -> tweet CSR of the same edges (``csr("user_tweet")``, tweet ids sorted in a row).
    max_user_degree
        Users with more edges than this are ignored (bots, hyperactive accounts).
    window_s
        ``None``: any two engagements of a user count. A number W >= 0: a user counts for
        (a, b) only if they engaged with both within W seconds (Twitter uses 1800 and 7200).
    min_count
        Minimum number of shared users for a pair to be emitted.
    normalize
        The score: ``"count"``, ``"cosine"``, ``"jaccard"`` or ``"swing"`` (module docstring).
    top_k
        ``None``: every pair passing ``min_count``. An int k: per tweet a, the k best-scoring b.
    progress
        Show a tqdm bar over tweets (only on a terminal).
    block_slots
        Output slots reserved per block (memory bound; 16 bytes a slot). Not a result knob.

    Returns
    -------
    a, b, score
        int32, int32, float64 arrays, grouped by tweet a ascending; within a, b ascending
        (or best first with ``top_k``). Each unordered pair appears as (a, b) and (b, a), unless
        ``top_k`` dropped one direction.
    """
    from tqdm.auto import tqdm

    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {sorted(NORMALIZATIONS)}, got {normalize!r}")
    if int(max_user_degree) != max_user_degree or max_user_degree < 1:
        raise ValueError(f"max_user_degree must be an integer >= 1, got {max_user_degree!r}")
    if int(min_count) != min_count or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    if top_k is not None and (int(top_k) != top_k or top_k < 1):
        raise ValueError(f"top_k must be None or an integer >= 1, got {top_k!r}")
    if window_s is not None and not (np.isfinite(window_s) and window_s >= 0):
        raise ValueError(f"window_s must be None or a number of seconds >= 0, got {window_s!r}")
    from mining.walk import csr_pair

    tu_indptr, tu_indices, tu_time, ut_indptr, ut_indices, ut_time = csr_pair(
        tu_indptr, tu_indices, tu_time, ut_indptr, ut_indices, ut_time, np.int64, "time")
    T, U = len(tu_indptr) - 1, len(ut_indptr) - 1
    cap = int(max_user_degree)
    window = _NO_WINDOW if window_s is None else int(np.floor(window_s))
    norm = NORMALIZATIONS[normalize]
    k = 0 if top_k is None else int(top_k)

    n_user, work = tweet_stats(tu_indptr, tu_indices, ut_indptr, cap)
    slots = work // int(min_count)  # #b with count >= m is at most sum_b count(a, b) / m
    slots = np.minimum(slots, max(T - 1, 0))
    if k:
        slots = np.minimum(slots, k)
    threads = get_num_threads()
    cnt_s = np.zeros((threads, T), dtype=np.int32)
    wsum_s = np.zeros((threads, T if norm == 3 else 1), dtype=np.float64)
    touched_s = np.empty((threads, T), dtype=np.int32)
    cand_b_s = np.empty((threads, T), dtype=np.int32)
    cand_s_s = np.empty((threads, T), dtype=np.float64)
    out_a, out_b, out_s = [], [], []
    cum = np.cumsum(slots)
    with tqdm(total=T, desc="coengage", unit="tweet", disable=None if progress else True) as bar:
        t_lo = 0
        while t_lo < T:
            # the block: as many tweets as fit in block_slots output slots (at least one)
            base = cum[t_lo - 1] if t_lo else 0
            t_hi = int(np.searchsorted(cum, base + block_slots, side="right"))
            t_hi = min(max(t_hi, t_lo + 1), T)
            bslots = slots[t_lo:t_hi]
            slot_start = np.zeros(t_hi - t_lo, dtype=np.int64)
            np.cumsum(bslots[:-1], out=slot_start[1:])
            total = int(bslots.sum())
            ob = np.empty(total, dtype=np.int32)
            osc = np.empty(total, dtype=np.float64)
            on = np.zeros(t_hi - t_lo, dtype=np.int64)
            bounds = _balanced_bounds(work[t_lo:t_hi], threads)
            _coengage_block(t_lo, bounds, slot_start, tu_indptr, tu_indices, tu_time, ut_indptr, ut_indices,
                            ut_time, cap, window, int(min_count), norm, k, n_user, cnt_s, wsum_s, touched_s,
                            cand_b_s, cand_s_s, ob, osc, on)
            # the used prefix [slot_start, slot_start + n) of each tweet's slots
            n_out = int(on.sum())
            mask = np.repeat(slot_start - (np.cumsum(on) - on), on) + np.arange(n_out)
            out_a.append(np.repeat(np.arange(t_lo, t_hi, dtype=np.int32), on))
            out_b.append(ob[mask])
            out_s.append(osc[mask])
            bar.update(t_hi - t_lo)
            t_lo = t_hi
    a, b, s = (np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_s)) if out_a else (
        np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64))
    log.info("coengage: %d tweets, %d directed pairs (cap %d, window %s, min_count %d, %s)",
             T, len(a), cap, window_s, min_count, normalize)
    return a, b, s
