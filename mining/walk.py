"""Pixie-style random walks with restart over tweet -> user -> tweet, as Numba kernels.

From every query tweet we run ``walks_per_query`` short walks. A *hop* goes tweet -> user ->
tweet (two *steps*, one per edge traversed). After each hop the tweet reached is counted as a
visit (unless it is the query itself); then the walk restarts at the query with probability
``restart_prob``, or after ``walk_length`` hops at the latest. The tweets visited at least
``min_visits`` times are ranked by visit count and the ``top_k`` best become pairs
``(query, tweet, visits)``.

How a step picks its edge
-------------------------
* **Engagement-type weights.** From a tweet (or a user) an edge of engagement type ``r`` is
  chosen with probability proportional to ``type_weights[r]``; both steps of a hop are
  weighted. Implemented by rejection: draw an edge of the row uniformly, accept it with
  probability ``type_weights[r] / max(type_weights)``. That needs no per-edge precomputed
  arrays (no extra memory, no extra cache misses), and when all weights are equal no
  acceptance draw is made at all. After 64 rejections in a row (a row made mostly of
  zero-weight or ineligible edges) the kernel falls back to an exact linear scan of the row,
  so the distribution stays exact and the loop always ends.
* **User degree cap.** ``deg(u)`` is the number of edges in the user's row: engagements of all
  types, one per (user, tweet, type). Users with ``deg(u) > max_user_degree`` are bots or
  hyperactive accounts that would glue unrelated tweets together.

  - ``degree_cap_mode="skip"``: such users are never stepped into; a tweet's step picks among
    its other users. A query whose users all exceed the cap gets no walks and no pairs.
  - ``degree_cap_mode="sample"``: such a user is *down-sampled*: each of its engagements is
    kept with probability ``max_user_degree / deg(u)``, decided by a hash of
    ``(seed, user, tweet)``. The walk runs on this thinned graph: it enters the user only over
    a kept edge and leaves only over a kept edge, so a hyperactive user behaves like a user
    with about ``max_user_degree`` engagements (a random, fixed subset of them). The same
    subset is used by every walk of a run, so visit counts are consistent.

Determinism and speed
---------------------
Each walk has its own SplitMix64 stream seeded by ``(seed, query, walk number)``; visit
counts are order-independent and ties are broken by tweet id. So the output is byte-identical
for the same seed whatever the number of threads and whatever ``walkers_in_flight`` is.

A step is a chain of dependent loads (row offsets, then the neighbour, then its row offsets
...), each a likely cache miss on graphs larger than the cache. ``prange`` runs queries in
parallel; inside one query, ``walkers_in_flight`` walkers are interleaved as small state
machines: a walker issues a software prefetch for its next load and yields to the other
walkers, so up to that many misses are in flight per thread. ``walkers_in_flight=1`` runs the
plain loop (one walk after another), kept for the benchmark and as a reference in the tests.
"""

from __future__ import annotations

import logging

import numpy as np
from numba import get_num_threads, njit, prange

from mining.rng import hash3, mix64, next_below, next_float, prefetch, stream_seed, u64_to_unit

log = logging.getLogger(__name__)

DEGREE_CAP_MODES = {"skip": 0, "sample": 1}
MAX_TRIES = 64  # rejections in a row before the exact fallback scan of a row
_KEEP_SALT = np.uint64(0x5EED0F5A3B1E7C4D)  # separates the edge-keep hash from the walk streams


# ---------------------------------------------------------------------------------------------
# step helpers shared by the plain and the interleaved walker (they must draw identically)
# ---------------------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _kept(seed, u, t, d, cap, mode):
    """Whether edge (user u, tweet t) is usable: u within the cap, or kept by down-sampling."""
    if d <= cap:
        return True
    if mode == 0:
        return False
    return u64_to_unit(hash3(np.uint64(seed) ^ _KEEP_SALT, u, t)) * d < cap


