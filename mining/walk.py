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
Each walk has its own SplitMix64 stream seeded by ``(seed, query, walk number)`` and makes its
draws in a fixed order; visit counts are order-independent and ties are broken by tweet id.
So the output is byte-identical for the same seed whatever the number of threads, the block
size and ``walkers_in_flight``.

A step is a chain of dependent loads (row offsets, then the neighbour, then its row offsets
...), each a likely cache miss on graphs larger than the cache. ``prange`` runs chunks of
queries in parallel. In a chunk, a pool of ``walkers_in_flight`` walkers takes walks (of
consecutive queries) from a queue and advances in lock-step rounds of four phase loops; each
phase uses the load that the previous phase prefetched for the same walker W walkers earlier,
so about W misses per thread are in flight (see :func:`_walk_pool`). In sample mode the kept
engagements of each down-sampled user are gathered once into a small side CSR, so a step out
of such a user needs no rejection. ``walkers_in_flight=1`` runs the sequential reference loop
(:func:`_walks_plain`, one walk after another), which the tests hold the pool to byte for byte.
"""

from __future__ import annotations

import logging

import numba
import numpy as np
from numba import get_num_threads, njit, prange

from mining.rng import GOLDEN, hash3, next_below, next_float, prefetch, stream_seed, u64_to_unit

log = logging.getLogger(__name__)

DEGREE_CAP_MODES = {"skip": 0, "sample": 1}
MAX_TRIES = 64  # rejections in a row before the exact fallback scan of a row
_KEEP_SALT = np.uint64(0x5EED0F5A3B1E7C4D)  # separates the edge-keep hash from the walk streams


# ---------------------------------------------------------------------------------------------
# step helpers shared by the reference walker and the walker pool (they must draw identically)
# ---------------------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _keep_hash(seed, u, t, d, cap):
    """Down-sampling of a user of degree ``d > cap``: whether its edge to tweet t is kept."""
    return u64_to_unit(hash3(np.uint64(seed) ^ _KEEP_SALT, u, t)) * d < cap


@njit(inline="always", cache=True)
def _kept(seed, u, t, d, cap, mode):
    """Whether edge (user u, tweet t) is usable: u within the cap, or kept by down-sampling."""
    if d <= cap:
        return True
    if mode == 0:
        return False
    return _keep_hash(seed, u, t, d, cap)


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
def _row_fallback(state, i, lo, d, etype, wn):
    """Exact weighted choice among entries ``[lo, lo + d)`` of a user row (all usable); -1 if none."""
    total = 0.0
    for j in range(lo, lo + d):
        total += wn[etype[j]]
    if total <= 0.0:
        return -1
    r = next_float(state, i) * total
    last = -1
    for j in range(lo, lo + d):
        x = wn[etype[j]]
        if x > 0.0:
            last = j
            r -= x
            if r < 0.0:
                return j
    return last


@njit(parallel=True, nogil=True, cache=True)
def _kept_lists(capped, ut_indptr, ut_indices, ut_etype, seed, cap):
    """The kept engagements of each down-sampled user ``capped[i]`` (sample mode), in row order:
    ``(ptr int64 [n+1], tweet int32, etype int8)``; user ``capped[i]``'s list is ``ptr[i]:ptr[i+1]``."""
    n = len(capped)
    counts = np.zeros(n + 1, dtype=np.int64)
    for i in prange(n):
        u = capped[i]
        lo, hi = ut_indptr[u], ut_indptr[u + 1]
        c = 0
        for j in range(lo, hi):
            if _keep_hash(seed, u, ut_indices[j], hi - lo, cap):
                c += 1
        counts[i + 1] = c
    ptr = np.cumsum(counts)
    tweet = np.empty(ptr[n], dtype=np.int32)
    etype = np.empty(ptr[n], dtype=np.int8)
    for i in prange(n):
        u = capped[i]
        lo, hi = ut_indptr[u], ut_indptr[u + 1]
        k = ptr[i]
        for j in range(lo, hi):
            if _keep_hash(seed, u, ut_indices[j], hi - lo, cap):
                tweet[k] = ut_indices[j]
                etype[k] = ut_etype[j]
                k += 1
    return ptr, tweet, etype


