"""The train/dev/test split of tweets, and the held-out part of a graph artifact.

The evaluation (TwHIN-BERT §3.2) splits *tweets* 0.8/0.1/0.1. To keep dev and test tweets out
of everything that is trained (TwHIN embeddings, mined pairs, the language model), the split is
made once, when the graph is built (``coengage graph build --holdout 0.2 --split-seed 0``):

* :func:`assign_split` gives every tweet id a split (0 train, 1 dev, 2 test) from a hash of
  ``(seed, tweet_id)`` alone, so the answer does not depend on row order, file chunking, or which
  other tweets exist;
* the graph arrays, ``tweet_ids.parquet`` and ``texts.parquet`` then hold **train tweets only**,
  so `graph embed`, `mine` and `lm train` never see a dev/test tweet, its text or its engagements;
* dev and test tweets, their engagements and their texts go to ``GRAPH_DIR/heldout/``
  (:func:`write_heldout`), which only `lm eval` reads (:func:`load_heldout`).

Layout of the held-out part::

    GRAPH_DIR/heldout/
      engagements.parquet  user_id str, user int64 (the graph's user node id, or -1 when the user
                           has no train engagement and so no node/embedding), tweet_id str,
                           engagement str, timestamp int64, split str ('dev' | 'test')
      texts.parquet        tweet_id str, text str, split str, plus the texts table's label columns
    manifest.json "split": {seed, fractions, counts {...}, heldout_fingerprint}

This module imports numpy/pandas/pyarrow only (no dgl): lm/ and mining/ may import it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from coengage.artifacts import atomic_dir, combine_fingerprints, file_fingerprint, read_manifest, read_parquet, write_json
from coengage.errors import ArtifactError, InputError

log = logging.getLogger(__name__)

TRAIN, DEV, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "dev", "test")
HELDOUT_DIR = "heldout"
ENGAGEMENT_COLUMNS = ("user_id", "user", "tweet_id", "engagement", "timestamp", "split")
TEXT_COLUMNS = ("tweet_id", "text", "split")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate (train, dev, test) fractions: three non-negative numbers summing to 1."""
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-6:
        raise InputError(f"split fractions must be three non-negative numbers (train, dev, test) summing to 1, got {list(fractions)}")
    return f  # type: ignore[return-value]


def fractions_from_holdout(holdout: float) -> tuple[float, float, float]:
    """``--holdout h`` -> (1-h, h/2, h/2): dev and test get half of the held-out share each."""
    if not 0.0 <= holdout < 1.0:
        raise InputError(f"--holdout must lie in [0, 1), got {holdout}")
    return check_fractions((1.0 - holdout, holdout / 2.0, holdout / 2.0))


