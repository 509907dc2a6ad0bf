"""Post-processing of candidate pairs: each rule, its count, and determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mining.postprocess import (PostprocessConfig, near_duplicate_mask, normalize_texts, popularity_cap_mask,
                                postprocess, shingle_sets, top_per_query, unique_unordered)

NO_CAPS = dict(max_pairs_per_tweet=None, popularity_cap=None)


def _texts(n):
    return np.array([f"distinct text number {i} about thing{i}" for i in range(n)], dtype=object)


def _pairs(a, b, s):
    return set(zip(a.tolist(), b.tolist(), s.tolist()))


def test_self_pairs_and_both_orders_collapse_to_one_pair_with_the_higher_score():
    a, b, s, counts = postprocess([0, 1, 2, 2, 3], [1, 0, 2, 3, 2], [1.0, 3.0, 9.0, 2.0, 2.5],
                                  text_of=_texts(4), config=PostprocessConfig(**NO_CAPS))
    assert _pairs(a, b, s) == {(0, 1, 3.0), (2, 3, 2.5)}
    assert counts["self_pairs"] == 1 and counts["duplicates"] == 2 and counts["written"] == 2
    assert a.dtype == np.int32 and b.dtype == np.int32 and s.dtype == np.float64
    assert (a < b).all()


def test_counts_add_up_to_the_candidates():
    rng = np.random.default_rng(0)
    n = 50
    a, b = rng.integers(0, n, 2000), rng.integers(0, n, 2000)
    s = rng.random(2000).round(2)
    texts = _texts(n)
    texts[[3, 7]] = None
    texts[10] = texts[11]
    out_a, _, _, c = postprocess(a, b, s, text_of=texts,
                                 config=PostprocessConfig(max_pairs_per_tweet=5, popularity_cap=6, min_score=0.1))
    dropped = sum(c[k] for k in ("self_pairs", "below_threshold", "without_text", "near_duplicate_text",
                                 "over_max_per_tweet", "duplicates", "over_popularity_cap"))
    assert c["candidates"] == 2000 == dropped + c["written"]
    assert c["written"] == len(out_a)
    for key in ("self_pairs", "below_threshold", "without_text", "over_max_per_tweet", "duplicates"):
        assert c[key] > 0, key
    assert c["tweets_without_text_in_candidates"] == 2


def test_min_score_threshold():
    a, b, s, c = postprocess([0, 1, 2], [1, 2, 3], [0.2, 0.5, 0.9], text_of=_texts(4),
                             config=PostprocessConfig(min_score=0.5, **NO_CAPS))
    assert _pairs(a, b, s) == {(1, 2, 0.5), (2, 3, 0.9)}
    assert c["below_threshold"] == 1


def test_tweets_without_text_are_dropped_and_counted():
    texts = _texts(4)
    texts[2] = None
    texts[3] = "   "
    a, b, _, c = postprocess([0, 0, 0, 1], [1, 2, 3, 2], [1.0] * 4, text_of=texts, config=PostprocessConfig(**NO_CAPS))
    assert list(zip(a, b)) == [(0, 1)]
    assert c["without_text"] == 3 and c["tweets_without_text_in_candidates"] == 2
    _, _, _, c = postprocess([0, 0, 0, 1], [1, 2, 3, 2], [1.0] * 4, text_of=texts,
                             config=PostprocessConfig(require_text=False, **NO_CAPS))
    assert c["without_text"] == 0 and c["written"] == 4


def test_normalisation_strips_urls_mentions_rt_punctuation_and_case():
    got = normalize_texts(["RT @bob: Great GAME tonight!!! https://t.co/xyz", "great game, tonight #NBA",
                           "Great   game tonight", None])
    assert got[0] == "great game tonight"
    assert got[1] == "great game tonight nba"
    assert got[2] == "great game tonight"
    assert got[3] == ""
    assert normalize_texts(["great game tonight #NBA"], drop_hashtags=True)[0] == "great game tonight"


def test_retweet_and_copy_paste_are_near_duplicates_but_different_texts_are_not():
    texts = np.array([
        "Great game tonight! http://x.co/1",  # 0
        "RT @fan: great game tonight",  # 1: retweet of 0
        "the new phone is out go buy it now at the store",  # 2
        "the new phone is out go buy it now at the store today",  # 3: 11 of 12 words shared
        "completely different words about the weather",  # 4
        "https://only.a/link",  # 5: normalises to ""
        "http://another.link/x",  # 6: normalises to "" too
    ], dtype=object)
    a = np.array([0, 2, 0, 2, 5])
    b = np.array([1, 3, 4, 4, 6])
    assert near_duplicate_mask(a, b, texts, jaccard=0.9).tolist() == [True, True, False, False, False]
    # exact match of normalised text only: the copy with one extra word survives
    assert near_duplicate_mask(a, b, texts, jaccard=None).tolist() == [True, False, False, False, False]
    # with word bigrams the edited copy shares 11 of 12 shingles: still >= 0.9
    assert near_duplicate_mask(a, b, texts, jaccard=0.9, shingle_size=2).tolist() == [True, True, False, False, False]
    _, _, _, c = postprocess(a, b, np.ones(5), text_of=texts, config=PostprocessConfig(**NO_CAPS))
    assert c["near_duplicate_text"] == 2 and c["written"] == 3


def test_shingle_jaccard_matches_python_sets():
    rng = np.random.default_rng(1)
    vocab = [f"v{i}" for i in range(12)]
    texts = np.array([" ".join(rng.choice(vocab, rng.integers(1, 8))) for _ in range(60)], dtype=object)
    for k in (1, 2, 3):
        def shingles(t):
            w = t.split()
            return {tuple(w[i:i + k]) for i in range(len(w) - k + 1)} if len(w) >= k else {tuple(w)}

        indptr, ids = shingle_sets(texts, k)
        assert [indptr[i + 1] - indptr[i] for i in range(60)] == [len(shingles(t)) for t in texts]
        pairs = np.array(list(itertools.combinations(range(60), 2)))
        for thr in (0.5, 0.9):
            got = near_duplicate_mask(pairs[:, 0], pairs[:, 1], texts, jaccard=thr, shingle_size=k)
            want = [normalize_texts([texts[i]])[0] == normalize_texts([texts[j]])[0]
                    or len(shingles(texts[i]) & shingles(texts[j])) >= thr * len(shingles(texts[i]) | shingles(texts[j]))
                    for i, j in pairs]
            assert got.tolist() == want


def test_max_pairs_per_query_keeps_the_best_with_ties_broken_by_id():
    a = np.array([0, 0, 0, 0, 1, 1])
    b = np.array([5, 4, 3, 2, 0, 2])
    s = np.array([1.0, 2.0, 2.0, 3.0, 1.0, 1.0])
    keep = top_per_query(a, b, s, 2)
    assert keep.tolist() == [False, False, True, True, True, True]  # 0: (2, 3.0), then tie 2.0 -> b=3 before 4


def test_popularity_cap_is_greedy_by_score_and_bounds_every_tweet():
    rng = np.random.default_rng(2)
    lo, hi, s, _ = unique_unordered(rng.integers(0, 30, 600), rng.integers(0, 30, 600), rng.random(600))
    ok = lo != hi
    lo, hi, s = lo[ok], hi[ok], s[ok]
    keep = popularity_cap_mask(lo, hi, s, 4)
    deg = np.bincount(np.concatenate([lo[keep], hi[keep]]), minlength=30)
    assert deg.max() <= 4
    # reference: the same greedy rule written as a plain loop
    used = np.zeros(30, int)
    want = np.zeros(len(lo), bool)
    for i in sorted(range(len(lo)), key=lambda i: (-s[i], lo[i], hi[i])):
        if used[lo[i]] < 4 and used[hi[i]] < 4:
            want[i] = True
            used[lo[i]] += 1
            used[hi[i]] += 1
    assert keep.tolist() == want.tolist()


def test_hub_tweet_is_capped():
    a = np.zeros(40, dtype=int)
    b = np.arange(1, 41)
    out_a, out_b, _, c = postprocess(a, b, np.arange(40, dtype=float), text_of=_texts(41),
                                     config=PostprocessConfig(max_pairs_per_tweet=None, popularity_cap=7))
    assert len(out_a) == 7 and c["over_popularity_cap"] == 33
    assert sorted(out_b.tolist()) == list(range(34, 41))  # the 7 highest scores


def test_output_is_sorted_and_independent_of_input_order():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 40, 1000), rng.integers(0, 40, 1000)
    s = rng.integers(0, 5, 1000).astype(float)  # many ties
    cfg = PostprocessConfig(max_pairs_per_tweet=3, popularity_cap=5)
    r1 = postprocess(a, b, s, text_of=_texts(40), config=cfg)
    perm = rng.permutation(1000)
    r2 = postprocess(a[perm], b[perm], s[perm], text_of=_texts(40), config=cfg)
    for x, y in zip(r1[:3], r2[:3]):
        np.testing.assert_array_equal(x, y)
    assert r1[3] == r2[3]
    key = list(zip(-r1[2], r1[0], r1[1]))
    assert key == sorted(key)


def test_config_validation():
    with pytest.raises(ValueError, match="popularity_cap"):
        PostprocessConfig(popularity_cap=0).validate()
    with pytest.raises(ValueError, match="near_dup_jaccard"):
        PostprocessConfig(near_dup_jaccard=1.5).validate()


def test_empty_input():
    a, b, s, c = postprocess([], [], [], text_of=_texts(3))
    assert len(a) == len(b) == len(s) == 0 and c["written"] == 0 and c["candidates"] == 0


def test_shingle_sets_split_like_str_split_on_awkward_whitespace():
    texts = np.array(["  a  b\tb ", "", None, "x\u00a0y\u2003z", "solo", "a b a b a"], dtype=object)
    indptr, ids = shingle_sets(texts, 1)
    want = [set((t or "").split()) for t in texts]
    assert [int(indptr[i + 1] - indptr[i]) for i in range(len(texts))] == [len(w) for w in want]
    for i in range(len(texts)):  # sorted, unique hashes per text
        seg = ids[indptr[i]:indptr[i + 1]]
        assert (np.diff(seg) > 0).all()
    # the same word gets the same hash in every text
    a_of_0 = set(ids[indptr[0]:indptr[1]].tolist())
    assert a_of_0 == set(ids[indptr[5]:indptr[6]].tolist())


def test_normalisation_in_batches_equals_the_one_shot_result(monkeypatch):
    import mining.postprocess as pp

    rng = np.random.default_rng(3)
    words = ["RT", "@bob", "Great", "GAME", "#nba", "http://t.co/x", "tonight!!", "café", "ÜBER", "  "]
    texts = np.array([" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(1000)], dtype=object)
    texts[::97] = None
    monkeypatch.setattr(pp, "_TEXT_CHUNK", 64)
    got = pp.normalize_texts_arrow(texts, drop_hashtags=True).to_pylist()
    assert got == normalize_texts(texts, drop_hashtags=True).tolist()
    a, b = rng.integers(0, 1000, 3000), rng.integers(0, 1000, 3000)
    small = pp.near_duplicate_mask(a, b, texts, jaccard=0.6, shingle_size=2)
    monkeypatch.setattr(pp, "_TEXT_CHUNK", 1 << 17)
    assert np.array_equal(small, pp.near_duplicate_mask(a, b, texts, jaccard=0.6, shingle_size=2))
    assert small.any() and not small.all()
