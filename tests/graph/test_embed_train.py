"""Training TwHIN embeddings on small planted-topic graphs: determinism, resume, learning,
planted-topic recovery, the CLI acceptance command and the graph-fingerprint check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import graph.embed.train as train_mod
from coengage.cli import main
from coengage.errors import ArtifactError, InputError
from graph.embed import EmbedConfig, load_embeddings, train_embeddings
from graph.embed.evaluation import knn_label_agreement, random_label_agreement
from graph.writer import write_graph

K = 4  # planted topics


def planted_graph(path, num_users=300, num_tweets=600, num_edges=9000, p_in=0.9, seed=0):
    """Users and tweets get one of K topics; a user's engagement goes to a tweet of its topic with prob. p_in."""
    rng = np.random.default_rng(seed)
    user_topic = rng.integers(0, K, num_users)
    tweet_topic = np.arange(num_tweets) % K
    users = rng.integers(0, num_users, num_edges)
    tweets = rng.integers(0, num_tweets, num_edges)
    inside = rng.random(num_edges) < p_in
    # a tweet of the user's topic: tweet ids congruent to the topic mod K
    tweets[inside] = (rng.integers(0, num_tweets // K, inside.sum()) * K + user_topic[users[inside]])
    etypes = rng.choice(3, num_edges, p=[0.6, 0.3, 0.1])
    texts = pd.DataFrame({"tweet_id": [f"t{i}" for i in range(num_tweets)], "text": ["x"] * num_tweets, "topic": tweet_topic})
    return write_graph(path, user_ids=[f"u{i}" for i in range(num_users)], tweet_ids=[f"t{i}" for i in range(num_tweets)],
                       users=users, tweets=tweets, etypes=etypes, times=np.zeros(num_edges, np.int64),
                       relations=["fav", "retweet", "reply"], type_weights={"fav": 1.0, "retweet": 2.0, "reply": 1.5}, texts=texts)


@pytest.fixture(scope="module")
def g(tmp_path_factory):
    return planted_graph(tmp_path_factory.mktemp("g") / "g")


def cfg(**kw):
    base = dict(dim=16, epochs=3, batch_size=512, chunk_size=128, negatives=20, holdout=0.05, eval_candidates=1000, threads=1, seed=0)
    base.update(kw)
    return EmbedConfig(**base)


def test_same_seed_same_arrays_other_seed_differs(g, tmp_path):
    a = train_embeddings(g, tmp_path / "a", cfg(epochs=2), write=False, progress=False)["arrays"]
    b = train_embeddings(g, tmp_path / "b", cfg(epochs=2), write=False, progress=False)["arrays"]
    c = train_embeddings(g, tmp_path / "c", cfg(epochs=2, seed=1), write=False, progress=False)["arrays"]
    for name in ("user", "tweet", "relation"):
        assert np.array_equal(a[name], b[name]), name
    assert not np.array_equal(a["tweet"], c["tweet"])


def test_learns_planted_topics(g, tmp_path):
    res = train_embeddings(g, tmp_path / "e", cfg(epochs=5), write=False, progress=False)
    losses = [h["loss"] for h in res["history"]]
    assert losses[-1] < 0.8 * losses[0], losses  # the loss goes down
    texts = g.texts()
    labels = texts["topic"].to_numpy()
    rate = knn_label_agreement(res["arrays"]["tweet"][texts["node"].to_numpy()], labels, k=10)
    baseline = random_label_agreement(labels)  # about 1/K
    assert baseline == pytest.approx(1 / K, abs=0.01)
    assert rate >= 0.9, (rate, baseline)
    # held-out edges rank well above chance: with 1000 candidates chance gives MRR ~0.0075 and
    # HITS@50 0.05; a same-topic candidate (about 1 in K) is indistinguishable from the true tweet,
    # so the best achievable HITS@50 here is about 0.2
    assert res["metrics"]["mrr"] > 0.015 and res["metrics"]["hits@50"] > 0.1, res["metrics"]
    assert set(res["metrics"]["per_relation"]) == {"fav", "retweet", "reply"}


def test_resume_equals_uninterrupted(g, tmp_path, monkeypatch):
    full = train_embeddings(g, tmp_path / "full", cfg(epochs=3), progress=False)
    assert not (tmp_path / "full.checkpoint").exists()  # removed once EMB_DIR is complete

    save = train_mod._save_checkpoint

    def crash_after_epoch_2(path, tw, meta):
        save(path, tw, meta)
        if meta["epoch"] == 2:
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(train_mod, "_save_checkpoint", crash_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_embeddings(g, tmp_path / "resumed", cfg(epochs=3), progress=False)
    monkeypatch.setattr(train_mod, "_save_checkpoint", save)
    assert not (tmp_path / "resumed").exists()  # no half-written EMB_DIR
    assert train_mod.latest_checkpoint(tmp_path / "resumed.checkpoint").name == "slot-0"  # epoch 2's slot

    with pytest.raises(ArtifactError, match="other settings"):
        train_embeddings(g, tmp_path / "resumed", cfg(epochs=3, lr=0.5), resume=True, progress=False)
    resumed = train_embeddings(g, tmp_path / "resumed", cfg(epochs=3), resume=True, progress=False)
    # resumed after epoch 2 == uninterrupted, bit for bit (weights, Adagrad state and RNG are restored)
    a, b = load_embeddings(tmp_path / "full", graph=g), load_embeddings(tmp_path / "resumed", graph=g)
    for name in ("user", "tweet", "relation"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    assert resumed["metrics"] == full["metrics"]


def test_cli_acceptance_and_fingerprint_refusal(g, tmp_path, capsys):
    out = tmp_path / "e"
    rc = main(["graph", "embed", str(g.path), "--out", str(out), "--dim", "8", "--epochs", "2", "--seed", "0",
               "--batch-size", "1024", "--negatives", "10", "--no-progress"])
    assert rc == 0
    assert np.load(out / "user.npy").shape == (g.num_users, 8)
    assert np.load(out / "tweet.npy").shape == (g.num_tweets, 8)
    assert np.load(out / "relation.npy").shape == (3, 8) and np.load(out / "user.npy").dtype == np.float32
    m = json.loads((out / "manifest.json").read_text())
    assert m["kind"] == "coengage.embeddings" and m["graph_fingerprint"] == g.fingerprint
    assert {"mrr", "hits@1", "hits@10", "hits@50", "per_relation"} <= set(m["metrics"])
    assert len(m["history"]) == 2 and m["config"]["dim"] == 8 and m["timing"]["train_seconds"] > 0
    assert "held-out link prediction" in capsys.readouterr().out

    other = planted_graph(tmp_path / "other", seed=1)
    assert other.fingerprint != g.fingerprint
    with pytest.raises(ArtifactError, match=f"graph {m['graph_fingerprint']}.*{other.fingerprint}"):
        load_embeddings(out, graph=other)
    load_embeddings(out, graph=g.path)  # the right graph, given as a path, is accepted
    # --resume with no checkpoint is a clear CLI error (exit 2, no traceback)
    rc = main(["graph", "embed", str(other.path), "--out", str(tmp_path / "x"), "--resume", "--no-progress"])
    assert rc == 2 and "no checkpoint" in capsys.readouterr().err


def test_unique_row_step_equals_autograd_reference(g):
    """TwHINModel.train_batch (unique rows, closed-form gradients) takes the same SparseAdagrad steps
    as the reference: autograd with one NodeEmbedding trace entry per occurrence (DGL averages them)."""
    import torch

    from graph.embed.data import PackedEdges, graph_edges
    from graph.embed.negatives import NegativeSampler

    edges = graph_edges(g)
    te = PackedEdges(edges)
    c = cfg(batch_size=700, chunk_size=128, negatives=20, matmul_precision="float32")  # 700 = 5 full chunks + a short one
    models = []
    for step in ("train_batch", "train_batch_autograd"):
        torch.manual_seed(0)
        tw = train_mod.TwHINModel(g.num_users, g.num_tweets, len(g.relations), c)
        sampler = NegativeSampler(g.num_users, g.num_tweets, edges.users, edges.tweets, c.tweet_negatives, c.user_negatives,
                                  c.degree_fraction)
        gen = torch.Generator().manual_seed(5)
        perm = torch.randperm(len(edges), generator=gen)
        losses = [getattr(tw, step)(te, perm[s:s + 700], sampler, gen) for s in range(0, 7 * 700, 700)]
        idx = perm[:700]
        assert len(np.unique(te.users[idx.numpy()])) < 700  # the batches do repeat users, so averaging duplicates matters
        models.append((tw.state(), losses))
    (fast, lf), (ref, lr) = models
    assert np.allclose(lf, lr, rtol=1e-5), (lf, lr)
    init = train_mod.TwHINModel(g.num_users, g.num_tweets, len(g.relations), c).arrays()
    assert not np.allclose(fast["user"], init["user"], atol=1e-4)  # the steps did move the tables
    for name in ("user", "tweet", "relation", "user_adagrad", "tweet_adagrad", "relation_adagrad"):
        assert np.allclose(fast[name], ref[name], rtol=1e-4, atol=1e-6), (name, np.abs(fast[name] - ref[name]).max())


def test_matmul_precision_auto_follows_the_cpu(monkeypatch, caplog):
    import torch

    cpuinfo = open("/proc/cpuinfo").read()
    assert train_mod.native_bf16() == ("avx512_bf16" in cpuinfo or "amx_bf16" in cpuinfo)

    monkeypatch.setattr(train_mod, "native_bf16", lambda: True)
    assert train_mod.matmul_dtype(cfg()) == torch.bfloat16  # the default is auto
    assert train_mod.matmul_dtype(cfg(matmul_precision="float32")) == torch.float32
    monkeypatch.setattr(train_mod, "native_bf16", lambda: False)
    assert train_mod.matmul_dtype(cfg()) == torch.float32
    with caplog.at_level("WARNING", logger="graph.embed.train"):
        assert train_mod.matmul_dtype(cfg(matmul_precision="bfloat16")) == torch.bfloat16
    assert "emulated" in caplog.text  # asked for explicitly where it is slow: said so
    with pytest.raises(InputError, match="matmul_precision must be one of"):
        cfg(matmul_precision="fp8")


def test_bfloat16_products_train_as_well_as_float32(g, tmp_path):
    """The same run with bfloat16 and float32 products: different arrays, the same quality."""
    runs = {p: train_embeddings(g, tmp_path / p, cfg(epochs=5, matmul_precision=p), write=False, progress=False)
            for p in ("float32", "bfloat16")}
    assert runs["bfloat16"]["timing"]["matmul_precision"] == "bfloat16"
    assert not np.array_equal(runs["float32"]["arrays"]["user"], runs["bfloat16"]["arrays"]["user"])
    for k in ("mrr", "hits@10"):
        assert abs(runs["float32"]["metrics"][k] - runs["bfloat16"]["metrics"][k]) <= 0.02, k
    texts = g.texts()
    rates = {p: knn_label_agreement(r["arrays"]["tweet"][texts["node"].to_numpy()], texts["topic"].to_numpy(), k=10)
             for p, r in runs.items()}
    assert rates["bfloat16"] >= 0.9 and abs(rates["bfloat16"] - rates["float32"]) <= 0.02, rates


def test_tables_start_from_the_seeded_normal_draws_drawn_in_blocks(monkeypatch):
    """The tables are filled block by block (no float64 copy of a whole table); the values are the
    one-shot formula's, bit for bit, users' draws first: blocks of 7 rows here, none dividing the
    table sizes."""
    monkeypatch.setattr(train_mod, "_INIT_ROWS", 7)
    c = EmbedConfig(dim=12, seed=3, init_scale=0.5)
    tw = train_mod.TwHINModel(50, 80, 2, c)
    rng = np.random.default_rng(np.random.SeedSequence([3, 0x1717]))
    std = 0.5 / np.sqrt(12)
    want_user = (rng.standard_normal((50, 12)) * std).astype(np.float32)
    want_tweet = (rng.standard_normal((80, 12)) * std).astype(np.float32)
    got = tw.arrays()
    assert np.array_equal(got["user"], want_user) and np.array_equal(got["tweet"], want_tweet)
    views, copies = tw.state(copy=False), tw.state()
    assert np.shares_memory(views["tweet_adagrad"], tw.tweet.optm_state[0].numpy())  # what the checkpoint writes
    assert not np.shares_memory(copies["user"], tw.user.weight.numpy())


def test_checkpoint_slots_are_rewritten_in_place_and_a_torn_slot_is_skipped(g, tmp_path, monkeypatch):
    """Epoch e's checkpoint goes to slot e % 2; from epoch 3 on a slot's files are overwritten in
    place (same inode). Resuming after epoch 3 (an in-place slot) and after a crash in the middle
    of epoch 3's checkpoint (that slot torn: the epoch-2 slot is used) both end bit-identical to
    the uninterrupted run."""
    full = tmp_path / "full"
    train_embeddings(g, full, cfg(epochs=4), progress=False)
    ref = load_embeddings(full, graph=g)
    save, write_npy = train_mod._save_checkpoint, train_mod._write_npy
    inodes = {}

    def crash_after_epoch_3(path, tw, meta):
        slot = path / train_mod._SLOTS[meta["epoch"] % 2]
        if meta["epoch"] == 3:
            inodes["before"] = (slot / "user.npy").stat().st_ino
        save(path, tw, meta)
        if meta["epoch"] == 3:
            inodes["after"] = (slot / "user.npy").stat().st_ino
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(train_mod, "_save_checkpoint", crash_after_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_embeddings(g, tmp_path / "a", cfg(epochs=4), progress=False)
    monkeypatch.setattr(train_mod, "_save_checkpoint", save)
    assert inodes["before"] == inodes["after"]  # rewritten in place, not a new file
    assert train_mod.latest_checkpoint(tmp_path / "a.checkpoint").name == "slot-1"

    epoch, written = {}, []

    def note_epoch(path, tw, meta):
        epoch["now"] = meta["epoch"]
        save(path, tw, meta)

    def torn(path, a):
        if epoch["now"] == 3:
            if len(written) == 2:  # epoch 3's slot after two of its arrays: the process dies
                raise KeyboardInterrupt("simulated crash while writing")
            written.append(path.name)
        write_npy(path, a)

    monkeypatch.setattr(train_mod, "_save_checkpoint", note_epoch)
    monkeypatch.setattr(train_mod, "_write_npy", torn)
    with pytest.raises(KeyboardInterrupt):
        train_embeddings(g, tmp_path / "b", cfg(epochs=4), progress=False)
    monkeypatch.setattr(train_mod, "_save_checkpoint", save)
    monkeypatch.setattr(train_mod, "_write_npy", write_npy)
    assert len(written) == 2
    assert not (tmp_path / "b.checkpoint" / "slot-1" / "manifest.json").exists()
    assert train_mod.latest_checkpoint(tmp_path / "b.checkpoint").name == "slot-0"  # epoch 2

    for name in ("a", "b"):
        train_embeddings(g, tmp_path / name, cfg(epochs=4), resume=True, progress=False)
        got = load_embeddings(tmp_path / name, graph=g)
        for t in ("user", "tweet", "relation"):
            assert np.array_equal(getattr(got, t), getattr(ref, t)), (name, t)




def crash_after_epoch_1(g, out, config, monkeypatch) -> None:
    """Train ``config`` into ``out`` and stop with a simulated crash right after epoch 1's checkpoint."""
    save = train_mod._save_checkpoint

    def save_then_crash(path, tw, meta):
        save(path, tw, meta)
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(train_mod, "_save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_embeddings(g, out, config, progress=False)
    monkeypatch.setattr(train_mod, "_save_checkpoint", save)

def test_a_checkpoint_of_the_layout_before_slots_resumes(g, tmp_path, monkeypatch):
    """A checkpoint directory written before slots (arrays and manifest at its top) resumes, bit-identically."""
    train_embeddings(g, tmp_path / "full", cfg(epochs=2), progress=False)
    crash_after_epoch_1(g, tmp_path / "old", cfg(epochs=2), monkeypatch)
    ckpt = tmp_path / "old.checkpoint"
    for f in (ckpt / "slot-1").iterdir():  # the old layout: one directory, no slots
        f.rename(ckpt / f.name)
    (ckpt / "slot-1").rmdir()
    assert train_mod.latest_checkpoint(ckpt) == ckpt
    train_embeddings(g, tmp_path / "old", cfg(epochs=2), resume=True, progress=False)
    a, b = load_embeddings(tmp_path / "full", graph=g), load_embeddings(tmp_path / "old", graph=g)
    for t in ("user", "tweet", "relation"):
        assert np.array_equal(getattr(a, t), getattr(b, t)), t


def test_a_fresh_run_over_a_checkpoint_invalidates_its_slots_first(g, tmp_path, monkeypatch):
    crash_after_epoch_1(g, tmp_path / "e", cfg(epochs=2), monkeypatch)
    assert train_mod.latest_checkpoint(tmp_path / "e.checkpoint") is not None
    seen = {}

    def look_then_crash(path, tw, meta):
        seen["latest"] = train_mod.latest_checkpoint(path)
        raise KeyboardInterrupt("before writing")

    monkeypatch.setattr(train_mod, "_save_checkpoint", look_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_embeddings(g, tmp_path / "e", cfg(epochs=2, lr=0.5), progress=False)  # no --resume
    assert seen["latest"] is None  # the first run's epoch-1 slot can no longer be resumed
    assert (tmp_path / "e.checkpoint" / "slot-1" / "user.npy").exists()  # its files stay, to be rewritten in place


def test_embed_out_never_replaces_the_graph_or_a_foreign_path(g, tmp_path, capsys):
    args = ["graph", "embed", str(g.path), "--dim", "8", "--epochs", "1", "--negatives", "10", "--batch-size", "512",
            "--chunk-size", "128", "--threads", "1", "--no-progress"]
    graph_manifest = (g.path / "manifest.json").read_text()
    for out in (g.path, g.path.parent):  # the graph itself, or a directory holding it: not even with --overwrite
        assert main(args + ["--out", str(out), "--overwrite"]) == 2
        assert "would replace the input" in capsys.readouterr().err
    assert (g.path / "manifest.json").read_text() == graph_manifest
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    assert main(args + ["--out", str(notes)]) == 2  # refused before any training
    assert "is not an EMB_DIR" in capsys.readouterr().err and notes.read_text() == "keep me"
    busy = tmp_path / "e2.checkpoint"
    busy.mkdir()
    (busy / "mine.txt").write_text("not a checkpoint")
    assert main(args + ["--out", str(tmp_path / "e2")]) == 2
    assert "checkpoint directory" in capsys.readouterr().err and (busy / "mine.txt").exists()
    assert main(args + ["--out", str(notes), "--overwrite"]) == 0 and (notes / "user.npy").exists()
    assert main(args + ["--out", str(notes), "--seed", "1"]) == 0  # an earlier EMB_DIR is replaced
    assert json.loads((notes / "manifest.json").read_text())["config"]["seed"] == 1


def test_ctrl_c_in_the_cli_says_how_to_resume(g, tmp_path, monkeypatch, capsys):
    save = train_mod._save_checkpoint

    def save_then_interrupt(path, tw, meta):
        save(path, tw, meta)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_save_checkpoint", save_then_interrupt)
    out = tmp_path / "e"
    args = ["graph", "embed", str(g.path), "--out", str(out), "--dim", "8", "--epochs", "2", "--negatives", "10",
            "--batch-size", "512", "--chunk-size", "128", "--threads", "1", "--no-progress"]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert f"the checkpoint after epoch 1 is in {out}.checkpoint" in err and "--resume" in err and "interrupted" in err
    monkeypatch.setattr(train_mod, "_save_checkpoint", save)
    assert main(args + ["--resume"]) == 0 and (out / "user.npy").exists()


def test_holdout_zero_trains_and_writes_strict_json(g, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="graph.embed.train")
    out = tmp_path / "e"
    res = train_embeddings(g, out, cfg(epochs=1, holdout=0.0), progress=False)
    assert res["metrics"]["count"] == 0 and res["metrics"]["mrr"] is None
    text = (out / "manifest.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert "no held-out edges to evaluate" in caplog.text


def test_more_threads_than_cores_is_warned_about(g, tmp_path, caplog, monkeypatch):
    import logging

    monkeypatch.setattr(train_mod, "available_cores", lambda: 1)
    caplog.set_level(logging.WARNING, logger="graph.embed.train")
    train_embeddings(g, tmp_path / "e", cfg(epochs=1, threads=2), write=False, progress=False)
    assert "--threads 2 is more than the 1 cores" in caplog.text
    caplog.clear()
    train_embeddings(g, tmp_path / "e", cfg(epochs=1, threads=1), write=False, progress=False)
    assert "more than" not in caplog.text