# ---------------------------------------------------------------------------------------------
# visit counting: a small open-addressing hash table per thread, reset after each query
# ---------------------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _visit(keys, vals, used, n_used, t, shift):
    mask = len(keys) - 1
    # Fibonacci hashing: the top bits of t * 2**64/phi (one multiply; spreads tweet ids well)
    h = np.int64((np.uint64(t) * GOLDEN) >> shift)
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
def _emit(keys, vals, used, n_used, heap, top_k, min_visits, out_b, out_s, base):
    """Reset the table and write its top-k visited tweets at ``out_*[base:]``; returns how many."""
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


@njit(cache=True, inline="always")
def _visit_table(table_bits):
    """An empty visit table of ``2**table_bits`` slots: ``(keys, vals, used, shift)``, where
    ``shift`` = 64 - table_bits is what :func:`_visit` shifts its hash by."""
    size = 1 << table_bits
    return (np.full(size, -1, dtype=np.int32), np.zeros(size, dtype=np.int32), np.empty(size, dtype=np.int64),
            np.uint64(64 - table_bits))


@njit(cache=True)
def _count_emit(vis, lo, n, keys, vals, used, shift, heap, top_k, min_visits, out_b, out_s, base):
    """Count the visits ``vis[lo:lo+n]`` of one query and write its top-k at ``out_*[base:]``;
    ``shift`` = 64 - log2(len(keys)) (see :func:`_visit`)."""
    n_used = 0
    for i in range(lo, lo + n):
        n_used = _visit(keys, vals, used, n_used, vis[i], shift)
    return _emit(keys, vals, used, n_used, heap, top_k, min_visits, out_b, out_s, base)


# ---------------------------------------------------------------------------------------------
# the reference walker: one query, one walk after the other
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _walks_plain(q, state, tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, k_slot, k_ptr,
                 k_tweet, k_etype, wn, uniform, cap, mode, seed, n_walks, length, restart_prob, vis):
    """All walks of query q, one after the other; the visits go to ``vis``, returns (visits, hops).

    The walker pool (:func:`_walk_pool`) makes exactly the same draws per walk; the tests check
    that both give the same bytes.
    """
    n_vis = 0
    hops = 0
    for walk in range(n_walks):
        state[0] = stream_seed(seed, q, walk)
        t = q
        for h in range(length):
            # tweet -> user: uniform edge, accepted with its type's weight and if the user is usable
            tlo = tu_indptr[t]
            td = tu_indptr[t + 1] - tlo
            tr = 0
            j = tlo + next_below(state, 0, td)
            while True:
                ok = uniform or next_float(state, 0) < wn[tu_etype[j]]
                if ok:
                    u = tu_indices[j]
                    d = ut_indptr[u + 1] - ut_indptr[u]
                    ok = d <= cap or (mode == 1 and _keep_hash(seed, u, t, d, cap))
                if ok:
                    break
                tr += 1
                if tr >= MAX_TRIES:
                    j = _tweet_fallback(state, 0, t, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed, cap, mode)
                    break
                j = tlo + next_below(state, 0, td)
            if j < 0:
                break
            u = tu_indices[j]
            # user -> tweet: over the user's row, or its kept list when it is down-sampled
            a = ut_indptr[u]
            d = ut_indptr[u + 1] - a
            kl = d > cap
            if kl:
                ks = k_slot[u]
                a = k_ptr[ks]
                d = k_ptr[ks + 1] - a
            tr = 0
            while True:
                j = a + next_below(state, 0, d)
                et = k_etype[j] if kl else ut_etype[j]
                if uniform or next_float(state, 0) < wn[et]:
                    break
                tr += 1
                if tr >= MAX_TRIES:
                    j = _row_fallback(state, 0, a, d, k_etype if kl else ut_etype, wn)
                    break
            if j < 0:
                break
            t = k_tweet[j] if kl else ut_indices[j]
            hops += 1
            if t != q:
                vis[n_vis] = t
                n_vis += 1
            if h + 1 == length:
                break
            if restart_prob > 0.0 and next_float(state, 0) < restart_prob:
                break
    return n_vis, hops


# ---------------------------------------------------------------------------------------------
# the walker pool: W walkers per thread in lock-step phases, walks of many queries in flight
# ---------------------------------------------------------------------------------------------

# walker stages; each round runs one phase loop per stage, in this order
_A = 0  # at tweet cur[w], its row offsets requested: draw an edge of the row
_B = 1  # tweet edge jj[w] requested: weight test, then request the user's row offsets
_C = 2  # user uu[w]'s row offsets requested: cap test, then draw an edge of the user's row
_D = 3  # user edge jj[w] requested: weight test; a hop is complete
_END = 4  # the walk has ended: count it, take the next walk
_IDLE = 5  # no walk (none left, or the next query's visit slot is still busy)