def split_hash(tweet_ids: Iterable, seed: int = 0) -> np.ndarray:
    """A uniform number in [0, 1) per tweet id, from blake2b(str(tweet_id), key=seed) alone.

    Stable across processes, platforms and library versions (unlike Python's ``hash``).
    """
    key = int(seed).to_bytes(8, "little", signed=True)
    blake = hashlib.blake2b
    values = [int.from_bytes(blake(str(t).encode("utf-8", "surrogatepass"), digest_size=8, key=key).digest(), "little")
              for t in tweet_ids]
    out = np.asarray(values, dtype=np.uint64)
    return (out >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_split(tweet_ids: Iterable, seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> np.ndarray:
    """Split code per tweet id: int8, 0 train, 1 dev, 2 test.

    Deterministic from ``(seed, tweet_id)``: the same id gets the same split in every file,
    chunk and order. Tweet ids are compared as strings (``7`` and ``"7"`` agree).
    """
    train, dev, _ = check_fractions(fractions)
    u = split_hash(tweet_ids, seed)
    codes = np.full(len(u), TEST, dtype=np.int8)
    codes[u < train + dev] = DEV
    codes[u < train] = TRAIN
    return codes


def split_counts(codes: np.ndarray) -> dict:
    n = np.bincount(np.asarray(codes, dtype=np.int64), minlength=3)
    return {f"{name}_tweets": int(n[i]) for i, name in enumerate(SPLIT_NAMES)}


@dataclass
class Heldout:
    """The held-out dev/test part of a graph artifact (see the module docstring)."""

    engagements: "object"  # pandas DataFrame, ENGAGEMENT_COLUMNS
    texts: "object"  # pandas DataFrame, TEXT_COLUMNS + labels
    info: dict  # the manifest's "split" entry

    def tweets(self, split: str):
        """The texts of one split ('dev' or 'test')."""
        return self.texts[self.texts["split"] == split].reset_index(drop=True)

    def engaged(self, split: str):
        """The engagements of one split ('dev' or 'test')."""
        return self.engagements[self.engagements["split"] == split].reset_index(drop=True)


def _split_strings(codes) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.dtype.kind in "iu":
        if codes.size and (codes.min() < DEV or codes.max() > TEST):
            raise InputError("held-out rows must be dev (1) or test (2); got a train code")
        return np.where(codes == DEV, "dev", "test").astype(object)
    bad = sorted(set(map(str, codes)) - {"dev", "test"})
    if bad:
        raise InputError(f"held-out split must be 'dev' or 'test', got {bad[:5]}")
    return codes.astype(object)


def write_heldout(directory: str | os.PathLike, engagements, texts, *, seed: int, fractions: Sequence[float],
                  train_tweets: int | None = None, update_manifest: bool = True) -> dict:
    """Write ``directory/heldout/`` (atomically) and return the manifest's ``"split"`` entry.

    ``engagements``: DataFrame with user_id, user (graph user node or -1), tweet_id, engagement,
    timestamp, split ('dev'/'test' or codes 1/2). ``texts``: DataFrame with tweet_id, text, split,
    label columns. When ``directory/manifest.json`` exists and ``update_manifest`` is true, the
    ``"split"`` entry is merged into it (the graph fingerprint does not change: it covers the
    train graph, and the held-out part carries its own ``heldout_fingerprint``). Use it on the
    temporary build directory inside :func:`coengage.artifacts.atomic_dir` or on a finished graph.
    """
    import pandas as pd

    directory = Path(directory)
    fractions = check_fractions(fractions)
    eng = pd.DataFrame(engagements).copy()
    missing = [c for c in ENGAGEMENT_COLUMNS if c not in eng.columns]
    if missing:
        raise InputError(f"held-out engagements: missing columns {missing}; expected {list(ENGAGEMENT_COLUMNS)}")
    tx = pd.DataFrame(texts).copy()
    missing = [c for c in TEXT_COLUMNS if c not in tx.columns]
    if missing:
        raise InputError(f"held-out texts: missing columns {missing}; expected {list(TEXT_COLUMNS)} + labels")
    eng = eng[list(ENGAGEMENT_COLUMNS) + [c for c in eng.columns if c not in ENGAGEMENT_COLUMNS]]
    eng = eng.astype({"user_id": str, "tweet_id": str, "engagement": str})
    eng["user"] = eng["user"].astype(np.int64)
    eng["timestamp"] = eng["timestamp"].astype(np.int64)
    eng["split"] = _split_strings(eng["split"].to_numpy())
    tx = tx[list(TEXT_COLUMNS) + [c for c in tx.columns if c not in TEXT_COLUMNS]]
    tx["tweet_id"] = tx["tweet_id"].astype(str)
    tx["text"] = tx["text"].fillna("").astype(str)
    tx["split"] = _split_strings(tx["split"].to_numpy())
    if tx["tweet_id"].duplicated().any():
        dup = tx.loc[tx["tweet_id"].duplicated(), "tweet_id"].iloc[0]
        raise InputError(f"held-out texts: tweet id {dup!r} appears more than once")
    eng = eng.sort_values(["split", "tweet_id", "user_id", "timestamp"], kind="stable").reset_index(drop=True)
    tx = tx.sort_values(["split", "tweet_id"], kind="stable").reset_index(drop=True)

    counts = {}
    for name in ("dev", "test"):
        e = eng[eng["split"] == name]
        counts[f"{name}_tweets"] = int(len(set(e["tweet_id"]) | set(tx.loc[tx["split"] == name, "tweet_id"])))
        counts[f"{name}_engagements"] = int(len(e))
        counts[f"{name}_texts"] = int((tx["split"] == name).sum())
        counts[f"{name}_users_without_node"] = int(e.loc[e["user"] < 0, "user_id"].nunique())
    if train_tweets is not None:
        counts["train_tweets"] = int(train_tweets)
    with atomic_dir(directory / HELDOUT_DIR) as tmp:
        eng.to_parquet(tmp / "engagements.parquet", index=False)
        tx.to_parquet(tmp / "texts.parquet", index=False)
        prints = [file_fingerprint(tmp / "engagements.parquet", full=True), file_fingerprint(tmp / "texts.parquet", full=True)]
    info = {"seed": int(seed), "fractions": list(fractions), "counts": counts,
            "heldout_fingerprint": combine_fingerprints(int(seed), list(fractions), *prints)}
    manifest_path = directory / "manifest.json"
    if update_manifest and manifest_path.exists():
        manifest = read_manifest(directory)
        manifest["split"] = info
        files = set(manifest.get("files", []))
        files.update({f"{HELDOUT_DIR}/engagements.parquet", f"{HELDOUT_DIR}/texts.parquet"})
        manifest["files"] = sorted(files)
        write_json(manifest_path, manifest)
    log.info("held out %d dev and %d test tweets (%d + %d engagements)", counts["dev_tweets"], counts["test_tweets"],
             counts["dev_engagements"], counts["test_engagements"])
    return info


def load_heldout(graph_dir: str | os.PathLike) -> Heldout:
    """Read ``GRAPH_DIR/heldout/``; a graph built without a split is refused with what to do."""
    graph_dir = Path(graph_dir)
    manifest = read_manifest(graph_dir, kind="coengage.graph")
    info = manifest.get("split")
    where = graph_dir / HELDOUT_DIR
    if info is None or not where.is_dir():
        raise ArtifactError(
            f"{graph_dir}: this graph has no held-out dev/test split (no {HELDOUT_DIR}/ or manifest 'split'); "
            "rebuild it with `coengage graph build ... --holdout 0.2 --split-seed 0` so that dev/test tweets are kept "
            "out of embedding, mining and LM training"
        )
    frames = {}
    for name, cols in (("engagements", ENGAGEMENT_COLUMNS), ("texts", TEXT_COLUMNS)):
        path = where / f"{name}.parquet"
        if not path.exists():
            raise ArtifactError(f"{graph_dir}: missing {HELDOUT_DIR}/{name}.parquet; the artifact is incomplete, rebuild it")
        frame = read_parquet(path)
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ArtifactError(f"{path}: missing columns {missing}; expected {list(cols)}")
        frames[name] = frame
    expected = info.get("heldout_fingerprint")
    if expected is not None:
        prints = [file_fingerprint(where / "engagements.parquet", full=True), file_fingerprint(where / "texts.parquet", full=True)]
        actual = combine_fingerprints(int(info["seed"]), list(info["fractions"]), *prints)
        if actual != expected:
            raise ArtifactError(f"{where}: the held-out files changed after the graph was built "
                                f"(fingerprint {actual}, manifest says {expected}); rebuild the graph")
    return Heldout(frames["engagements"], frames["texts"], dict(info))


def leaked_ids(graph_dir: str | os.PathLike, pair_files: Sequence[str | os.PathLike] = ()) -> dict:
    """Held-out tweet ids found where they must not be: the graph's tweets, its texts, pair files.

    Returns ``{place: sorted leaked ids}`` (empty lists when the guard holds). Used by tests and
    by `lm eval`, which refuses to report figures from a leaky setup.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    graph_dir = Path(graph_dir)
    held = load_heldout(graph_dir)
    heldout_ids = set(held.texts["tweet_id"].astype(str)) | set(held.engagements["tweet_id"].astype(str))
    out = {}
    graph_ids = pq.read_table(graph_dir / "tweet_ids.parquet", columns=["tweet_id"]).column("tweet_id").to_pylist()
    out["tweet_ids.parquet"] = sorted(heldout_ids.intersection(map(str, graph_ids)))
    text_ids = pq.read_table(graph_dir / "texts.parquet", columns=["tweet_id"]).column("tweet_id").to_pylist()
    out["texts.parquet"] = sorted(heldout_ids.intersection(map(str, text_ids)))
    for p in pair_files:
        frame = _read_pair_ids(Path(p), pd)
        ids = set(frame["tweet_a"].astype(str)) | set(frame["tweet_b"].astype(str))
        out[str(p)] = sorted(heldout_ids & ids)
    return out


def _read_pair_ids(path: Path, pd):
    name = path.name.lower()
    if name.endswith(".tsv") or name.endswith(".tsv.gz"):
        return pd.read_csv(path, sep="\t", usecols=["tweet_a", "tweet_b"], dtype=str)
    if ".jsonl" in name:
        return pd.read_json(path, lines=True, dtype={"tweet_a": str, "tweet_b": str})[["tweet_a", "tweet_b"]]
    return read_parquet(path, columns=["tweet_a", "tweet_b"])


def split_log(engagements, texts, *, item_col: str = "tweet_id", text_id_col: str | None = None, seed: int = 0,
              fractions: Sequence[float] = DEFAULT_FRACTIONS):
    """Split a raw engagement log and texts table by tweet: ``(train_log, heldout_log, train_texts, heldout_texts)``.

    Both held-out frames get a ``split`` column ('dev'/'test'). For pipelines whose graph build
    has no ``--holdout`` yet: build the graph from the train part, then :func:`attach_heldout`.
    """
    text_id_col = text_id_col or item_col
    names = np.asarray(["train", "dev", "test"], dtype=object)
    ecode = assign_split(engagements[item_col].astype(str).to_numpy(), seed, fractions)
    tcode = assign_split(texts[text_id_col].astype(str).to_numpy(), seed, fractions)
    held_log = engagements[ecode != TRAIN].assign(split=names[ecode[ecode != TRAIN]])
    held_texts = texts[tcode != TRAIN].assign(split=names[tcode[tcode != TRAIN]])
    return engagements[ecode == TRAIN], held_log, texts[tcode == TRAIN], held_texts


def attach_heldout(graph_dir: str | os.PathLike, engagements, texts, *, seed: int, fractions: Sequence[float]) -> dict:
    """Add ``heldout/`` to a graph that was built from the train part of a log.

    ``engagements``: user_id, tweet_id, engagement, timestamp (+ split, else it is computed);
    ``texts``: tweet_id, text, labels (+ split). User ids are mapped to the graph's user nodes
    (-1 when the graph has no such user). Refuses a held-out tweet that is in the graph.
    """
    import pandas as pd

    from graph.artifact import load

    graph = load(graph_dir)
    eng = pd.DataFrame(engagements).copy()
    tx = pd.DataFrame(texts).copy()
    names = np.asarray(["train", "dev", "test"], dtype=object)
    for frame in (eng, tx):
        frame["tweet_id"] = frame["tweet_id"].astype(str)
        if "split" not in frame.columns:
            frame["split"] = names[assign_split(frame["tweet_id"].to_numpy(), seed, fractions)]
    for what, frame in (("engagements", eng), ("texts", tx)):
        if (frame["split"] == "train").any():
            raise InputError(f"attach_heldout: {what} contain train-split tweets (seed {seed}, fractions {list(fractions)})")
    inside = set(graph.tweet_ids) & (set(eng["tweet_id"]) | set(tx["tweet_id"]))
    if inside:
        raise InputError(f"attach_heldout: {len(inside)} held-out tweets are in the graph (e.g. {sorted(inside)[:3]}); "
                         "build the graph from the train part only")
    index = pd.Index(graph.user_ids)
    eng["user_id"] = eng["user_id"].astype(str)
    eng["user"] = index.get_indexer(eng["user_id"]).astype(np.int64)
    return write_heldout(graph_dir, eng, tx, seed=seed, fractions=fractions, train_tweets=graph.num_tweets)
