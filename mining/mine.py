"""`mine()`: a graph artifact -> a pair file (the orchestration behind `coengage mine`).

Steps: open GRAPH_DIR (:mod:`graph.artifact`, CSR arrays memory-mapped, no dgl) -> run one
method (a registry maps "walk", "coengage", "knn" to a function returning candidate pairs of
tweet node ids) -> :func:`mining.postprocess.postprocess` -> write the pair file and its
manifest (:mod:`mining.pairs_io`).

The methods:

* ``walk``: Pixie-style random walks with restart tweet -> user -> tweet; score = visits
  (:func:`mining.walk.walk_pairs`);
* ``coengage``: exact co-engagement counting, optionally within a time window; score = the
  number of shared engagers or a normalised form (:func:`mining.coengagement.coengagement_pairs`);
* ``knn``: nearest tweets by cosine of their graph embeddings (EMB_DIR from `graph embed`);
  score = cosine (:func:`mining.knn.knn_pairs`).

Queries are the tweets that have a text (a pair without text cannot train the LM), unless
``require_text=False``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from coengage.errors import InputError
from mining.postprocess import PostprocessConfig, postprocess

log = logging.getLogger(__name__)


@dataclass
class WalkConfig:
    """Random walks with restart (see mining.walk)."""

    walks_per_query: int = 200  # walks started from each query tweet
    walk_length: int = 4  # at most this many tweet->user->tweet hops per walk
    restart_prob: float = 0.5  # probability of jumping back to the query after each hop
    max_user_degree: int = 100  # users with more engagements are skipped or down-sampled
    degree_cap_mode: str = "skip"  # "skip" or "sample" for users over max_user_degree
    min_visits: int = 2  # a tweet needs this many visits to become a candidate
    top_k: int = 20  # candidates kept per query (most visited first)
    seed: int = 0
    walkers_in_flight: int = 64  # walkers per thread advancing together (speed only; output identical)


@dataclass
class CoengageConfig:
    """Exact co-engagement counting (see mining.coengagement)."""

    max_user_degree: int = 100  # users with more engagements are ignored
    window_s: int | None = None  # count a shared user only if both engagements lie within this many seconds
    min_count: int = 2  # a pair needs at least this many shared engagers
    normalize: str = "count"  # score: "count", "cosine", "jaccard" or "swing"
    top_k: int | None = 20  # candidates kept per query tweet (highest score first); None = all


@dataclass
class KnnConfig:
    """Nearest neighbours of tweet embeddings by cosine (see mining.knn)."""

    embeddings: str | None = None  # EMB_DIR written by `coengage graph embed`
    k: int = 20  # neighbours per query tweet
    index: str = "auto"  # auto | exact | faiss-ivf | faiss-hnsw
    nlist: int | None = None  # IVF lists (default ~sqrt(n))
    nprobe: int | None = None  # IVF lists searched per query (default 32)
    pq: int | None = None  # IVF product quantisation: sub-vectors per vector
    hnsw_m: int = 32  # HNSW neighbours per node
    ef_search: int | None = None  # HNSW search breadth
    seed: int = 0


METHOD_CONFIGS = {"walk": WalkConfig, "coengage": CoengageConfig, "knn": KnnConfig}
METHODS = tuple(METHOD_CONFIGS)


@dataclass
class MineResult:
    path: Path | None
    a: np.ndarray  # int32 tweet node ids, a < b
    b: np.ndarray
    score: np.ndarray  # float64
    manifest: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict:
        return self.manifest["counts"]


def _split_options(method: str, options: dict) -> tuple[object, PostprocessConfig]:
    """Route keyword options to the method's config and the post-processing config."""
    mcls = METHOD_CONFIGS[method]
    mnames = {f.name for f in fields(mcls)}
    pnames = {f.name for f in fields(PostprocessConfig)}
    if method == "knn" and "top_k" in options and "k" not in options:
        options = dict(options, k=options.pop("top_k"))
    unknown = sorted(set(options) - mnames - pnames)
    if unknown:
        raise TypeError(f"unknown option(s) for method {method!r}: {', '.join(unknown)}")
    mcfg = mcls(**{k: v for k, v in options.items() if k in mnames})
    pcfg = PostprocessConfig(**{k: v for k, v in options.items() if k in pnames})
    return mcfg, pcfg