@njit(inline="always", cache=True)
def _start_walk(w, queries, nqi, nwalk, q_lo, q_hi, n_slots, sq, vcnt, rem, out_n, state, stage, cur, qv, slot,
                hop, tries, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, check_rows, seed, cap, mode, n_walks):
    """Give walker w the next walk of the chunk; returns ``(nqi, nwalk, started)``.

    Walks are handed out in (query, walk number) order; a query takes visit slot
    ``(qi - q_lo) % n_slots`` for as long as any of its walks runs.
    """
    while nqi < q_hi:
        s = (nqi - q_lo) % n_slots
        q = queries[nqi]
        if nwalk == 0:
            if sq[s] >= 0:
                return nqi, nwalk, False  # the slot's previous query still has walks in flight
            if tu_indptr[q + 1] == tu_indptr[q] or (
                    check_rows and _tweet_row_weight(q, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed, cap,
                                                     mode) <= 0.0):
                out_n[nqi] = 0  # no usable edge (all its users above the cap, or weight 0): no walks
                nqi += 1
                continue
            sq[s] = nqi
            vcnt[s] = 0
            rem[s] = n_walks
        state[w] = stream_seed(seed, q, nwalk)
        cur[w] = q
        qv[w] = q
        slot[w] = s
        hop[w] = 0
        tries[w] = 0
        stage[w] = _A
        prefetch(tu_indptr, q)
        nwalk += 1
        if nwalk == n_walks:
            nwalk = 0
            nqi += 1
        return nqi, nwalk, True
    return nqi, nwalk, False


@njit(cache=True)
def _reject_tweet_edge(w, state, stage, cur, tries, jj, uu, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed,
                       cap, mode):
    """Walker w's tweet-step candidate was rejected: redraw it (stage B), or after MAX_TRIES
    rejections take the exact fallback's edge (stage C, tries = -1: no more tests)."""
    t = cur[w]
    tries[w] += 1
    if tries[w] >= MAX_TRIES:
        j = _tweet_fallback(state, w, t, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed, cap, mode)
        if j < 0:
            stage[w] = _END  # cannot happen (the walk came over a usable edge); be safe
            return
        uu[w] = tu_indices[j]
        tries[w] = -1
        prefetch(ut_indptr, uu[w])
        stage[w] = _C
        return
    lo = tu_indptr[t]
    j = lo + next_below(state, w, tu_indptr[t + 1] - lo)
    jj[w] = j
    prefetch(tu_indices, j)
    prefetch(tu_etype, j)
    stage[w] = _B


@njit(cache=True)
def _reject_user_edge(w, state, stage, tries, jj, uu, isk, ut_indptr, ut_indices, ut_etype, k_slot, k_ptr, k_tweet,
                      k_etype, wn):
    """Walker w's user-step candidate was rejected: redraw it, or after MAX_TRIES rejections take
    the exact fallback's edge (tries = -1: accepted when the walker comes back). Stays in stage D."""
    u = uu[w]
    if isk:
        ks = k_slot[u]
        a = k_ptr[ks]
        d = k_ptr[ks + 1] - a
    else:
        a = ut_indptr[u]
        d = ut_indptr[u + 1] - a
    tries[w] += 1
    if tries[w] >= MAX_TRIES:
        j = _row_fallback(state, w, a, d, k_etype if isk else ut_etype, wn)
        if j < 0:
            stage[w] = _END
            return
        tries[w] = -1
    else:
        j = a + next_below(state, w, d)
    jj[w] = j
    if isk:
        prefetch(k_tweet, j)
        prefetch(k_etype, j)
    else:
        prefetch(ut_indices, j)
        prefetch(ut_etype, j)


