"""Clean candidate pairs into training pairs (every mining method goes through this).

A method returns candidate pairs ``(a, b, score)`` of tweet node ids, ``a`` being the
query tweet and ``b`` a tweet found from it (a pair may come back in both orders).
:func:`postprocess` applies, in this order, and counts what each step drops:

1. ``self_pairs``: ``a == b``;
2. ``below_threshold``: ``score < min_score`` (when a threshold is set);
3. ``without_text``: either tweet has no text (a pair the LM cannot train on);
4. ``near_duplicate_text``: the two texts are identical after :func:`normalize_texts`
   (lowercase; URLs, @mentions, a leading "RT", punctuation and extra whitespace removed;
   optionally hashtags), or their word-shingle sets have Jaccard similarity
   ``>= near_dup_jaccard`` -- retweets and copy-paste are trivial positives;
5. ``over_max_per_tweet``: beyond the ``max_pairs_per_tweet`` best pairs of each query
   tweet (highest score first, ties by the other tweet's id);
6. ``duplicates``: the same unordered pair again (the higher score is kept);
7. ``over_popularity_cap``: a greedy pass over the pairs by descending score (ties by
   ``(a, b)``) keeps a pair only while both its tweets are in fewer than
   ``popularity_cap`` kept pairs, so no hub tweet dominates the training set.

The result is one row per unordered pair with ``a < b``, sorted by descending score, then
``a``, then ``b``: deterministic for deterministic input. The counts add up:
``candidates == sum(dropped) + written``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass

import numpy as np
from numba import njit, prange

log = logging.getLogger(__name__)

DROP_REASONS = ("self_pairs", "below_threshold", "without_text", "near_duplicate_text",
                "over_max_per_tweet", "duplicates", "over_popularity_cap")


@dataclass
class PostprocessConfig:
    """How candidate pairs are cleaned (see the module docstring for the order of steps)."""

    max_pairs_per_tweet: int | None = 10  # best pairs kept per query tweet; None = no limit
    popularity_cap: int | None = 50  # a tweet joins at most this many pairs; None = no cap
    min_score: float | None = None  # drop pairs scoring below this; None = keep all
    drop_near_duplicates: bool = True  # drop pairs whose texts are (near-)identical
    near_dup_jaccard: float | None = 0.9  # word-shingle Jaccard at/above which texts are near-identical; None = exact match only
    shingle_size: int = 1  # words per shingle for the Jaccard check (1 = word sets)
    drop_hashtags: bool = False  # remove #hashtags entirely when normalising (default: keep the word, drop '#')
    require_text: bool = True  # drop pairs where a tweet has no text

    def validate(self) -> "PostprocessConfig":
        for name in ("max_pairs_per_tweet", "popularity_cap"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
        if self.near_dup_jaccard is not None and not 0.0 < self.near_dup_jaccard <= 1.0:
            raise ValueError(f"near_dup_jaccard must lie in (0, 1], got {self.near_dup_jaccard!r}")
        if self.shingle_size < 1:
            raise ValueError(f"shingle_size must be >= 1, got {self.shingle_size!r}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- text normalisation

_URL = re.compile(r"(?:https?://|www\.)\S+")
_MENTION = re.compile(r"@\w+")
_RT = re.compile(r"^\s*rt\b[\s:]*")
_HASHTAG = re.compile(r"#\w+")
_NON_WORD = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")


def normalize_texts(texts, drop_hashtags: bool = False) -> np.ndarray:
    """Normalised texts (object array of str) for near-duplicate detection.

    Lowercases; removes URLs, @mentions, a leading "RT", punctuation (and, with
    ``drop_hashtags``, whole hashtags; otherwise only the '#'); collapses whitespace.
    ``None``/NaN becomes "".
    """
    import pandas as pd

    s = pd.Series(texts, dtype=object).fillna("").astype(str).str.lower()
    s = s.str.replace(_URL, " ", regex=True).str.replace(_MENTION, " ", regex=True)
    s = s.str.replace(_RT, "", regex=True)
    if drop_hashtags:
        s = s.str.replace(_HASHTAG, " ", regex=True)
    s = s.str.replace(_NON_WORD, " ", regex=True).str.replace(_SPACE, " ", regex=True).str.strip()
    return s.to_numpy(dtype=object)


_TEXT_CHUNK = 1 << 17  # texts normalised per batch: bounds the Python string objects alive at once


def _arrow_strings(texts):
    """``texts`` as a pyarrow large_string array (None/NaN become null)."""
    import pyarrow as pa

    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if isinstance(texts, pa.Array):
        return texts.cast(pa.large_string())
    return pa.array(np.asarray(texts, dtype=object), type=pa.large_string(), from_pandas=True)


def normalize_texts_arrow(texts, drop_hashtags: bool = False):
    """:func:`normalize_texts` in batches, gathered into one compact pyarrow string array.

    The regular expressions run per batch of ``_TEXT_CHUNK`` texts, so only one batch of
    Python string objects is alive at a time (millions of texts stay within ~2 bytes of
    arrow memory per character instead of ~60 bytes per Python object).
    """
    import pyarrow as pa

    texts = np.asarray(texts, dtype=object)
    parts = [pa.array(normalize_texts(texts[i:i + _TEXT_CHUNK], drop_hashtags), type=pa.large_string())
             for i in range(0, len(texts), _TEXT_CHUNK)]
    return pa.concat_arrays(parts) if parts else pa.array([], type=pa.large_string())


def shingle_sets(normalized, shingle_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each text's set of word shingles as sorted int64 hashes, in CSR form ``(indptr, ids)``.

    ``normalized``: texts (object array, list or pyarrow string array); words are separated
    by whitespace as ``str.split()`` does. A shingle is ``shingle_size`` consecutive words; a
    text with fewer words has its whole word sequence as its one shingle; an empty text has
    no shingles. Words are numbered by pyarrow (no Python object per word) and the shingles
    hashed, sorted and de-duplicated per text by a parallel Numba kernel.
    """
    import pyarrow.compute as pc

    arr = _arrow_strings(normalized)
    n = len(arr)
    words = pc.utf8_split_whitespace(arr)
    flat = pc.list_flatten(words)
    owner = np.asarray(pc.list_parent_indices(words).to_numpy(zero_copy_only=False), dtype=np.int64)
    real = np.asarray(pc.not_equal(flat, "").to_numpy(zero_copy_only=False), dtype=bool)  # leading/trailing space
    if not real.all():
        flat, owner = flat.filter(real), owner[real]
    word_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=word_ptr[1:])
    del owner, real
    if len(flat) == 0:
        return word_ptr, np.zeros(0, dtype=np.int64)
    codes = np.asarray(pc.dictionary_encode(flat).indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    del flat, words
    return _shingle_csr(word_ptr, codes, int(shingle_size))


@njit(parallel=True, nogil=True, cache=True)
def _shingle_csr(word_ptr, codes, k):  # pragma: no cover - compiled
    n = len(word_ptr) - 1
    counts = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        length = word_ptr[i + 1] - word_ptr[i]
        counts[i] = 0 if length == 0 else (1 if length < k else length - k + 1)
    ptr = np.zeros(n + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(counts)
    raw = np.empty(ptr[n], dtype=np.int64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    for i in prange(n):  # hash every shingle, sort and de-duplicate in place; counts[i] becomes the unique count
        s, length, o, m = word_ptr[i], word_ptr[i + 1] - word_ptr[i], ptr[i], counts[i]
        w = min(k, length)
        for j in range(m):
            h = np.uint64(0)
            for t in range(w):
                h = h * mult + np.uint64(codes[s + j + t] + 1)
            raw[o + j] = np.int64(h)
        seg = raw[o:o + m]
        seg.sort()
        u = 0
        for j in range(m):
            if j == 0 or seg[j] != seg[u - 1]:
                seg[u] = seg[j]
                u += 1
        counts[i] = u
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(counts)
    ids = np.empty(indptr[n], dtype=np.int64)
    for i in prange(n):
        ids[indptr[i]:indptr[i + 1]] = raw[ptr[i]:ptr[i] + counts[i]]
    return indptr, ids


@njit(parallel=True, nogil=True, cache=True)
def _jaccard_fill(indptr, ids, a, b, threshold, dup):  # pragma: no cover - compiled
    """``dup[i] |= Jaccard(shingles(a[i]), shingles(b[i])) >= threshold``; rows already True are skipped."""
    for i in prange(len(a)):
        if dup[i]:
            continue
        sa, ea = indptr[a[i]], indptr[a[i] + 1]
        sb, eb = indptr[b[i]], indptr[b[i] + 1]
        na, nb = ea - sa, eb - sb
        if na == 0 or nb == 0:
            continue
        small, large = min(na, nb), max(na, nb)
        if small < threshold * large:  # |A∩B|/|A∪B| <= small/large
            continue
        inter = 0
        x, y = sa, sb
        while x < ea and y < eb:
            if ids[x] == ids[y]:
                inter += 1
                x += 1
                y += 1
            elif ids[x] < ids[y]:
                x += 1
            else:
                y += 1
        dup[i] = inter >= threshold * (na + nb - inter)


def near_duplicate_mask(a, b, text_of, *, jaccard: float | None = 0.9, shingle_size: int = 1,
                        drop_hashtags: bool = False) -> np.ndarray:
    """True where the texts of tweets ``a[i]`` and ``b[i]`` are (near-)identical.

    ``text_of`` maps a tweet node id to its text (object array). Texts are compared after
    :func:`normalize_texts`: equal normalised texts are duplicates; with ``jaccard`` set,
    so are texts whose word-shingle sets overlap at least that much. Texts that normalise
    to "" (only a URL, say) are never called duplicates of each other.
    """
    import pyarrow.compute as pc

    a = np.asarray(a)
    b = np.asarray(b)
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    text_of = np.asarray(text_of, dtype=object)
    # the tweets in pairs, numbered 0..len(nodes)-1 (a table lookup, not a sort of 2·len(a) ids)
    seen = np.zeros(len(text_of), dtype=bool)
    seen[a] = True
    seen[b] = True
    nodes = np.flatnonzero(seen)
    del seen
    local = np.full(len(text_of), -1, dtype=np.int32)  # node ids are int32 (graph artifact contract)
    local[nodes] = np.arange(len(nodes), dtype=np.int32)
    ia, ib = local[a], local[b]
    del local
    norm = normalize_texts_arrow(text_of[nodes], drop_hashtags=drop_hashtags)
    key = pc.dictionary_encode(norm).indices.to_numpy(zero_copy_only=False)  # int32
    empty = np.asarray(pc.equal(norm, "").to_numpy(zero_copy_only=False), dtype=bool)
    dup = (key[ia] == key[ib]) & ~empty[ia]
    del key, empty
    if jaccard is not None:
        indptr, ids = shingle_sets(norm, shingle_size)
        del norm
        _jaccard_fill(indptr, ids, ia, ib, float(jaccard), dup)
    return dup


# --------------------------------------------------------------------------- caps


def top_per_query(a, b, score, limit: int) -> np.ndarray:
    """Mask keeping each query tweet's ``limit`` best pairs (score desc, ties by ``b``)."""
    order = np.lexsort((b, -score, a))
    return _first_per_group(a, order, int(limit))


@njit(nogil=True, cache=True)
def _first_per_group(a, order, limit):  # pragma: no cover - compiled
    """Keep the first ``limit`` rows of each run of equal ``a`` along ``order``."""
    keep = np.zeros(len(order), dtype=np.bool_)
    rank = 0
    for j in range(len(order)):
        i = order[j]
        if j == 0 or a[i] != a[order[j - 1]]:
            rank = 0
        if rank < limit:
            keep[i] = True
        rank += 1
    return keep


def unique_unordered(a, b, score) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One row per unordered pair, oriented ``a < b``, keeping the higher score."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if len(lo) == 0:
        return lo, hi, score, 0
    order = np.lexsort((-score, hi, lo))
    lo, hi, s = lo[order], hi[order], score[order]
    first = np.ones(len(lo), dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], s[first], int(len(lo) - first.sum())


@njit(nogil=True, cache=True)
def _greedy_cap(a, b, order, n_nodes, cap):  # pragma: no cover - compiled
    used = np.zeros(n_nodes, dtype=np.int64)
    keep = np.zeros(len(a), dtype=np.bool_)
    for j in range(len(order)):
        i = order[j]
        if used[a[i]] < cap and used[b[i]] < cap:
            keep[i] = True
            used[a[i]] += 1
            used[b[i]] += 1
    return keep


def popularity_cap_mask(a, b, score, cap: int, n_nodes: int | None = None) -> np.ndarray:
    """Greedy by descending score (ties by ``(a, b)``): keep a pair while both tweets have < ``cap``."""
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    n_nodes = int(max(a.max(), b.max()) + 1) if n_nodes is None else int(n_nodes)
    order = np.lexsort((b, a, -score))
    return _greedy_cap(a, b, order, n_nodes, int(cap))


# --------------------------------------------------------------------------- the pipeline


def postprocess(a, b, score, *, text_of=None, config: PostprocessConfig | None = None,
                n_tweets: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Clean candidate pairs; returns ``(a int32, b int32, score float64, counts)``.

    ``text_of``: object array [n_tweets] of texts (None for a tweet without text); needed
    for the text steps (without it, they are skipped and counted as 0).
    """
    config = (config or PostprocessConfig()).validate()
    # node ids are int32 by the graph contract (and in the result); int32 halves the memory of
    # 100M-candidate runs
    a = np.asarray(a, dtype=np.int32)
    b = np.asarray(b, dtype=np.int32)
    score = np.asarray(score, dtype=np.float64)
    if not (len(a) == len(b) == len(score)):
        raise ValueError(f"pair arrays differ in length: {len(a)}, {len(b)}, {len(score)}")
    counts = {"candidates": int(len(a))}
    counts.update({r: 0 for r in DROP_REASONS})

    def drop(mask_keep, reason):
        nonlocal a, b, score
        counts[reason] += int(len(mask_keep) - mask_keep.sum())
        a, b, score = a[mask_keep], b[mask_keep], score[mask_keep]

    drop(a != b, "self_pairs")
    if config.min_score is not None:
        drop(score >= config.min_score, "below_threshold")
    counts["tweets_without_text_in_candidates"] = 0
    if text_of is not None:
        text_of = np.asarray(text_of, dtype=object)
        has_text = np.array([isinstance(t, str) and t.strip() != "" for t in text_of], dtype=bool)
        if config.require_text:
            ok = has_text[a] & has_text[b]
            missing = np.unique(np.concatenate([a[~has_text[a]], b[~has_text[b]]]))
            counts["tweets_without_text_in_candidates"] = int(len(missing))
            drop(ok, "without_text")
        if config.drop_near_duplicates:
            # a pair that came back in both orders is checked twice (the test is symmetric):
            # cheaper in memory than finding the unordered pairs first
            dup = near_duplicate_mask(a, b, text_of, jaccard=config.near_dup_jaccard,
                                      shingle_size=config.shingle_size, drop_hashtags=config.drop_hashtags)
            drop(~dup, "near_duplicate_text")
    if config.max_pairs_per_tweet is not None:
        drop(top_per_query(a, b, score, int(config.max_pairs_per_tweet)), "over_max_per_tweet")
    a, b, score, n_dup = unique_unordered(a, b, score)
    counts["duplicates"] = n_dup
    if config.popularity_cap is not None:
        drop(popularity_cap_mask(a, b, score, int(config.popularity_cap), n_tweets), "over_popularity_cap")
    order = np.lexsort((b, a, -score))
    a, b, score = a[order], b[order], score[order]
    counts["written"] = int(len(a))
    counts["tweets_paired"] = int(len(np.unique(np.concatenate([a, b])))) if len(a) else 0
    for reason in DROP_REASONS:
        if counts[reason]:
            log.info("dropped %d candidate pairs: %s", counts[reason], reason.replace("_", " "))
    log.info("%d of %d candidate pairs kept (%d tweets paired)", counts["written"], counts["candidates"],
             counts["tweets_paired"])
    return a, b, score, counts
