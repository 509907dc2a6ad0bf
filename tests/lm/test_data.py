"""Pair/text loading, corpus join, batching and MLM masking."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from coengage.artifacts import file_fingerprint
from coengage.errors import InputError
from lm.data import PairBatches, TokenizedTexts, build_corpus, collate, load_pairs, load_texts, mask_tokens, \
    pairs_fingerprint


def test_pairs_in_every_format_read_the_same(tmp_path, dataset):
    pairs_path, _ = dataset
    df = pd.read_parquet(pairs_path)
    df.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    df.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    ref = load_pairs(pairs_path)
    for name in ("p.tsv", "p.jsonl"):
        got = load_pairs(tmp_path / name)
        assert got["tweet_a"].tolist() == ref["tweet_a"].tolist()
        assert got["tweet_b"].tolist() == ref["tweet_b"].tolist()


def test_empty_pair_file_is_a_clear_error(tmp_path):
    pd.DataFrame({"tweet_a": pd.Series([], dtype=str), "tweet_b": pd.Series([], dtype=str)}).to_parquet(
        tmp_path / "e.parquet")
    with pytest.raises(InputError, match="empty"):
        load_pairs(tmp_path / "e.parquet")
    (tmp_path / "e.tsv").write_text("")
    with pytest.raises(InputError, match="empty"):
        load_pairs(tmp_path / "e.tsv")


def test_missing_column_names_the_file_and_column(tmp_path):
    pd.DataFrame({"tweet_a": ["1"], "other": ["2"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"bad.parquet.*tweet_b"):
        load_pairs(tmp_path / "bad.parquet")


def test_fingerprint_comes_from_the_manifest_when_present(tmp_path, dataset):
    pairs_path, _ = dataset
    p = tmp_path / "pairs.parquet"
    p.write_bytes(pairs_path.read_bytes())
    assert pairs_fingerprint(p) == file_fingerprint(p)
    (tmp_path / "pairs.parquet.manifest.json").write_text(json.dumps({"fingerprint": "abc123"}))
    assert pairs_fingerprint(p) == "abc123"


def test_texts_from_graph_dir_and_from_a_table_agree(tmp_path, dataset):
    _, graph_dir = dataset
    from_graph, fp = load_texts(graph_dir)
    table = pd.DataFrame({"tweet_id": list(from_graph), "text": list(from_graph.values())})
    table.to_csv(tmp_path / "t.csv", index=False)
    from_table, _ = load_texts(tmp_path / "t.csv")
    assert from_graph == from_table and len(from_graph) == 120
    assert fp == json.loads((graph_dir / "manifest.json").read_text())["fingerprint"]


def _pairs(rows):
    return pd.DataFrame(rows, columns=["tweet_a", "tweet_b"]).assign(score=1.0, method="x")


def test_missing_texts_are_counted_and_fatal_past_the_threshold():
    texts = {str(i): f"text {i}" for i in range(10)}
    rows = [(str(i), str(i + 1)) for i in range(9)] + [("0", "404")]  # 1 of 10 pairs lacks a text
    corpus = build_corpus(_pairs(rows), texts, max_missing_fraction=0.2)
    assert corpus.stats["pairs_missing_text"] == 1 and corpus.stats["pairs_used"] == 9
    assert corpus.num_pairs == 9
    assert all(corpus.texts[a] == texts[t] for a, t in zip(corpus.a, [r[0] for r in rows[:9]]))
    with pytest.raises(InputError, match=r"1 of 10 pairs .*'404'"):
        build_corpus(_pairs(rows), texts, max_missing_fraction=0.05)
    with pytest.raises(InputError, match="strict"):
        build_corpus(_pairs(rows), texts, max_missing_fraction=0.5, strict=True)


def test_pair_text_columns_fill_in_when_texts_are_absent():
    df = _pairs([("a", "b"), ("b", "c")]).assign(text_a=["A", "B"], text_b=["B", "C"])
    corpus = build_corpus(df, None)
    assert corpus.tweet_ids == ["a", "b", "c"] and corpus.texts == ["A", "B", "C"]
    assert corpus.a.tolist() == [0, 1] and corpus.b.tolist() == [1, 2]


def test_batches_are_a_pure_function_of_the_index_and_cover_each_epoch_once():
    lengths = np.random.default_rng(0).integers(3, 100, 1000)
    one = PairBatches(lengths, 16, seed=5, group_size=10)
    two = PairBatches(lengths, 16, seed=5, group_size=10)
    # random access in another order gives identical batches (what --resume relies on)
    for k in (70, 3, 62, 130):
        assert np.array_equal(one.batch(k), two.batch(k))
    epoch0 = np.concatenate([one.batch(k) for k in range(one.per_epoch)])
    assert len(np.unique(epoch0)) == len(epoch0) == 62 * 16
    assert not np.array_equal(one.batch(0), one.batch(one.per_epoch))  # epoch 1 is reshuffled
    assert not np.array_equal(one.batch(0), PairBatches(lengths, 16, seed=6, group_size=10).batch(0))


def test_length_grouping_reduces_padding():
    lengths = np.random.default_rng(1).integers(3, 128, 4000)

    def padded(pb):
        return sum(int(lengths[pb.batch(k)].max()) * len(pb.batch(k)) for k in range(pb.per_epoch))

    grouped, plain = padded(PairBatches(lengths, 32, 0, 50)), padded(PairBatches(lengths, 32, 0, 1))
    assert grouped < 0.8 * plain


def test_mask_tokens_follows_the_80_10_10_rule_and_spares_special_tokens():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (400, 64), generator=g)
    ids[:, 0], ids[:, -1], ids[:, 50:63] = 2, 3, 0  # [CLS], [SEP], padding
    masked, labels = mask_tokens(ids, {0, 1, 2, 3, 4}, mask_id=4, vocab_size=1000, probability=0.15, generator=g)
    sel = labels != -100
    special = (ids <= 4)
    assert not sel[special].any()
    assert torch.equal(labels[sel], ids[sel]) and torch.equal(masked[~sel], ids[~sel])
    frac = sel.sum().item() / (~special).sum().item()
    assert 0.14 < frac < 0.16
    n = sel.sum().item()
    to_mask = (masked[sel] == 4).sum().item() / n
    kept = (masked[sel] == ids[sel]).sum().item() / n
    assert 0.77 < to_mask < 0.83
    assert 0.08 < kept < 0.12  # ~10% kept (plus a random draw that hits the same id, ~0.01%)
    assert 0.08 < 1 - to_mask - kept < 0.12


def test_collate_pads_to_the_longest_text():
    tok = TokenizedTexts(np.arange(1, 10, dtype=np.int32), np.array([0, 2, 7, 9]))
    ids, mask = collate(tok, np.array([0, 1]), pad_id=0)
    assert ids.tolist() == [[1, 2, 0, 0, 0], [3, 4, 5, 6, 7]]
    assert mask.tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    ids, _ = collate(tok, np.array([0, 2]), pad_id=0, pad_to_multiple=8)
    assert ids.shape == (2, 8)