@njit(parallel=True, nogil=True, cache=True)
def _walk_pool(queries, tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, k_slot, k_ptr, k_tweet,
               k_etype, wn, uniform, check_rows, cap, mode, seed, n_walks, length, restart_prob, top_k, min_visits,
               W, n_slots, table_bits, n_chunks, out_b, out_s, out_n):
    """Walk from each query; top-k visits of query i go to ``out_*[i*top_k:]``; returns the hops.

    ``prange`` over chunks of queries. In a chunk, W walkers take walks (of consecutive queries)
    from a queue and advance in rounds of four phase loops (see the stages above). A phase
    issues each walker's next load as a prefetch; the next phase uses it, W walkers later, so
    about W cache misses are in flight per thread, and the loops stay branch-light because the
    walkers move in step. A walker whose candidate edge is rejected (type weight, degree cap)
    redraws and stays in its stage for the next round. Each walk draws from its own stream
    (seed, query, walk number), so scheduling never changes the result.
    """
    nq = len(queries)
    L = n_walks * length  # most visits one query can collect
    hops_per_chunk = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        keys, vals, used, shift = _visit_table(table_bits)
        heap = np.empty(max(top_k, 1), dtype=np.int64)
        vis = np.empty(n_slots * L, dtype=np.int32)
        vcnt = np.zeros(n_slots, dtype=np.int64)
        rem = np.zeros(n_slots, dtype=np.int64)
        sq = np.full(n_slots, -1, dtype=np.int64)
        state = np.zeros(W, dtype=np.uint64)
        stage = np.full(W, _IDLE, dtype=np.int64)
        cur = np.zeros(W, dtype=np.int64)  # current tweet
        qv = np.zeros(W, dtype=np.int64)  # the walk's query tweet
        slot = np.zeros(W, dtype=np.int64)
        hop = np.zeros(W, dtype=np.int64)
        tries = np.zeros(W, dtype=np.int64)  # rejections in this step; -1: edge chosen by the exact fallback
        jj = np.zeros(W, dtype=np.int64)  # candidate edge
        uu = np.zeros(W, dtype=np.int64)  # current user
        kl = np.zeros(W, dtype=np.bool_)  # the user is down-sampled: its step draws from its kept list
        q_lo = nq * c // n_chunks
        q_hi = nq * (c + 1) // n_chunks
        nqi = q_lo
        nwalk = 0
        n_idle = W
        hops = 0
        while True:
            # walks that ended: count them (emit the query after its last walk); take new walks
            for w in range(W):
                st = stage[w]
                if st == _END:
                    s = slot[w]
                    rem[s] -= 1
                    if rem[s] == 0:
                        qi = sq[s]
                        out_n[qi] = _count_emit(vis, s * L, vcnt[s], keys, vals, used, shift, heap, top_k, min_visits,
                                                out_b, out_s, qi * top_k)
                        sq[s] = -1
                    stage[w] = _IDLE
                    n_idle += 1
                    st = _IDLE
                if st == _IDLE and nqi < q_hi:
                    nqi, nwalk, ok = _start_walk(w, queries, nqi, nwalk, q_lo, q_hi, n_slots, sq, vcnt, rem, out_n,
                                                 state, stage, cur, qv, slot, hop, tries, tu_indptr, tu_indices,
                                                 tu_etype, ut_indptr, wn, check_rows, seed, cap, mode, n_walks)
                    if ok:
                        n_idle -= 1
            if n_idle == W:
                break
            # A: draw an edge of the tweet's row
            for w in range(W):
                if stage[w] == _A:
                    t = cur[w]
                    lo = tu_indptr[t]
                    j = lo + next_below(state, w, tu_indptr[t + 1] - lo)
                    jj[w] = j
                    prefetch(tu_indices, j)
                    if not uniform:
                        prefetch(tu_etype, j)
                    stage[w] = _B
            # B: the tweet edge's weight test; request the user's row offsets
            for w in range(W):
                if stage[w] == _B:
                    j = jj[w]
                    if uniform or next_float(state, w) < wn[tu_etype[j]]:
                        u = tu_indices[j]
                        uu[w] = u
                        prefetch(ut_indptr, u)
                        stage[w] = _C
                    else:
                        _reject_tweet_edge(w, state, stage, cur, tries, jj, uu, tu_indptr, tu_indices, tu_etype,
                                           ut_indptr, wn, seed, cap, mode)
            # C: the user's cap test; draw an edge of its row (or kept list)
            for w in range(W):
                if stage[w] == _C:
                    u = uu[w]
                    a = ut_indptr[u]
                    d = ut_indptr[u + 1] - a
                    isk = d > cap
                    if isk:
                        if tries[w] >= 0 and (mode == 0 or not _keep_hash(seed, u, cur[w], d, cap)):
                            # the tweet step's candidate is rejected: redraw it
                            _reject_tweet_edge(w, state, stage, cur, tries, jj, uu, tu_indptr, tu_indices, tu_etype,
                                               ut_indptr, wn, seed, cap, mode)
                            continue
                        ks = k_slot[u]
                        a = k_ptr[ks]
                        d = k_ptr[ks + 1] - a
                    kl[w] = isk
                    tries[w] = 0
                    j = a + next_below(state, w, d)
                    jj[w] = j
                    if isk:
                        prefetch(k_tweet, j)
                    else:
                        prefetch(ut_indices, j)
                        if not uniform:
                            prefetch(ut_etype, j)
                    stage[w] = _D
            # D: the user edge's weight test; count the visit; continue, restart or end the walk
            for w in range(W):
                if stage[w] == _D:
                    j = jj[w]
                    isk = kl[w]
                    if not uniform and tries[w] >= 0 and not (
                            next_float(state, w) < wn[k_etype[j] if isk else ut_etype[j]]):
                        _reject_user_edge(w, state, stage, tries, jj, uu, isk, ut_indptr, ut_indices, ut_etype, k_slot,
                                          k_ptr, k_tweet, k_etype, wn)
                        continue
                    t2 = np.int64(k_tweet[j]) if isk else np.int64(ut_indices[j])
                    hops += 1
                    s = slot[w]
                    if t2 != qv[w]:
                        vis[s * L + vcnt[s]] = t2
                        vcnt[s] += 1
                    hop[w] += 1
                    if hop[w] < length and not (restart_prob > 0.0 and next_float(state, w) < restart_prob):
                        cur[w] = t2
                        tries[w] = 0
                        prefetch(tu_indptr, t2)
                        stage[w] = _A
                    else:
                        stage[w] = _END
        hops_per_chunk[c] = hops
    return hops_per_chunk.sum()


