"""Orchestration of `coengage lm eval`: model spec -> tweet features -> tasks -> metrics.json.

Model specs (``--model``):

* ``MODEL_DIR``          a directory written by `coengage lm train` (its manifest is checked)
* ``untrained:<dir>``    any save_pretrained directory (the starting checkpoint), encoded the same way
* ``tfidf``              TF-IDF + SVD fit on the train texts (:mod:`lm.eval.baselines`)
* ``random``             random Gaussian vectors

Before any figure is computed the leakage guard runs: the graph must carry a held-out split,
no held-out tweet id may appear in the graph's tweets, its texts, or the ``--pairs`` file, the
embeddings must belong to this graph, and a trained model's recorded graph fingerprint (when it
records one) must be this graph's.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coengage.artifacts import check_output, json_kind, read_manifest, write_json
from coengage.errors import ArtifactError, InputError
from lm.eval.config import EvalConfig

log = logging.getLogger(__name__)

KIND = "coengage.eval"
SCHEMA_VERSION = 1
BASELINES = ("tfidf", "random")


@dataclass
class ModelSpec:
    kind: str  # "model" | "untrained" | "tfidf" | "random"
    path: Path | None = None
    manifest: dict | None = None

    @property
    def name(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def parse_model_spec(spec: str) -> ModelSpec:
    """``MODEL_DIR`` | ``untrained:<dir>`` | ``tfidf`` | ``random`` -> :class:`ModelSpec` (checked)."""
    spec = str(spec)
    if spec in BASELINES:
        return ModelSpec(spec)
    if spec.startswith("untrained:"):
        path = Path(spec.split(":", 1)[1])
        if not path.is_dir():
            raise InputError(f"--model {spec}: {path} is not a directory (expected a save_pretrained model directory)")
        return ModelSpec("untrained", path)
    path = Path(spec)
    if not path.is_dir():
        raise InputError(f"--model {spec}: not a directory, and not one of {list(BASELINES)} or untrained:<dir>")
    manifest = read_manifest(path)
    if manifest.get("kind") != "coengage.model":
        raise ArtifactError(f"{path}: expected a 'coengage.model' directory from `coengage lm train`, found kind "
                            f"{manifest.get('kind')!r}; for a plain pretrained checkpoint use --model untrained:{path}")
    return ModelSpec("model", path, manifest)


def _pairs_graph_fingerprint(pairs: Path) -> str | None:
    pm = Path(str(pairs) + ".manifest.json")
    if not pm.exists():
        return None
    try:
        return json.loads(pm.read_text()).get("graph_fingerprint")
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{pm}: corrupt pair manifest ({e})") from e


def check_leakage(graph_dir: Path, graph, pairs: Path | None, spec: ModelSpec) -> dict:
    """The leakage guard (see the module docstring); returns what was checked.

    Refuses: a graph without a held-out split; held-out tweet ids in the graph's tweets or texts,
    in ``--pairs`` or in the pair file the model was trained on; a pair file mined from another
    graph; a model whose training texts came from another graph (its manifest's
    ``texts_fingerprint`` is the graph fingerprint when `lm train --texts GRAPH_DIR` was used).
    """
    from graph.split import leaked_ids

    pair_files = [pairs] if pairs else []
    model_pairs = None
    if spec.manifest is not None and spec.manifest.get("pairs"):
        model_pairs = Path(spec.manifest["pairs"])
        if model_pairs.exists():
            pair_files.append(model_pairs)
        else:
            log.warning("%s was trained on %s, which no longer exists; its pairs cannot be checked for held-out tweets",
                        spec.path, model_pairs)
            model_pairs = None
    leaked = leaked_ids(graph_dir, pair_files)
    bad = {k: v for k, v in leaked.items() if v}
    if bad:
        where = "; ".join(f"{k}: {len(v)} (e.g. {v[:3]})" for k, v in bad.items())
        raise ArtifactError(f"leakage: held-out dev/test tweets appear where training sees them: {where}. "
                            "Rebuild the graph with --holdout and re-run embed/mine/train from it")
    checked = {"heldout_ids_absent_from": sorted(leaked)}
    for p in pair_files:
        gf = _pairs_graph_fingerprint(p)
        if gf is not None and gf != graph.fingerprint:
            raise ArtifactError(f"{p} was mined from graph {gf}, but {graph_dir} is graph {graph.fingerprint}; "
                                "mine (and train) from the graph you evaluate on")
        checked.setdefault("pairs_graph_fingerprint", {})[str(p)] = gf
    if spec.manifest is not None:
        tf = spec.manifest.get("texts_fingerprint")
        if tf is not None and tf != graph.fingerprint:
            raise ArtifactError(f"{spec.path} was trained on texts {spec.manifest.get('texts')!r} (fingerprint {tf}), not on the "
                                f"train split of {graph_dir} (graph {graph.fingerprint}); its training texts may include "
                                "held-out tweets. Train it with --texts GRAPH_DIR of the graph you evaluate on")
        checked["model_texts_fingerprint"] = tf
        if tf is None and model_pairs is None:
            log.warning("%s records neither training texts nor an existing pair file; cannot verify it never saw held-out tweets",
                        spec.path)
    return checked


def tweet_features(spec: ModelSpec, texts, train_rows: np.ndarray, cfg: EvalConfig) -> tuple[np.ndarray, np.ndarray]:
    """(features for engagement/classify, features for pairs retrieval) of every text."""
    if spec.kind == "tfidf":
        x = tfidf(texts, train_rows, cfg)
        return x, x
    if spec.kind == "random":
        from lm.eval.baselines import random_embeddings

        x = random_embeddings(len(texts), cfg.random_dim, cfg.seed)
        return x, x
    from lm.encode import encode

    x = np.asarray(encode(str(spec.path), list(texts), batch_size=cfg.encode_batch_size, pooling=cfg.pooling), dtype=np.float32)
    if cfg.pairs_pooling == cfg.pooling:
        return x, x
    if cfg.pooling == "cls_mean" and cfg.pairs_pooling == "cls":
        return x, x[:, : x.shape[1] // 2]  # [CLS] ‖ mean: the first half is [CLS]
    xp = np.asarray(encode(str(spec.path), list(texts), batch_size=cfg.encode_batch_size, pooling=cfg.pairs_pooling), dtype=np.float32)
    return x, xp


def tfidf(texts, train_rows, cfg: EvalConfig) -> np.ndarray:
    from lm.eval.baselines import tfidf_embeddings

    return tfidf_embeddings(texts, train_rows, cfg.tfidf_dim, cfg.seed)


def evaluate(model: str, graph_dir, emb_dir, cfg: EvalConfig, pairs=None, out=None, features_cache=None) -> dict:
    """Run the configured tasks for one model; write metrics.json to ``out`` when given."""
    from graph.artifact import load
    from graph.embed.io import load_embeddings
    from graph.split import load_heldout
    from lm.eval import protocol

    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    graph_dir = Path(graph_dir)
    pairs = Path(pairs) if pairs else None
    if pairs is not None and not pairs.exists():
        raise InputError(f"--pairs {pairs}: no such file")
    spec = parse_model_spec(model)
    if out is not None:
        if Path(out).is_dir():
            raise ArtifactError(f"--out {out} is a directory; give the metrics file's path (e.g. {Path(out) / 'metrics.json'})")
        check_output(out, KIND, "a metrics file of `coengage lm eval`", inputs=[spec.path, graph_dir, emb_dir, pairs, features_cache],
                     recognise=lambda p: p.is_file() and json_kind(p) == KIND, overwrite_flag=None)
    graph = load(graph_dir)
    heldout = load_heldout(graph_dir)
    guard = check_leakage(graph_dir, graph, pairs, spec)
    emb = load_embeddings(emb_dir, graph=graph) if "engagement" in cfg.tasks else None
    table = protocol.load_tweet_table(graph, heldout, max_train_tweets=cfg.max_train_tweets, seed=cfg.seed)
    timing = {"load_s": time.perf_counter() - t0}

    t1 = time.perf_counter()
    x, xp = _cached_features(features_cache, spec, table, cfg)
    timing["features_s"] = time.perf_counter() - t1
    result = {
        "kind": KIND, "schema_version": SCHEMA_VERSION,
        "model": {"spec": str(model), "kind": spec.kind, "path": str(spec.path) if spec.path else None,
                  "fingerprint": (spec.manifest or {}).get("fingerprint"), "feature_dim": int(x.shape[1]),
                  "pairs_feature_dim": int(xp.shape[1])},
        "graph": {"path": str(graph_dir), "fingerprint": graph.fingerprint, "split": heldout.info},
        "embeddings": {"path": str(emb_dir), "fingerprint": emb.manifest.get("fingerprint")} if emb is not None else None,
        "leakage_guard": guard, "table": table.counts, "config": cfg.to_dict(), "tasks": {},
    }
    if "engagement" in cfg.tasks:
        from lm.eval.twotower import evaluate_engagement

        t1 = time.perf_counter()
        data = protocol.engagement_data(graph, heldout, table)
        m = evaluate_engagement(np.asarray(emb.user), x, data.train, data.dev, data.test, seeds=cfg.seed_list,
                                candidates=cfg.candidates, dim=cfg.dim, hidden=cfg.hidden, batch_size=cfg.batch_size,
                                negatives=cfg.negatives, neg_power=cfg.neg_power, lr=cfg.lr, max_steps=cfg.max_steps,
                                eval_every=cfg.eval_every, patience=cfg.patience)
        m["counts"] = data.counts
        result["tasks"]["engagement"] = m
        timing["engagement_s"] = time.perf_counter() - t1
        log.info("engagement task done in %.1f s", timing["engagement_s"])
    if "classify" in cfg.tasks:
        from lm.eval.classify import evaluate_classification

        t1 = time.perf_counter()
        log.info("classify task: logistic regression on %d-d features", x.shape[1])
        label_col = cfg.label_col or protocol.default_label_column(table)
        d = protocol.classify_data(table, label_col, max_train=cfg.max_classify_train, seed=cfg.seed)
        m = evaluate_classification(x[d["train"][0]], d["train"][1], x[d["dev"][0]], d["dev"][1], x[d["test"][0]], d["test"][1],
                                    cs=cfg.lr_c, seed=cfg.seed)
        m["label_col"] = label_col
        result["tasks"]["classify"] = m
        timing["classify_s"] = time.perf_counter() - t1
        log.info("classify task done in %.1f s: test macro-F1 %.4f", timing["classify_s"], m["macro_f1"])
    if "pairs" in cfg.tasks:
        t1 = time.perf_counter()
        result["tasks"]["pairs"] = _pairs_task(table, heldout, xp, cfg, pairs)
        timing["pairs_s"] = time.perf_counter() - t1
        log.info("pairs task done in %.1f s", timing["pairs_s"])
    timing["total_s"] = time.perf_counter() - t0
    result["timing"] = timing
    result["summary"] = summary(result)
    if out is not None:
        write_json(out, result)
        log.info("wrote %s", out)
    return result


def _pairs_task(table, heldout, xp: np.ndarray, cfg: EvalConfig, pairs: Path | None) -> dict:
    from graph.split import TEST
    from lm.eval import protocol
    from lm.eval.retrieval import evaluate_retrieval, heldout_pairs

    if pairs is not None:
        a, b, info = protocol.file_pairs(table, pairs)
        info["source"] = str(pairs)
    else:
        e = heldout.engaged("test")
        row_of = table.row_of()
        rows = np.asarray([row_of.get(t, -1) for t in e["tweet_id"].astype(str)], dtype=np.int64)
        users = e["user_id"].astype(str).to_numpy()
        ok = rows >= 0
        codes = np.unique(users[ok], return_inverse=True)[1] if ok.any() else np.zeros(0, np.int64)
        a, b, common = heldout_pairs(codes, rows[ok], min_common=cfg.min_common_users, max_user_engagements=cfg.max_user_engagements)
        info = {"source": "heldout test co-engagement", "pairs_found": int(len(a)),
                "min_common_users": cfg.min_common_users, "median_common_users": float(np.median(common)) if len(common) else None}
        assert (table.split[a] == TEST).all() and (table.split[b] == TEST).all()
    if len(a) == 0:
        raise InputError(f"pairs: no query pairs ({info}); lower --min-common-users or pass --pairs")
    if cfg.max_queries and len(a) > cfg.max_queries:
        keep = np.sort(np.random.default_rng([cfg.seed, 17]).choice(len(a), size=cfg.max_queries, replace=False))
        a, b = a[keep], b[keep]
    m = evaluate_retrieval(xp, a, b)
    m.update(info)
    return m


def _cached_features(cache, spec: ModelSpec, table, cfg: EvalConfig):
    """Features of the table, optionally cached in an .npz keyed by model, tweet ids and pooling."""
    from coengage.artifacts import atomic_file, combine_fingerprints

    train_rows = table.rows(0)
    key = combine_fingerprints(spec.name, (spec.manifest or {}).get("fingerprint"), cfg.pooling, cfg.pairs_pooling,
                               cfg.tfidf_dim if spec.kind == "tfidf" else None, cfg.random_dim if spec.kind == "random" else None,
                               cfg.seed if spec.kind in BASELINES else None, list(map(str, table.tweet_id)))
    if cache is not None and Path(cache).exists():
        z = np.load(cache, allow_pickle=False)
        if str(z["key"]) == key:
            log.info("features from cache %s", cache)
            return z["x"], z["xp"]
        log.info("cache %s is for other inputs; recomputing", cache)
    x, xp = tweet_features(spec, table.text, train_rows, cfg)
    if cache is not None:
        with atomic_file(cache) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, key=np.asarray(key), x=x, xp=xp)
    return x, xp


def summary(result: dict) -> dict:
    """The headline figures: hits@10, mrr (engagement), macro_f1 (classify), pairs mrr/hr/mpr."""
    t = result["tasks"]
    s = {}
    if "engagement" in t:
        s["hits@10"] = t["engagement"]["hits@10"]
        s["mrr"] = t["engagement"]["mrr"]
    if "classify" in t:
        s["macro_f1"] = t["classify"]["macro_f1"]
    if "pairs" in t:
        for k in ("mrr", "hr@10", "hr@100", "mpr"):
            s[f"pairs_{k}"] = t["pairs"][k]
    return s