def text_array(graph) -> np.ndarray:
    """Texts by tweet node id (object array; None where a tweet has no text)."""
    texts = graph.texts(columns=["node", "text"])
    out = np.full(graph.num_tweets, None, dtype=object)
    if len(texts):
        out[texts["node"].to_numpy(dtype=np.int64)] = texts["text"].to_numpy(dtype=object)
    return out


def distinct_engagers(graph) -> np.ndarray:
    """Distinct users per tweet (an edge is one (user, tweet, type); a user may have several)."""
    tu = graph.csr("tweet_user")
    indptr, users = np.asarray(tu.indptr), np.asarray(tu.indices)
    if len(users) == 0:
        return np.zeros(graph.num_tweets, dtype=np.int64)
    rows = np.repeat(np.arange(graph.num_tweets, dtype=np.int64), np.diff(indptr))
    new = np.ones(len(users), dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (users[1:] != users[:-1])  # rows sorted by (tweet, user, etype)
    return np.bincount(rows[new], minlength=graph.num_tweets)


def run_walk(graph, cfg: WalkConfig, queries, progress: bool):
    from mining.walk import walk_pairs

    tu, ut = graph.csr("tweet_user"), graph.csr("user_tweet")
    a, b, s = walk_pairs(tu.indptr, tu.indices, tu.etype, ut.indptr, ut.indices, ut.etype, graph.type_weights,
                         queries=queries, walks_per_query=cfg.walks_per_query, walk_length=cfg.walk_length,
                         restart_prob=cfg.restart_prob, max_user_degree=cfg.max_user_degree,
                         degree_cap_mode=cfg.degree_cap_mode, top_k=cfg.top_k, min_visits=cfg.min_visits,
                         seed=cfg.seed, walkers_in_flight=cfg.walkers_in_flight, progress=progress)
    return a, b, s, {}


def run_coengage(graph, cfg: CoengageConfig, queries, progress: bool):
    from mining.coengagement import coengagement_pairs

    tu, ut = graph.csr("tweet_user"), graph.csr("user_tweet")
    a, b, s = coengagement_pairs(tu.indptr, tu.indices, tu.time, ut.indptr, ut.indices, ut.time,
                                 max_user_degree=cfg.max_user_degree, window_s=cfg.window_s,
                                 min_count=cfg.min_count, normalize=cfg.normalize, top_k=cfg.top_k,
                                 progress=progress)
    # the kernel counts every tweet; pairs with a tweet without text are dropped (and counted) later
    return a, b, s, {}


def run_knn(graph, cfg: KnnConfig, queries, progress: bool):
    from mining.knn import knn_pairs, load_embeddings

    if not cfg.embeddings:
        raise InputError("--method knn needs --embeddings EMB_DIR (made by `coengage graph embed`)")
    emb, manifest = load_embeddings(cfg.embeddings, graph)
    a, b, s, info = knn_pairs(emb, k=cfg.k, index=cfg.index, candidates=queries, nlist=cfg.nlist, nprobe=cfg.nprobe,
                              pq=cfg.pq, hnsw_m=cfg.hnsw_m, ef_search=cfg.ef_search, seed=cfg.seed, progress=progress)
    info["embeddings_fingerprint"] = manifest.get("fingerprint")
    return a, b, s, info


RUNNERS = {"walk": run_walk, "coengage": run_coengage, "knn": run_knn}


def mine(graph_dir: str | os.PathLike, method: str = "walk", out: str | os.PathLike | None = None, *,
         fmt: str | None = None, with_text: bool = False, strict: bool = False, progress: bool = True,
         engine: str = "local", spark_options=None, overwrite: bool = False, **options) -> MineResult:
    """Mine positive tweet pairs from GRAPH_DIR with ``method`` and write them to ``out``.

    ``options`` are fields of the method's config (:class:`WalkConfig`, :class:`CoengageConfig`,
    :class:`KnnConfig`) and of :class:`mining.postprocess.PostprocessConfig`. With ``out=None``
    nothing is written (the pairs and counts are returned). ``strict``: tweets without text among
    the candidates, zero embedding vectors, or an empty result are errors instead of warnings.
    ``out`` is checked before any work: an earlier pair file is replaced, anything else that
    exists there is refused unless ``overwrite``, and it may never be or contain an input.
    ``engine="spark"`` (coengage only) computes the candidates with Spark
    (:func:`mining.spark.engine.run_coengage_spark`, ``spark_options`` a
    :class:`mining.spark.session.SparkOptions`); post-processing and writing stay the same.
    """
    from graph.artifact import load
    from mining.pairs_io import check_pairs_output, pairs_table, write_pairs

    if method not in METHOD_CONFIGS:
        raise InputError(f"unknown mining method {method!r}; expected one of {', '.join(METHODS)}")
    if engine not in ("local", "spark"):
        raise InputError(f"unknown engine {engine!r}; expected local or spark")
    runner = RUNNERS[method]
    if engine == "spark":
        from functools import partial

        from mining.spark.engine import check_method, run_coengage_spark

        check_method(method)
        runner = partial(run_coengage_spark, spark_options=spark_options)
    mcfg, pcfg = _split_options(method, options)
    try:
        pcfg.validate()
    except ValueError as e:
        raise InputError(str(e)) from e
    if out is not None:
        check_pairs_output(out, overwrite, [graph_dir, getattr(mcfg, "embeddings", None)])
    t0 = time.perf_counter()
    graph = load(graph_dir)
    texts = text_array(graph)
    has_text = np.array([t is not None for t in texts], dtype=bool)
    n_without = int((~has_text).sum())
    if pcfg.require_text and not has_text.any():
        raise InputError(f"graph {graph.path} has no tweet texts, so no pair can train a language model; "
                         "rebuild it with `coengage graph build --texts ...`")
    if n_without:
        log.warning("%d of %d tweets have no text; pairs with them are dropped", n_without, graph.num_tweets)
    queries = np.flatnonzero(has_text).astype(np.int64) if pcfg.require_text else None
    log.info("mining %s pairs from %s (%d tweets, %d queries)", method, graph.path, graph.num_tweets,
             graph.num_tweets if queries is None else len(queries))
    t1 = time.perf_counter()
    try:
        a, b, s, info = runner(graph, mcfg, queries, progress)
    except ValueError as e:
        raise InputError(f"mine --method {method}: {e}") from e
    t2 = time.perf_counter()
    a, b, s, counts = postprocess(a, b, s, text_of=texts, config=pcfg, n_tweets=graph.num_tweets)
    t3 = time.perf_counter()
    counts["tweets"] = graph.num_tweets
    counts["tweets_without_text"] = n_without
    engagers = distinct_engagers(graph)
    eligible = (engagers >= 2) & (has_text if pcfg.require_text else True)
    paired = np.zeros(graph.num_tweets, dtype=bool)
    paired[a] = True
    paired[b] = True
    counts["tweets_with_2plus_engagers"] = int(eligible.sum())
    coverage = float(paired[eligible].mean()) if eligible.any() else 0.0
    for key in ("zero_vectors",):
        if key in info:
            counts[key] = info[key]
    problems = []
    if counts["tweets_without_text_in_candidates"]:
        problems.append(f"{counts['tweets_without_text_in_candidates']} tweets without text among the candidates")
    if info.get("zero_vectors"):
        problems.append(f"{info['zero_vectors']} tweets with an all-zero embedding")
    if counts["written"] == 0:
        problems.append("no pairs left after post-processing")
    if problems:
        msg = "; ".join(problems)
        if strict:
            raise InputError(f"mine --strict: {msg}")
        log.warning("%s", msg)
    config = {"method": method, method: asdict(mcfg), "postprocess": pcfg.to_dict(), "with_text": with_text}
    if engine != "local":
        config["engine"] = engine
    manifest = {
        "graph_fingerprint": graph.fingerprint,
        "graph": str(graph.path),
        "method": method,
        "config": config,
        "counts": counts,
        "coverage_2plus_engagers": coverage,
        "info": {k: v for k, v in info.items() if k != "zero_vectors"},
        "timing": {"load_s": t1 - t0, "method_s": t2 - t1, "postprocess_s": t3 - t2},
    }
    log.info("%s: %d pairs, %d tweets paired, coverage of tweets with >= 2 engagers %.3f",
             method, counts["written"], counts["tweets_paired"], coverage)
    path = None
    if out is not None:
        path = Path(out)
        table = pairs_table(graph.tweet_ids, a, b, s, method, texts if with_text else None)
        manifest = write_pairs(path, table, fmt=fmt, manifest=manifest)
        log.info("wrote %d pairs to %s", counts["written"], path)
    return MineResult(path, a, b, s, manifest)
