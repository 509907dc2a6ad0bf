"""Pooling for the social head: [CLS] (the paper, pretrained starts) or the token mean
(from-scratch starts, whose [CLS] state is nearly the same for every text at initialisation)."""

from __future__ import annotations

import json

import numpy as np
import torch
from transformers import BertConfig, BertModel

from lm.config import TrainConfig
from lm.encode import encode
from lm.model import pool
from lm.train import train
from tests.lm.conftest import TINY, tiny_config


def test_auto_pooling_is_mean_from_scratch_and_cls_for_a_pretrained_model():
    assert TrainConfig(from_scratch="tiny", pairs="p", out="o").resolved_pooling() == "mean"
    assert TrainConfig(model="some/dir", pairs="p", out="o").resolved_pooling() == "cls"
    assert TrainConfig(from_scratch="tiny", pooling="cls", pairs="p", out="o").resolved_pooling() == "cls"


def test_mean_pool_ignores_padding():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    out = pool(hidden, mask, "mean")
    torch.testing.assert_close(out[0], hidden[0, :2].mean(0))
    torch.testing.assert_close(out[1], hidden[1].mean(0))
    torch.testing.assert_close(pool(hidden, mask, "cls"), hidden[:, 0])


def test_random_init_cls_states_are_nearly_identical_but_means_are_not():
    """Why auto picks mean from scratch: measured on a random BERT, not assumed."""
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=500, **TINY)).eval()
    ids = torch.randint(5, 500, (16, 24))
    ids[:, 0] = 2  # [CLS]
    mask = torch.ones_like(ids)
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    def min_cos(x):
        x = torch.nn.functional.normalize(x, dim=-1)
        return float((x @ x.T).min())
    assert min_cos(pool(hidden, mask, "cls")) > min_cos(pool(hidden, mask, "mean"))


def test_model_dir_records_the_pooling_and_head_encoding_uses_it(dataset, tmp_path):
    pairs, graph = dataset
    out = tmp_path / "m"
    train(tiny_config(pairs, graph, out, max_steps=2))
    cfg = json.loads((out / "coengage_config.json").read_text())
    assert cfg["head"]["input"] == "mean"
    texts = ["alpha beta gamma", "delta"]
    head_vecs = encode(out, texts, pooling="head", device="cpu")  # CPU fp32, like the reference
    from transformers import AutoModel, AutoTokenizer

    from lm.model import load_head

    head = load_head(out, cfg["head"]["hidden"], cfg["head"]["dims"]).eval()
    model, tok = AutoModel.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        for text, vec in zip(texts, head_vecs):
            enc = tok(text, return_tensors="pt", return_token_type_ids=False)
            hidden = model(**enc).last_hidden_state
            expected = head(pool(hidden, enc["attention_mask"], "mean"))[0].numpy()
            np.testing.assert_allclose(vec, expected, rtol=1e-4, atol=1e-5)


def test_mlm_loss_with_host_computed_positions_equals_boolean_selection():
    """The trainer passes the MLM target positions it computed on the host (no device sync);
    the loss must equal the one from selecting labels != -100 inside forward()."""
    from transformers import BertForMaskedLM

    from lm.model import SocialEncoder

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=97, **TINY, max_position_embeddings=64)
    model = SocialEncoder(BertForMaskedLM(cfg), pooling="cls").eval()
    ids = torch.randint(5, 97, (6, 12))
    attn = torch.ones_like(ids)
    attn[3, 8:] = 0
    labels = torch.full_like(ids, -100)
    chosen = torch.rand(ids.shape) < 0.3
    labels[chosen] = ids[chosen]
    index = (labels.reshape(-1) != -100).nonzero().squeeze(1)
    with torch.no_grad():
        emb1, loss1 = model(ids, attn, labels)
        emb2, loss2 = model(ids, attn, labels, mlm_index=index)
    assert int(chosen.sum()) > 0 and torch.isfinite(loss1)
    assert torch.equal(loss1, loss2) and torch.equal(emb1, emb2)
    # a different set of positions gives a different loss: the index is really used
    _, loss3 = model(ids, attn, labels, mlm_index=index[: len(index) // 2])
    assert not torch.equal(loss1, loss3)
