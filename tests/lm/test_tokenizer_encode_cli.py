"""Corpus tokenizer, the encode() API, and the `coengage lm train` command line."""

import json

import numpy as np
import pytest
import torch

from coengage.cli import main
from lm.encode import encode
from lm.tokenizer import train_tokenizer
from tests.lm.conftest import TINY, tiny_config
from tests.lm.synthetic import make_texts

MULTILINGUAL = ["the cat purrs", "über café naïve", "日本のロケット", "привет мир", "🎉🎉 launch"]


@pytest.mark.parametrize("kind", ["bytelevel-bpe", "unigram"])
def test_corpus_tokenizer_has_bert_specials_and_round_trips(tmp_path, kind):
    from transformers import AutoTokenizer

    texts = make_texts(200)[1] + MULTILINGUAL * 3
    tok = train_tokenizer(texts, vocab_size=400, kind=kind)
    assert 50 < len(tok) <= 400
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for t in MULTILINGUAL:
        ids = loaded(t)["input_ids"]
        assert ids[0] == loaded.cls_token_id and ids[-1] == loaded.sep_token_id
        if kind == "bytelevel-bpe":
            assert loaded.unk_token_id not in ids  # bytes cover every string
        assert loaded.decode(ids, skip_special_tokens=True).strip().replace("▁", " ").replace(" ", "") == \
            t.replace(" ", "")
    assert {loaded.pad_token, loaded.mask_token, loaded.unk_token} == {"[PAD]", "[MASK]", "[UNK]"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset):
    pairs, graph = dataset
    out = tmp_path_factory.mktemp("enc") / "m"
    from lm.train import train

    train(tiny_config(pairs, graph, out, max_steps=2))
    return out


def test_encode_poolings_shapes_order_and_batch_invariance(trained):
    from transformers import AutoModel, AutoTokenizer

    texts = ["rocket launch to mars with the crew today", "cat", "", "the cat purrs on my lap 🎉"]
    h = TINY["hidden_size"]
    # device="cpu": on a CUDA host encode() would default to the GPU in bf16, not comparable at 1e-5
    cls = encode(trained, texts, batch_size=3, pooling="cls", device="cpu")
    both = encode(trained, texts, batch_size=1, pooling="cls_mean", device="cpu")
    mean = encode(trained, texts, batch_size=4, pooling="mean", device="cpu")
    head = encode(trained, texts, pooling="head", device="cpu")
    assert cls.shape == (4, h) and both.shape == (4, 2 * h) and mean.shape == (4, h) and head.shape == (4, h)
    np.testing.assert_allclose(both[:, :h], cls, atol=1e-5)
    np.testing.assert_allclose(both[:, h:], mean, atol=1e-5)
    # reference: one text at a time, unpadded, mean over non-special tokens
    tok, model = AutoTokenizer.from_pretrained(trained), AutoModel.from_pretrained(trained).eval()
    for i, t in enumerate(texts):
        enc = tok(t, return_tensors="pt")
        with torch.no_grad():
            hs = model(**enc).last_hidden_state[0]
        np.testing.assert_allclose(cls[i], hs[0].numpy(), atol=1e-5)
        if len(hs) > 2:
            np.testing.assert_allclose(mean[i], hs[1:-1].mean(0).numpy(), atol=1e-5)


def test_cli_train_and_errors(tmp_path, dataset, capsys):
    pairs, graph = dataset
    out = tmp_path / "m"
    args = ["lm", "train", "--pairs", str(pairs), "--texts", str(graph), "--out", str(out), "--from-scratch", "tiny",
            "--max-steps", "2", "--batch-size", "8", "--seed", "0", "--vocab-size", "500", "--max-length", "32",
            "--device", "cpu", "--head-dims", "32,16"] + sum((["--scratch-override", f"{k}={v}"] for k, v in TINY.items()), [])
    assert main(args) == 0
    cfg = json.loads((out / "coengage_config.json").read_text())
    assert cfg["head"]["dims"] == [32, 16] and cfg["train"]["scratch_overrides"]["hidden_size"] == 64
    assert main(args) == 2  # exists without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["lm", "train", "--pairs", str(empty), "--texts", str(graph), "--out", str(tmp_path / "x"),
                 "--from-scratch", "tiny"]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["lm", "train", "--pairs", str(pairs), "--texts", str(graph), "--out", str(tmp_path / "y")]) == 2
    assert "exactly one of --model" in capsys.readouterr().err