@njit(cache=True)
def _tweet_row_weight(t, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed, cap, mode):
    """Total (normalised) weight of the usable edges of tweet t."""
    total = 0.0
    for j in range(tu_indptr[t], tu_indptr[t + 1]):
        u = tu_indices[j]
        d = ut_indptr[u + 1] - ut_indptr[u]
        if _kept(seed, u, t, d, cap, mode):
            total += wn[tu_etype[j]]
    return total


@njit(cache=True)
def _tweet_fallback(state, i, t, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed, cap, mode):
    """Exact weighted choice of a usable edge of tweet t by a linear scan; -1 if none."""
    total = _tweet_row_weight(t, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed, cap, mode)
    if total <= 0.0:
        return -1
    r = next_float(state, i) * total
    last = -1
    for j in range(tu_indptr[t], tu_indptr[t + 1]):
        u = tu_indices[j]
        d = ut_indptr[u + 1] - ut_indptr[u]
        if _kept(seed, u, t, d, cap, mode) and wn[tu_etype[j]] > 0.0:
            last = j
            r -= wn[tu_etype[j]]
            if r < 0.0:
                return j
    return last  # rounding: the last usable edge


@njit(cache=True)
def _user_fallback(state, i, u, ut_indptr, ut_indices, ut_etype, wn, seed, cap, mode):
    """Exact weighted choice of a usable edge of user u by a linear scan; -1 if none."""
    lo, hi = ut_indptr[u], ut_indptr[u + 1]
    d = hi - lo
    total = 0.0
    for j in range(lo, hi):
        if _kept(seed, u, ut_indices[j], d, cap, mode):
            total += wn[ut_etype[j]]
    if total <= 0.0:
        return -1
    r = next_float(state, i) * total
    last = -1
    for j in range(lo, hi):
        if _kept(seed, u, ut_indices[j], d, cap, mode) and wn[ut_etype[j]] > 0.0:
            last = j
            r -= wn[ut_etype[j]]
            if r < 0.0:
                return j
    return last