@njit(parallel=True, nogil=True, cache=True)
def _walk_plain_block(queries, tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, k_slot, k_ptr,
                      k_tweet, k_etype, wn, uniform, check_rows, cap, mode, seed, n_walks, length, restart_prob, top_k,
                      min_visits, table_bits, n_chunks, out_b, out_s, out_n):
    """The reference: each query's walks one after the other (``walkers_in_flight=1``)."""
    nq = len(queries)
    hops_per_chunk = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        keys, vals, used, shift = _visit_table(table_bits)
        heap = np.empty(max(top_k, 1), dtype=np.int64)
        vis = np.empty(n_walks * length, dtype=np.int32)
        state = np.zeros(1, dtype=np.uint64)
        hops = 0
        for qi in range(nq * c // n_chunks, nq * (c + 1) // n_chunks):
            q = queries[qi]
            out_n[qi] = 0
            if tu_indptr[q + 1] == tu_indptr[q]:
                continue
            if check_rows and _tweet_row_weight(q, tu_indptr, tu_indices, tu_etype, ut_indptr, wn, seed, cap,
                                                mode) <= 0.0:
                continue
            n_vis, h = _walks_plain(q, state, tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, k_slot,
                                    k_ptr, k_tweet, k_etype, wn, uniform, cap, mode, seed, n_walks, length,
                                    restart_prob, vis)
            hops += h
            out_n[qi] = _count_emit(vis, 0, n_vis, keys, vals, used, shift, heap, top_k, min_visits, out_b, out_s,
                                    qi * top_k)
        hops_per_chunk[c] = hops
    return hops_per_chunk.sum()


# ---------------------------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _compact(out_n, top_k, out_b, out_s):
    """Move the pairs of query i (``out_*[i*top_k:][:out_n[i]]``) together, in place; returns how many."""
    k = 0
    for i in range(len(out_n)):
        base = i * top_k
        for j in range(out_n[i]):
            out_b[k] = out_b[base + j]
            out_s[k] = out_s[base + j]
            k += 1
    return k


@njit(parallel=True, nogil=True, cache=True)
def _type_counts(et, n_types):
    """Edges per engagement type ``[n_types]`` (types already checked to lie in range)."""
    n_chunks = 64
    counts = np.zeros((n_chunks, n_types), np.int64)
    for c in prange(n_chunks):
        for i in range(len(et) * c // n_chunks, len(et) * (c + 1) // n_chunks):
            counts[c, et[i]] += 1
    return counts.sum(axis=0)


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
        if len(et):
            lo, hi = int(et.min()), int(et.max())
            if lo < 0 or hi >= len(w):
                raise ValueError(f"{name} must index type_weights (length {len(w)}), got [{lo}, {hi}]")
    wn = w / w.max()
    return tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, wn


def walk_pairs(tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, type_weights, *,
               queries=None, walks_per_query=200, walk_length=4, restart_prob=0.5, max_user_degree=100,
               degree_cap_mode="skip", top_k=20, min_visits=2, seed=0, walkers_in_flight=64,
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
        Walkers per thread advancing together so their memory loads overlap (default 64: the
        best measured on a 20M-edge graph, see docs/mining_kernels.md); 1 = the sequential
        reference loop. Changes speed only, never the result.
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
              degree_cap_mode="skip", top_k=20, min_visits=2, seed=0, walkers_in_flight=64,
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
    # the engagement types that occur (counted only when their weights differ)
    if np.all(wn == 1.0):
        present = np.arange(len(wn))
    else:
        present = np.flatnonzero(_type_counts(tu_etype, len(wn)) > 0)
    uniform = bool(np.all(wn[present] == 1.0))
    cap, mode = int(max_user_degree), DEGREE_CAP_MODES[degree_cap_mode]
    user_deg = np.diff(ut_indptr)
    capped = np.flatnonzero(user_deg > cap)
    # a query needs its usable weight checked only if some edges can be unusable
    check_rows = bool(len(capped) > 0 or np.any(wn[present] == 0.0))
    k_slot, k_ptr = np.zeros(1, np.int32), np.zeros(2, np.int64)
    k_tweet, k_etype = np.zeros(1, np.int32), np.zeros(1, np.int8)
    if mode == 1 and len(capped):
        # sample mode: the kept engagements of each down-sampled user, so a step out of it needs no rejection
        k_slot = np.full(len(user_deg), -1, np.int32)
        k_slot[capped] = np.arange(len(capped), dtype=np.int32)
        k_ptr, k_tweet, k_etype = _kept_lists(capped.astype(np.int64), ut_indptr, ut_indices, ut_etype, int(seed), cap)
    if len(tu_indices) < 2**31:
        # int32 row offsets: half the cache footprint of the offsets every step reads
        tu_indptr, ut_indptr = tu_indptr.astype(np.int32), ut_indptr.astype(np.int32)
    W = int(walkers_in_flight)
    # visit slots: queries whose walks may be in flight at once (a slot is reused round-robin)
    n_slots = min(2 * W + 4, 4 + -(-4 * W // int(walks_per_query)))
    # visit table: a power of two >= 2 * (most visits of one query) + 1, at least 16 slots
    table_bits = max(4, int(2 * walks_per_query * walk_length).bit_length())
    threads = get_num_threads()
    block = int(block_size or max(16384, 8192 * threads))
    out_a, out_b, out_s = [], [], []
    hops = 0
    # chunks go to threads one at a time (dynamic scheduling): a thread slowed by other work on
    # the machine does not hold up the block; the result does not depend on the schedule
    chunksize = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(1)
    try:
        with tqdm(total=len(queries), desc="walk", unit="query", disable=None if progress else True) as bar:
            for start in range(0, len(queries), block):
                qb = queries[start:start + block]
                ob = np.empty(len(qb) * top_k, dtype=np.int32)
                osc = np.empty(len(qb) * top_k, dtype=np.float64)
                on = np.zeros(len(qb), dtype=np.int64)
                n_chunks = min(len(qb), 16 * threads)
                common = (qb, tu_indptr, tu_indices, tu_etype, ut_indptr, ut_indices, ut_etype, k_slot, k_ptr,
                          k_tweet, k_etype, wn, uniform, check_rows, cap, mode, int(seed), int(walks_per_query),
                          int(walk_length), float(restart_prob), int(top_k), int(min_visits))
                if W == 1:
                    hops += int(_walk_plain_block(*common, table_bits, n_chunks, ob, osc, on))
                else:
                    hops += int(_walk_pool(*common, W, n_slots, table_bits, n_chunks, ob, osc, on))
                n_out = _compact(on, top_k, ob, osc)
                out_a.append(np.repeat(qb.astype(np.int32), on))
                out_b.append(ob[:n_out])
                out_s.append(osc[:n_out])
                bar.update(len(qb))
    finally:
        numba.set_parallel_chunksize(chunksize)
    if not out_a:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64), 0
    a, b, s = np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_s)
    log.info("walk: %d queries, %d hops, %d pairs", len(queries), hops, len(a))
    return a, b, s, hops