@njit(inline="always", cache=True)
def _user_tries(d, cap, mode):
    """Rejection budget for a step out of a user of degree d (larger for down-sampled users)."""
    if mode == 1 and d > cap:
        return MAX_TRIES * (d // max(cap, 1) + 1)
    return MAX_TRIES


# ---------------------------------------------------------------------------------------------
# visit counting: a small open-addressing hash table per thread, reset after each query
# ---------------------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _visit(keys, vals, used, n_used, t):
    mask = len(keys) - 1
    h = np.int64(mix64(np.uint64(t)) & np.uint64(mask))
    while True:
        k = keys[h]
        if k == t:
            vals[h] += 1
            return n_used
        if k == -1:
            keys[h] = t
            vals[h] = 1
            used[n_used] = h
            return n_used + 1
        h = (h + 1) & mask


@njit(inline="always", cache=True)
def _heap_push(heap, size, k, key):
    """Keep the k largest int64 keys in a min-heap ``heap[:size]``; returns the new size."""
    if size < k:
        i = size
        heap[i] = key
        size += 1
        while i > 0:
            p = (i - 1) >> 1
            if heap[p] <= heap[i]:
                break
            heap[p], heap[i] = heap[i], heap[p]
            i = p
        return size
    if key <= heap[0]:
        return size
    heap[0] = key
    i = 0
    while True:
        l = 2 * i + 1
        if l >= size:
            break
        c = l
        if l + 1 < size and heap[l + 1] < heap[l]:
            c = l + 1
        if heap[i] <= heap[c]:
            break
        heap[i], heap[c] = heap[c], heap[i]
        i = c
    return size


@njit(cache=True)
def _emit(q, keys, vals, used, n_used, heap, top_k, min_visits, out_b, out_s, base):
    """Reset the table and write the top-k visited tweets of query q at ``out_*[base:]``."""
    size = 0
    for x in range(n_used):
        h = used[x]
        c = vals[h]
        if c >= min_visits:
            # rank by visits (desc), then tweet id (asc): pack (visits, ~id) into one int64
            key = (np.int64(c) << 32) | np.int64(0x7FFFFFFF - keys[h])
            size = _heap_push(heap, size, top_k, key)
        keys[h] = -1
        vals[h] = 0
    # sort the heap's keys descending (k is small: insertion sort)
    for i in range(1, size):
        v = heap[i]
        j = i - 1
        while j >= 0 and heap[j] < v:
            heap[j + 1] = heap[j]
            j -= 1
        heap[j + 1] = v
    for i in range(size):
        out_b[base + i] = np.int32(0x7FFFFFFF - (heap[i] & 0xFFFFFFFF))
        out_s[base + i] = np.float64(heap[i] >> 32)
    return size


# ---------------------------------------------------------------------------------------------
# the kernels: one block of queries, prange over chunks of it
# ---------------------------------------------------------------------------------------------


@njit(parallel=True, nogil=True, cache=True)
def _walk_block(queries, tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, wn, uniform,
                cap, mode, seed, n_walks, length, restart_prob, top_k, min_visits, n_inflight, table_size,
                n_chunks, out_b, out_s, out_n):
    """Walk from each query of the block; top-k visits of query i go to ``out_*[i*top_k:]``.

    Returns the number of hops taken (for the benchmark's steps/s).
    """
    nq = len(queries)
    hops_per_chunk = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        keys = np.full(table_size, -1, dtype=np.int32)
        vals = np.zeros(table_size, dtype=np.int32)
        used = np.empty(table_size, dtype=np.int64)
        heap = np.empty(max(top_k, 1), dtype=np.int64)
        W = n_inflight
        state = np.zeros(W, dtype=np.uint64)
        stage = np.zeros(W, dtype=np.int8)
        cur = np.zeros(W, dtype=np.int64)  # current tweet
        lo = np.zeros(W, dtype=np.int64)  # current tweet's row
        hi = np.zeros(W, dtype=np.int64)
        jj = np.zeros(W, dtype=np.int64)  # candidate edge
        uu = np.zeros(W, dtype=np.int64)  # current user
        ulo = np.zeros(W, dtype=np.int64)
        uhi = np.zeros(W, dtype=np.int64)
        tries = np.zeros(W, dtype=np.int64)
        hop = np.zeros(W, dtype=np.int64)
        hops = 0
        q_lo = nq * c // n_chunks
        q_hi = nq * (c + 1) // n_chunks
        for qi in range(q_lo, q_hi):
            q = queries[qi]
            out_n[qi] = 0
            if tu_indptr[q + 1] == tu_indptr[q]:
                continue
            if _tweet_row_weight(q, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed, cap, mode) <= 0.0:
                continue  # every user of the query is over the cap (or has weight 0): no walks
            n_used = 0
            if W <= 1:
                n_used, h = _walks_plain(q, state, tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype,
                                         wn, uniform, cap, mode, seed, n_walks, length, restart_prob, keys, vals, used)
                hops += h
            else:
                n_used, h = _walks_interleaved(q, W, state, stage, cur, lo, hi, jj, uu, ulo, uhi, tries, hop,
                                               tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype,
                                               wn, uniform, cap, mode, seed, n_walks, length, restart_prob,
                                               keys, vals, used)
                hops += h
            out_n[qi] = _emit(q, keys, vals, used, n_used, heap, top_k, min_visits, out_b, out_s, qi * top_k)
        hops_per_chunk[c] = hops
    return hops_per_chunk.sum()


@njit(cache=True)
def _walks_plain(q, state, tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, wn, uniform,
                 cap, mode, seed, n_walks, length, restart_prob, keys, vals, used):
    """All walks of query q, one after the other (the reference the interleaved walker matches)."""
    n_used = 0
    hops = 0
    for walk in range(n_walks):
        state[0] = stream_seed(seed, q, walk)
        t = q
        for h in range(length):
            # tweet -> user
            tlo, thi = tu_indptr[t], tu_indptr[t + 1]
            tr = 0
            j = tlo + next_below(state, 0, thi - tlo)
            while True:
                u = tu_indices[j]
                ok = uniform or next_float(state, 0) < wn[tu_etype[j]]
                if ok:
                    d = ut_indptr[u + 1] - ut_indptr[u]
                    ok = _kept(seed, u, t, d, cap, mode)
                if ok:
                    break
                tr += 1
                if tr >= MAX_TRIES:
                    j = _tweet_fallback(state, 0, t, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed, cap, mode)
                    break
                j = tlo + next_below(state, 0, thi - tlo)
            if j < 0:
                break
            u = tu_indices[j]
            # user -> tweet
            a, b = ut_indptr[u], ut_indptr[u + 1]
            d = b - a
            limit = _user_tries(d, cap, mode)
            tr = 0
            j = a + next_below(state, 0, d)
            while True:
                t2 = ut_indices[j]
                ok = uniform or next_float(state, 0) < wn[ut_etype[j]]
                if ok:
                    ok = _kept(seed, u, t2, d, cap, mode)
                if ok:
                    break
                tr += 1
                if tr >= limit:
                    j = _user_fallback(state, 0, u, ut_indptr, ut_indices, ut_etype, wn, seed, cap, mode)
                    break
                j = a + next_below(state, 0, d)
            if j < 0:
                break
            t = ut_indices[j]
            hops += 1
            if t != q:
                n_used = _visit(keys, vals, used, n_used, t)
            if h + 1 == length:
                break
            if restart_prob > 0.0 and next_float(state, 0) < restart_prob:
                break
    return n_used, hops


# walker stages of the interleaved kernel
_S_TWEET = 0  # row offsets of cur[w] requested; pick an edge
_S_TU = 1  # edge jj[w] of the tweet's row requested; read the user
_S_USER = 2  # row offsets of user uu[w] requested; check the cap, pick an edge
_S_UT = 3  # edge jj[w] of the user's row requested; read the tweet
_S_DONE = 4


@njit(cache=True)
def _walks_interleaved(q, W, state, stage, cur, lo, hi, jj, uu, ulo, uhi, tries, hop,
                       tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, wn, uniform,
                       cap, mode, seed, n_walks, length, restart_prob, keys, vals, used):
    """All walks of query q with W walkers interleaved; same draws per walk as :func:`_walks_plain`."""
    n_used = 0
    hops = 0
    next_walk = 0
    active = 0
    for w in range(W):
        if next_walk < n_walks:
            state[w] = stream_seed(seed, q, next_walk)
            next_walk += 1
            cur[w] = q
            hop[w] = 0
            stage[w] = _S_TWEET
            active += 1
        else:
            stage[w] = _S_DONE
    while active > 0:
        for w in range(W):
            s = stage[w]
            if s == _S_TWEET:
                t = cur[w]
                lo[w] = tu_indptr[t]
                hi[w] = tu_indptr[t + 1]
                tries[w] = 0
                j = lo[w] + next_below(state, w, hi[w] - lo[w])
                jj[w] = j
                prefetch(tu_indices, j)
                stage[w] = _S_TU
            elif s == _S_TU:
                j = jj[w]
                u = tu_indices[j]
                if uniform or next_float(state, w) < wn[tu_etype[j]]:
                    uu[w] = u
                    prefetch(ut_indptr, u)
                    stage[w] = _S_USER
                else:
                    tries[w] += 1
                    if tries[w] >= MAX_TRIES:
                        j = _tweet_fallback(state, w, cur[w], tu_indptr, tu_indices, tu_etype, ut_indptr, wn,
                                            seed, cap, mode)
                        if j < 0:
                            stage[w] = _S_DONE  # cannot happen after the query check; be safe
                            active -= 1
                            continue
                        uu[w] = tu_indices[j]
                        tries[w] = -1  # marks "chosen by the fallback: do not re-check"
                        prefetch(ut_indptr, uu[w])
                        stage[w] = _S_USER
                    else:
                        j = lo[w] + next_below(state, w, hi[w] - lo[w])
                        jj[w] = j
                        prefetch(tu_indices, j)
            elif s == _S_USER:
                u = uu[w]
                a = ut_indptr[u]
                b = ut_indptr[u + 1]
                d = b - a
                if tries[w] >= 0 and not _kept(seed, u, cur[w], d, cap, mode):
                    tries[w] += 1
                    if tries[w] >= MAX_TRIES:
                        j = _tweet_fallback(state, w, cur[w], tu_indptr, tu_indices, tu_etype, ut_indptr, wn,
                                            seed, cap, mode)
                        if j < 0:
                            stage[w] = _S_DONE
                            active -= 1
                            continue
                        uu[w] = tu_indices[j]
                        tries[w] = -1
                        prefetch(ut_indptr, uu[w])
                    else:
                        j = lo[w] + next_below(state, w, hi[w] - lo[w])
                        jj[w] = j
                        prefetch(tu_indices, j)
                        stage[w] = _S_TU
                    continue
                ulo[w] = a
                uhi[w] = b
                tries[w] = 0
                j = a + next_below(state, w, d)
                jj[w] = j
                prefetch(ut_indices, j)
                stage[w] = _S_UT
            elif s == _S_UT:
                j = jj[w]
                u = uu[w]
                t2 = ut_indices[j]
                d = uhi[w] - ulo[w]
                ok = tries[w] < 0 or uniform or next_float(state, w) < wn[ut_etype[j]]
                if ok and tries[w] >= 0:
                    ok = _kept(seed, u, t2, d, cap, mode)
                if not ok:
                    tries[w] += 1
                    if tries[w] >= _user_tries(d, cap, mode):
                        j = _user_fallback(state, w, u, ut_indptr, ut_indices, ut_etype, wn, seed, cap, mode)
                        if j < 0:
                            stage[w] = _S_DONE
                            active -= 1
                            continue
                        jj[w] = j
                        tries[w] = -1  # accept it when we come back
                    else:
                        j = ulo[w] + next_below(state, w, d)
                        jj[w] = j
                    prefetch(ut_indices, j)
                    continue
                # accepted: a hop is complete
                hops += 1
                if t2 != q:
                    n_used = _visit(keys, vals, used, n_used, t2)
                hop[w] += 1
                if hop[w] < length and not (restart_prob > 0.0 and next_float(state, w) < restart_prob):
                    cur[w] = t2
                    prefetch(tu_indptr, t2)
                    stage[w] = _S_TWEET
                elif next_walk < n_walks:  # restart: a new walk from the query
                    state[w] = stream_seed(seed, q, next_walk)
                    next_walk += 1
                    cur[w] = q
                    hop[w] = 0
                    stage[w] = _S_TWEET
                else:
                    stage[w] = _S_DONE
                    active -= 1
    return n_used, hops


# ---------------------------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------------------------


def _next_pow2(n: int) -> int:
    return 1 << max(4, int(n - 1).bit_length())


def _check_csr(name: str, indptr, indices, n_cols: int | None):
    if indptr.ndim != 1 or len(indptr) < 1:
        raise ValueError(f"{name}_indptr must be a 1-d array of length n_rows + 1")
    if int(indptr[0]) != 0 or int(indptr[-1]) != len(indices):
        raise ValueError(f"{name}_indptr must start at 0 and end at len({name}_indices)={len(indices)}, "
                         f"got {int(indptr[0])}..{int(indptr[-1])}")
    if n_cols is not None and len(indices):
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= n_cols:
            raise ValueError(f"{name}_indices must lie in [0, {n_cols}), got [{lo}, {hi}]")


def csr_pair(tu_indptr, tu_indices, tu_edge, ut_indptr, ut_indices, ut_edge, edge_dtype, edge_name: str):
    """A tweet->user CSR, its user->tweet transpose and one per-edge array of each, validated and
    converted (no copy when dtypes already match, e.g. mmap arrays):
    ``(tu_indptr, tu_indices, tu_edge, ut_indptr, ut_indices, ut_edge)``."""
    tu_indptr = np.ascontiguousarray(tu_indptr, dtype=np.int64)
    ut_indptr = np.ascontiguousarray(ut_indptr, dtype=np.int64)
    tu_indices = np.ascontiguousarray(tu_indices, dtype=np.int32)
    ut_indices = np.ascontiguousarray(ut_indices, dtype=np.int32)
    tu_edge = np.ascontiguousarray(tu_edge, dtype=edge_dtype)
    ut_edge = np.ascontiguousarray(ut_edge, dtype=edge_dtype)
    n_tweets, n_users = len(tu_indptr) - 1, len(ut_indptr) - 1
    _check_csr("tu", tu_indptr, tu_indices, n_users)
    _check_csr("ut", ut_indptr, ut_indices, n_tweets)
    if not (len(tu_indices) == len(ut_indices) == len(tu_edge) == len(ut_edge)):
        raise ValueError(f"tu/ut indices and {edge_name} arrays must all have the same length (one entry per edge)")
    return tu_indptr, tu_indices, tu_edge, ut_indptr, ut_indices, ut_edge


def prepare_walk_inputs(tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, type_weights):
    """Validate and convert the CSR arrays (no copy when dtypes already match, e.g. mmap arrays)."""
    tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype = csr_pair(
        tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, np.int8, "etype")
    w = np.asarray(type_weights, dtype=np.float64).ravel()
    if len(w) == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.max() <= 0:
        raise ValueError(f"type_weights must be finite, >= 0, with at least one > 0; got {w.tolist()}")
    for name, et in (("tu_etype", tu_etype), ("ut_etype", ut_etype)):
        if len(et) and (int(et.min()) < 0 or int(et.max()) >= len(w)):
            raise ValueError(f"{name} must index type_weights (length {len(w)}), got [{int(et.min())}, {int(et.max())}]")
    wn = w / w.max()
    return tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, wn


def walk_pairs(tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, type_weights, *,
               queries=None, walks_per_query=200, walk_length=4, restart_prob=0.5, max_user_degree=100,
               degree_cap_mode="skip", top_k=20, min_visits=2, seed=0, walkers_in_flight=8,
               progress=True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-walk pairs: for each query tweet, the tweets its walks visit most often.

    Parameters
    ----------
    tu_indptr, tu_indices, tu_etype
        The tweet -> user CSR (``GraphArtifact.csr("tweet_user")``): int64 ``[T+1]`` row
        offsets, int32 ``[E]`` user node ids, int8 ``[E]`` engagement types.
    ut_indptr, ut_indices, ut_etype
        The user -> tweet CSR of the same edges (``csr("user_tweet")``).
    type_weights
        Float weight per engagement type (``GraphArtifact.type_weights``), ``>= 0`` with at
        least one ``> 0``. Both steps of a hop pick an edge with probability proportional to
        its type's weight; a type of weight 0 is never walked.
    queries
        Tweet node ids to walk from (any integer array); ``None`` = every tweet with an edge.
    walks_per_query
        Walks started from each query tweet.
    walk_length
        Maximum hops (tweet -> user -> tweet) per walk.
    restart_prob
        After each hop, the probability that the walk stops and the next one starts again at
        the query (Pixie's restart). With 0 every walk has exactly ``walk_length`` hops; with
        0.5 and length 4 a walk averages 1.875 hops.
    max_user_degree
        The user degree cap: users with more edges than this are skipped or down-sampled.
    degree_cap_mode
        ``"skip"``: never step into a user above the cap (a query reachable only through such
        users gets no pairs). ``"sample"``: keep each engagement of such a user with probability
        ``max_user_degree / deg(user)`` (a fixed pseudo-random subset per seed) and walk only
        over kept engagements. See the module docstring.
    top_k
        Pairs kept per query: the most visited tweets (ties broken by smaller tweet id).
    min_visits
        A tweet needs at least this many visits (over all walks of the query) to be paired.
    seed
        Seeds one RNG stream per (query, walk): the same seed gives byte-identical output,
        whatever the thread count and ``walkers_in_flight``.
    walkers_in_flight
        Walkers interleaved per thread to overlap memory latency; 1 = plain sequential loop.
        Changes speed only, never the result.
    progress
        Show a tqdm bar over query blocks (only on a terminal).

    Returns
    -------
    a, b, score
        int32 query tweet ids, int32 visited tweet ids (``a != b``), float64 visit counts;
        grouped by query in query order, best first within a query.
    """
    a, b, s, _ = run_walks(tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, type_weights,
                           queries=queries, walks_per_query=walks_per_query, walk_length=walk_length,
                           restart_prob=restart_prob, max_user_degree=max_user_degree,
                           degree_cap_mode=degree_cap_mode, top_k=top_k, min_visits=min_visits, seed=seed,
                           walkers_in_flight=walkers_in_flight, progress=progress)
    return a, b, s


def run_walks(tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, type_weights, *,
              queries=None, walks_per_query=200, walk_length=4, restart_prob=0.5, max_user_degree=100,
              degree_cap_mode="skip", top_k=20, min_visits=2, seed=0, walkers_in_flight=8,
              progress=True, block_size=None):
    """:func:`walk_pairs` plus the number of hops taken (for the benchmark)."""
    from tqdm.auto import tqdm

    if degree_cap_mode not in DEGREE_CAP_MODES:
        raise ValueError(f"degree_cap_mode must be one of {sorted(DEGREE_CAP_MODES)}, got {degree_cap_mode!r}")
    for name, v, lo in (("walks_per_query", walks_per_query, 1), ("walk_length", walk_length, 1),
                        ("max_user_degree", max_user_degree, 1), ("top_k", top_k, 1),
                        ("min_visits", min_visits, 1), ("walkers_in_flight", walkers_in_flight, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not 0.0 <= restart_prob < 1.0:
        raise ValueError(f"restart_prob must lie in [0, 1), got {restart_prob!r}")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must lie in [0, 2**63), got {seed!r}")
    tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, wn = prepare_walk_inputs(
        tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, type_weights)
    n_tweets = len(tu_indptr) - 1
    if queries is None:
        queries = np.flatnonzero(np.diff(tu_indptr) > 0).astype(np.int64)
    else:
        queries = np.ascontiguousarray(queries, dtype=np.int64).ravel()
        if len(queries) and (queries.min() < 0 or queries.max() >= n_tweets):
            raise ValueError(f"queries must be tweet node ids in [0, {n_tweets}), got [{queries.min()}, {queries.max()}]")
    uniform = bool(np.all(wn[np.unique(tu_etype)] == 1.0)) if len(tu_etype) else True
    table_size = _next_pow2(2 * walks_per_query * walk_length + 1)
    threads = get_num_threads()
    block = int(block_size or max(4096, 2048 * threads))
    out_a, out_b, out_s = [], [], []
    hops = 0
    with tqdm(total=len(queries), desc="walk", unit="query", disable=None if progress else True) as bar:
        for start in range(0, len(queries), block):
            qb = queries[start:start + block]
            ob = np.empty(len(qb) * top_k, dtype=np.int32)
            osc = np.empty(len(qb) * top_k, dtype=np.float64)
            on = np.zeros(len(qb), dtype=np.int64)
            n_chunks = min(len(qb), 8 * threads)
            hops += int(_walk_block(qb, tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, wn,
                                    uniform, int(max_user_degree), DEGREE_CAP_MODES[degree_cap_mode], int(seed),
                                    int(walks_per_query), int(walk_length), float(restart_prob), int(top_k),
                                    int(min_visits), int(walkers_in_flight), table_size, n_chunks, ob, osc, on))
            keep = (np.arange(top_k)[None, :] < on[:, None]).ravel()
            out_a.append(np.repeat(qb.astype(np.int32), on))
            out_b.append(ob[keep])
            out_s.append(osc[keep])
            bar.update(len(qb))
    if not out_a:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64), 0
    a, b, s = np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_s)
    log.info("walk: %d queries, %d hops, %d pairs", len(queries), hops, len(a))
    return a, b, s, hops
