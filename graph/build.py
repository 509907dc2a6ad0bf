"""`coengage graph build`: engagement logs + texts -> GRAPH_DIR (see :mod:`graph.artifact`).

The build streams the logs chunk by chunk (:func:`graph.ingest.iter_chunks`). Each chunk is
encoded in a worker thread (pyarrow compute releases the GIL): user and tweet ids become
chunk-local dictionary codes, engagement types become type indices, timestamps become unix
seconds, and bad rows are counted and dropped. Only these small integer arrays and the
chunk's distinct ids are kept, so peak memory follows the size of the final arrays rather
than the size of the log. At the end the chunk dictionaries are unified into contiguous
node ids in order of first appearance, and :func:`graph.writer.write_graph` de-duplicates
(user, tweet, type) triples (latest timestamp, count of rows merged), builds both CSR
directions and the DGL graph, and writes everything atomically.

Dropped rows are counted once, under the first reason that applies, in this order:
``empty_user``, ``empty_tweet``, ``empty_type``, ``bad_timestamp``, ``unknown_type``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from coengage.artifacts import check_output, file_fingerprint
from coengage.errors import InputError
from graph import ingest
from graph.artifact import KIND, GraphArtifact
from graph.idmap import IdTable, is_blank_id

log = logging.getLogger(__name__)

DROP_REASONS = ("empty_user", "empty_tweet", "empty_type", "bad_timestamp", "unknown_type")
UNKNOWN_TYPE_POLICIES = ("error", "keep", "drop")
TIME_UNITS = ("s", "ms", "us", "ns")
# epoch seconds above this (the year 5138) are taken for a finer unit given as seconds (--time-unit)
IMPLAUSIBLE_SECONDS = 10 ** 11
# Read dictionary-encoded Parquet id/type columns as dictionaries (tests switch it off to
# check that both paths build the same artifact).
DICTIONARY_READS = True
RESERVED_TEXT_COLUMNS = ("node", "tweet_id", "text")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------

def parse_types(spec: Any) -> dict[str, float] | None:
    """Engagement-type vocabulary from ``"fav=1,retweet=2"``, ``"fav,retweet"``, a list or a dict."""
    if spec is None or spec == "" or spec == {}:
        return None
    out: dict[str, float] = {}
    if isinstance(spec, dict):
        items = list(spec.items())
    else:
        if isinstance(spec, str):
            parts = [p.strip() for p in spec.split(",") if p.strip()]
        else:
            parts = [str(p).strip() for p in spec]
        items = []
        for p in parts:
            name, _, w = p.partition("=")
            items.append((name.strip(), w.strip() or 1.0))
    for name, w in items:
        name = str(name)
        if not name:
            raise InputError(f"empty engagement type name in types {spec!r}")
        try:
            weight = float(1.0 if w is None else w)
        except (TypeError, ValueError):
            raise InputError(f"engagement type {name!r}: weight {w!r} is not a number") from None
        if not np.isfinite(weight):
            raise InputError(f"engagement type {name!r}: weight must be finite, got {w!r}")
        if name in out:
            raise InputError(f"engagement type {name!r} listed twice in types")
        out[name] = weight
    return out


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [p.strip() for p in str(value).split(",") if p.strip()] if isinstance(value, str) else [str(value)]
    return [str(v) for v in value]


@dataclass
class BuildConfig:
    """Everything `coengage graph build` needs; loadable from YAML (same keys as the flags).

    Column names are configurable because every platform's logs look different. A column
    option set to ``none`` is not read: without a type column every row is one engagement
    type named ``engaged``; without a time column every timestamp is 0.
    """

    log: list[str] = field(default_factory=list)  # log files or globs (CSV/TSV/Parquet/JSONL, .gz)
    texts: list[str] = field(default_factory=list)  # texts table files or globs
    out: str | None = None  # GRAPH_DIR to write
    user_col: str = "user_id"  # log column with the user id
    item_col: str = "tweet_id"  # log column with the tweet (item) id
    type_col: str | None = "engagement"  # log column with the engagement type
    time_col: str | None = "timestamp"  # log column with unix seconds or ISO-8601 timestamps
    time_unit: str = "s"  # unit of numeric (epoch) timestamps: s | ms | us | ns (ISO-8601 and typed ones carry theirs)
    text_id_col: str | None = None  # texts column with the tweet id (default: item_col)
    text_cols: list[str] = field(default_factory=lambda: ["text"])  # joined with a newline
    label_cols: list[str] | None = None  # extra texts columns to keep (None: all other scalar columns)
    types: dict[str, float] | None = None  # type -> weight; None accepts every type with weight 1
    unknown_types: str = "error"  # error | keep | drop (only with a types vocabulary)
    format: str = "auto"  # log format: auto | csv | tsv | parquet | jsonl
    texts_format: str = "auto"
    encoding: str = "utf-8"  # text encoding of CSV/TSV/JSONL inputs
    strict: bool = False  # any dropped row is an error
    chunk_rows: int = 1 << 17  # rows per chunk while streaming (smaller chunks: less memory in flight)
    no_dgl: bool = False  # skip the DGL binary graph.dgl
    overwrite: bool = False  # replace an existing --out that is not a graph artifact
    workers: int = 2  # threads encoding chunks
    holdout: float = 0.0  # share of tweets held out for evaluation (half dev, half test); see graph.split
    split_seed: int = 0  # seed of the hash that assigns tweets to train/dev/test

    def __post_init__(self) -> None:
        self.log = _as_list(self.log)
        self.texts = _as_list(self.texts)
        self.text_cols = _as_list(self.text_cols)
        if self.label_cols is not None:
            self.label_cols = _as_list(self.label_cols)
        self.types = parse_types(self.types)
        for name in ("type_col", "time_col", "text_id_col"):
            v = getattr(self, name)
            if isinstance(v, str) and v.strip().lower() in ("", "none", "null"):
                setattr(self, name, None)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "BuildConfig":
        if not isinstance(d, dict):
            raise InputError(f"{source}: expected a mapping of option: value, got {type(d).__name__}")
        known = cls.field_names()
        aliases = {"logs": "log", "dgl": None, "item": "item_col"}
        kw = {}
        for key, value in d.items():
            k = str(key).replace("-", "_")
            if k == "dgl":
                kw["no_dgl"] = not bool(value)
                continue
            k = aliases.get(k) or k
            if k not in known:
                raise InputError(f"{source}: unknown option {key!r}; known options: {', '.join(known)}")
            kw[k] = value
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "BuildConfig":
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise InputError(f"{path}: cannot read config ({e})") from None
        except yaml.YAMLError as e:
            raise InputError(f"{path}: not valid YAML ({e})") from None
        if isinstance(data, dict) and isinstance(data.get("graph_build"), dict):
            data = data["graph_build"]  # allow a section in a pipeline config
        return cls.from_dict(data, source=str(path))

    def updated(self, **overrides: Any) -> "BuildConfig":
        """A copy with the non-None overrides applied (flags over YAML)."""
        d = asdict(self)
        d.update({k: v for k, v in overrides.items() if v is not None})
        return BuildConfig(**d)

    def validate(self) -> None:
        if not self.log:
            raise InputError("no log files given (--log)")
        if self.time_unit not in TIME_UNITS:
            raise InputError(f"time_unit must be one of {', '.join(TIME_UNITS)} (of numeric epoch timestamps), "
                             f"got {self.time_unit!r}")
        if self.unknown_types not in UNKNOWN_TYPE_POLICIES:
            raise InputError(f"unknown_types must be one of {', '.join(UNKNOWN_TYPE_POLICIES)}, got {self.unknown_types!r}")
        if int(self.chunk_rows) < 1:
            raise InputError(f"chunk_rows must be positive, got {self.chunk_rows}")
        if not self.user_col or not self.item_col:
            raise InputError("user_col and item_col are required")
        cols = [self.user_col, self.item_col, self.type_col, self.time_col]
        named = [c for c in cols if c]
        if len(set(named)) != len(named):
            raise InputError(f"log columns must be distinct, got user={self.user_col!r} item={self.item_col!r} "
                             f"type={self.type_col!r} time={self.time_col!r}")
        if self.texts and not self.text_cols:
            raise InputError("text_cols is empty; name the texts column(s) holding the text")
        for c in self.label_cols or []:
            if c in RESERVED_TEXT_COLUMNS:
                raise InputError(f"label column {c!r} clashes with a column the graph writes ({', '.join(RESERVED_TEXT_COLUMNS)})")
        ingest.detect_format("x.csv", self.format)
        ingest.detect_format("x.csv", self.texts_format)
        if not 0.0 <= float(self.holdout) < 1.0:
            raise InputError(f"holdout must lie in [0, 1), got {self.holdout}")

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# per-chunk encoding (runs in worker threads)
# --------------------------------------------------------------------------------------------

def _single_array(col) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def encode_ids(col) -> tuple[np.ndarray, pa.Array]:
    """Chunk-local ids: ``(codes int32 with -1 for null/blank ids, dictionary of string ids)``."""
    arr = _single_array(col)
    if pa.types.is_null(arr.type):
        return np.full(len(arr), -1, np.int32), pa.array([], pa.string())
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    dictionary = arr.dictionary
    if not pa.types.is_string(dictionary.type):
        if pa.types.is_floating(dictionary.type):
            raise InputError(f"ids are floating-point numbers ({dictionary.type}); ids must be strings or integers")
        dictionary = dictionary.cast(pa.string())
    indices = arr.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    codes = indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    # the id tables' rule, in Python (pyarrow's utf8_trim_whitespace costs ~0.15 s of set-up on
    # its first call, more than a type column's whole dictionary takes)
    blank = np.array([is_blank_id(v) for v in dictionary.to_pylist()], dtype=bool)
    if blank.any():
        remap = np.arange(len(dictionary) + 1, dtype=np.int32)
        remap[:-1][blank] = -1
        remap[-1] = -1  # code -1 stays -1 (remap[-1])
        codes = remap[codes]
    return codes, dictionary


_UNIT_DIV = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def parse_times(col, unit: str = "s") -> tuple[np.ndarray, np.ndarray]:
    """``(unix seconds int64, ok bool)`` from integers, floats, timestamps or strings
    (integer/decimal epoch values or ISO-8601). ``unit``: that of the numeric epoch values
    (s, ms, us, ns; floored to seconds); typed timestamps, dates and ISO-8601 strings carry their own."""
    div = _UNIT_DIV[unit]
    arr = _single_array(col)
    n = len(arr)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_null(t):
        return np.zeros(n, np.int64), np.zeros(n, bool)
    if pa.types.is_integer(t):
        ok = np.ones(n, bool) if arr.null_count == 0 else arr.is_valid().to_numpy(zero_copy_only=False)
        vals = pc.fill_null(arr, 0) if arr.null_count else arr
        return _epoch_seconds(vals.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), div), ok
    if pa.types.is_floating(t):
        v = pc.fill_null(arr, np.nan).to_numpy(zero_copy_only=False).astype(np.float64, copy=False) / div
        ok = np.isfinite(v) & (np.abs(v) < 9e15)
        return np.where(ok, np.floor(np.where(ok, v, 0)), 0).astype(np.int64), ok
    if pa.types.is_timestamp(t):
        ok = arr.is_valid().to_numpy(zero_copy_only=False)
        raw = pc.fill_null(arr.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        return np.floor_divide(raw, _UNIT_DIV[t.unit]).astype(np.int64), ok
    if pa.types.is_date(t):
        ok = arr.is_valid().to_numpy(zero_copy_only=False)
        days = pc.fill_null(arr.cast(pa.date32()).cast(pa.int32()), 0).to_numpy(zero_copy_only=False)
        return days.astype(np.int64) * 86400, ok
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:  # fast path: every value is an integer
            if arr.null_count == 0:
                return _epoch_seconds(pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False), div), np.ones(n, bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        return _parse_time_strings(arr, div)
    raise InputError(f"timestamp column has type {t}; expected unix seconds (integer or decimal) or ISO-8601 strings")


def _epoch_seconds(values: np.ndarray, div: int) -> np.ndarray:
    """Integer epoch values in units of 1/div s -> whole seconds (floored, as for negative times)."""
    return values if div == 1 else np.floor_divide(values, div)


def _parse_time_strings(arr: pa.Array, div: int = 1) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    s = pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object)
    out = np.zeros(len(s), np.int64)
    # integer strings exactly (a float64 loses nanoseconds), the rest as decimals, then ISO-8601
    stripped = s.astype("string").str.strip()
    ints = stripped.str.fullmatch(r"-?\d{1,19}").fillna(False).to_numpy(bool)
    if ints.any():
        try:
            vals = pc.cast(pa.array(stripped[ints].to_numpy(dtype=object), pa.string()), pa.int64())
            out[ints] = _epoch_seconds(vals.to_numpy(zero_copy_only=False), div)
        except pa.ArrowInvalid:  # a 19-digit value beyond int64: all of them as decimals, below
            ints[:] = False
    num = pd.to_numeric(s.where(~ints), errors="coerce").to_numpy(dtype=np.float64) / div
    dec = np.isfinite(num) & (np.abs(num) < 9e15)
    out[dec] = np.floor(num[dec]).astype(np.int64)
    ok = ints | dec
    rest = ~ok & (stripped != "").fillna(False).to_numpy(bool)
    if rest.any():
        dt = pd.to_datetime(s[rest], format="ISO8601", utc=True, errors="coerce")
        good = dt.notna().to_numpy()
        secs = np.zeros(len(dt), np.int64)
        secs[good] = dt[good].to_numpy(dtype="datetime64[s]").astype(np.int64)
        idx = np.flatnonzero(rest)
        out[idx[good]] = secs[good]
        ok[idx[good]] = True
    return out, ok


# --------------------------------------------------------------------------------------------
# the build
# --------------------------------------------------------------------------------------------

def _row_where(path: Path, fmt: str, row0: int) -> str:
    """Human position of data row ``row0`` (0-based) of a file."""
    row = row0 + 1
    if fmt in ("csv", "tsv"):
        return f"row {row} (line {row + 1})"
    if fmt == "jsonl":
        return f"row {row} (line {row} if the file has no blank lines)"
    return f"row {row}"


_REASON_TEXT = {
    "empty_user": "empty user id",
    "empty_tweet": "empty tweet id",
    "empty_type": "empty engagement type",
    "bad_timestamp": "timestamp that is neither unix seconds nor ISO-8601",
    "unknown_type": "engagement type not in the configured types",
}


class _TypeVocab:
    """Engagement types: a fixed vocabulary from the config, or discovered from the data."""

    def __init__(self, cfg: BuildConfig):
        self.fixed = cfg.types is not None
        self.policy = cfg.unknown_types
        self.names: list[str] = list(cfg.types or {})
        self.weights: dict[str, float] = dict(cfg.types or {})
        self.index = {n: i for i, n in enumerate(self.names)}

    def lookup(self, chunk_types: list[str], where: str, used: np.ndarray) -> np.ndarray:
        """Global type index per chunk type code; -2 marks a type to drop.

        Only codes flagged in ``used`` (those of rows that survive the other checks) are looked
        up (-3 otherwise), so a type seen only in dropped rows never becomes a relation.
        """
        out = np.full(len(chunk_types), -3, np.int32)
        for i, name in enumerate(chunk_types):
            if not used[i]:
                continue
            if name not in self.index:
                if self.fixed and self.policy == "error":
                    raise InputError(
                        f"{where}: unknown engagement type {name!r}; known types: {', '.join(self.names)}. "
                        "Add it to --types, or pass --unknown-types keep|drop"
                    )
                if self.fixed and self.policy == "drop":
                    out[i] = -2
                    continue
                self.index[name] = len(self.names)
                self.names.append(name)
                self.weights[name] = 1.0
            out[i] = self.index[name]
        return out

    def final_order(self) -> tuple[list[str], np.ndarray]:
        """Relations in etype order and the map from discovery index to etype."""
        if self.fixed:
            return list(self.names), np.arange(len(self.names), dtype=np.int8)
        order = sorted(self.names)
        remap = np.array([order.index(n) for n in self.names], dtype=np.int8)
        return order, remap


@njit(nogil=True, cache=True)
def _renumber(codes, n_ids):
    """Renumber ``codes`` in place to 0.. in order of first appearance; returns the old->new map."""
    remap = np.full(n_ids, -1, np.int32)
    k = 0
    for i in range(len(codes)):
        c = codes[i]
        if remap[c] < 0:
            remap[c] = k
            k += 1
        codes[i] = remap[c]
    return remap


def _kept_ids(table: IdTable, codes: np.ndarray) -> pa.Array:
    """Renumber ``codes`` (in place) to the ids the kept rows use, in order of first appearance."""
    remap = _renumber(codes, len(table))
    used = np.flatnonzero(remap >= 0)
    order = np.empty(len(used), np.int64)
    order[remap[used]] = used
    return table.ids().take(pa.array(order))


def _rows_estimate(path: Path, fmt: str) -> int:
    """Rows a text log probably holds, on the high side (capacity of :class:`_EdgeColumns`)."""
    hint = ingest.file_rows_hint(path, fmt)
    if hint is not None:
        return hint
    size = path.stat().st_size * (5 if ingest.is_gzip(path) else 1)
    return int(size // 24) + 1024


class _EdgeColumns:
    """The kept rows' users, tweets, etypes and times, appended chunk by chunk into arrays
    that grow in place (no per-chunk parts to concatenate at the end: that would briefly
    hold every row twice, and the freed parts stay in the process heap)."""

    DTYPES = {"users": np.int32, "tweets": np.int32, "etypes": np.int8, "times": np.int64}

    def __init__(self, capacity: int):
        self.n = 0
        self.arrays = {k: np.empty(max(int(capacity), 1024), dt) for k, dt in self.DTYPES.items()}

    def append(self, **cols: np.ndarray) -> None:
        k = len(cols["users"])
        cap = len(self.arrays["users"])
        if self.n + k > cap:
            new_cap = max(self.n + k, cap + cap // 2)
            for name, arr in self.arrays.items():
                grown = np.empty(new_cap, arr.dtype)
                grown[:self.n] = arr[:self.n]
                self.arrays[name] = grown
                del arr
        for name, col in cols.items():
            self.arrays[name][self.n:self.n + k] = col
        self.n += k

    def result(self) -> dict[str, np.ndarray]:
        """The filled part of each array (views: pages past the end were never touched, so
        an over-estimated capacity costs address space, not memory)."""
        return {name: self.arrays.pop(name)[:self.n] for name in list(self.arrays)}


def _progress(total: int | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", unit_scale=True, desc="graph build", disable=None, leave=False)


def read_logs(cfg: BuildConfig, paths: list[Path]) -> dict:
    """Stream and encode every log file; return the edge arrays and bookkeeping.

    Per chunk the user and tweet columns go to two threads, each owning one persistent
    :class:`~graph.idmap.IdTable` (so chunks reach a table in order and ids are numbered by
    first appearance); types and timestamps are encoded on the reading thread meanwhile.
    Node ids end up in order of first appearance among the kept rows.
    """
    fmts = [ingest.detect_format(p, cfg.format) for p in paths]
    required = {"user": cfg.user_col, "tweet": cfg.item_col}
    if cfg.type_col:
        required["type"] = cfg.type_col
    if cfg.time_col:
        required["time"] = cfg.time_col
    for p, fmt in zip(paths, fmts):  # check every header before reading anything
        ingest.require_columns(p, ingest.read_header(p, fmt, cfg.encoding), required)
    columns = list(required.values())
    hints = [ingest.file_rows_hint(p, f) for p, f in zip(paths, fmts)]
    total = sum(hints) if all(h is not None for h in hints) else None

    # Parquet columns stored dictionary-encoded come as DictionaryArray: only their
    # dictionaries are hashed (graph.idmap); the result is the same as reading strings.
    dict_cols = [c for c in (cfg.user_col, cfg.item_col, cfg.type_col) if c] if DICTIONARY_READS else []
    vocab = _TypeVocab(cfg)
    user_table, tweet_table = IdTable(), IdTable()
    parts = _EdgeColumns(total if total is not None else sum(_rows_estimate(p, f) for p, f in zip(paths, fmts)))
    dropped = {r: 0 for r in DROP_REASONS}
    state = {"rows_read": 0, "any_drop": False}
    bar = _progress(total)
    try:
        with ThreadPoolExecutor(max_workers=1) as user_pool, ThreadPoolExecutor(max_workers=1) as tweet_pool:
            for path, fmt in zip(paths, fmts):
                stream = ingest.iter_chunks(path, columns, fmt=fmt, chunk_rows=cfg.chunk_rows, encoding=cfg.encoding,
                                            string_columns=[c for c in (cfg.user_col, cfg.item_col, cfg.time_col) if c],
                                            dictionary_columns=[cfg.type_col] if cfg.type_col else [],
                                            prefer_dictionary=dict_cols)
                pending: deque = deque()
                row0 = 0
                for table in stream:
                    fu = user_pool.submit(user_table.encode, table.column(cfg.user_col))
                    ft = tweet_pool.submit(tweet_table.encode, table.column(cfg.item_col))
                    n = table.num_rows
                    if cfg.type_col:
                        with _in_column(path, cfg.type_col):
                            types, tdict = encode_ids(table.column(cfg.type_col))
                        type_dict = [str(x) for x in tdict.to_pylist()]
                    else:
                        types, type_dict = np.zeros(n, np.int32), ["engaged"]
                    if cfg.time_col:
                        times, time_ok = parse_times(table.column(cfg.time_col), cfg.time_unit)
                    else:
                        times, time_ok = np.zeros(n, np.int64), None
                    del table
                    pending.append((fu, ft, types, type_dict, times, time_ok, n, row0))
                    row0 += n
                    while len(pending) > 1:  # finish chunk k-1 while chunk k encodes
                        _finish_chunk(pending.popleft(), path, fmt, cfg, vocab, dropped, parts, state)
                    bar.update(n)
                while pending:
                    _finish_chunk(pending.popleft(), path, fmt, cfg, vocab, dropped, parts, state)
                del stream  # the file's reader and its buffers
    finally:
        bar.close()

    relations, etype_remap = vocab.final_order()
    cols = parts.result()
    del parts
    users, tweets, etypes, times = cols.pop("users"), cols.pop("tweets"), cols.pop("etypes"), cols.pop("times")
    if state["any_drop"]:  # users/tweets seen only in dropped rows are not nodes
        user_ids, tweet_ids = _kept_ids(user_table, users), _kept_ids(tweet_table, tweets)
    else:
        user_ids, tweet_ids = user_table.ids(), tweet_table.ids()
    del user_table, tweet_table
    if len(etypes) and not np.array_equal(etype_remap, np.arange(len(etype_remap))):
        etypes = np.take(etype_remap, etypes)
    return {
        "user_ids": user_ids, "tweet_ids": tweet_ids, "users": users, "tweets": tweets, "etypes": etypes,
        "times": times, "relations": relations, "type_weights": {r: vocab.weights[r] for r in relations},
        "dropped": dropped, "rows_read": state["rows_read"],
    }


def _finish_chunk(item, path: Path, fmt: str, cfg: BuildConfig, vocab: _TypeVocab, dropped: dict,
                  parts: "_EdgeColumns", state: dict) -> None:
    """Reading-thread part of a chunk: drop accounting, --strict, type vocabulary, keep rows."""
    fu, ft, types, type_dict, times, time_ok, n, row0 = item
    users, tweets = _column_result(fu, path, cfg.user_col), _column_result(ft, path, cfg.item_col)
    state["rows_read"] += n
    bad = {"empty_user": users < 0, "empty_tweet": tweets < 0, "empty_type": types < 0,
           "bad_timestamp": ~time_ok if time_ok is not None else None}
    bad = {r: m for r, m in bad.items() if m is not None and m.any()}
    if cfg.strict and bad:  # the first bad row of the chunk, under its first reason
        first = {r: int(np.argmax(m)) for r, m in bad.items()}
        reason = min(first, key=first.get)
        raise InputError(
            f"{path}: {_row_where(path, fmt, row0 + first[reason])}: {_REASON_TEXT[reason]} "
            f"(column {_reason_column(reason, cfg)!r}); --strict makes dropped rows fatal"
        )
    keep = None
    for reason, mask in bad.items():
        m = mask if keep is None else (mask & keep)
        k = int(m.sum())
        if not k:
            continue
        dropped[reason] += k
        keep = ~mask if keep is None else (keep & ~mask)
    used = np.zeros(len(type_dict), bool)
    used[types[(types >= 0) if keep is None else ((types >= 0) & keep)]] = True
    lookup = vocab.lookup(type_dict, str(path), used)
    etypes = lookup[np.maximum(types, 0)] if len(lookup) else np.zeros(len(types), np.int32)
    unknown = etypes == -2
    if keep is not None:
        unknown &= keep
    k = int(unknown.sum())
    if k:
        if cfg.strict:
            raise InputError(f"{path}: {k} rows with an engagement type not in --types; --strict makes dropped rows fatal")
        dropped["unknown_type"] += k
        keep = ~unknown if keep is None else (keep & ~unknown)
    etypes = etypes.astype(np.int8)
    if keep is not None:
        state["any_drop"] = True
        users, tweets, etypes, times = users[keep], tweets[keep], etypes[keep], times[keep]
    parts.append(users=users, tweets=tweets, etypes=etypes, times=times)


@contextlib.contextmanager
def _in_column(path: Path, column: str):
    """An InputError raised inside (ids of an unusable type) names the file and the column."""
    try:
        yield
    except InputError as e:
        raise InputError(f"{path}: column {column!r}: {e}") from None


def _column_result(future, path: Path, column: str):
    with _in_column(path, column):
        return future.result()


def _reason_column(reason: str, cfg: BuildConfig) -> str | None:
    return {"empty_user": cfg.user_col, "empty_tweet": cfg.item_col, "empty_type": cfg.type_col,
            "bad_timestamp": cfg.time_col, "unknown_type": cfg.type_col}[reason]


def _texts_required(cfg: BuildConfig) -> list[tuple[str, str]]:
    pairs = [("text id", cfg.text_id_col or cfg.item_col)]
    pairs += [("text", c) for c in cfg.text_cols]
    pairs += [("label", c) for c in cfg.label_cols or []]
    return pairs


def read_texts(cfg: BuildConfig, paths: list[Path]):
    """The texts table as a DataFrame with columns tweet_id, text and label columns."""
    import pandas as pd

    id_col = cfg.text_id_col or cfg.item_col
    frames = []
    for path in paths:
        fmt = ingest.detect_format(path, cfg.texts_format)
        present = ingest.read_header(path, fmt, cfg.encoding)
        ingest.require_columns(path, present, _texts_required(cfg))
        if cfg.label_cols is None:
            labels = [c for c in present if c != id_col and c not in cfg.text_cols and c not in RESERVED_TEXT_COLUMNS]
        else:
            labels = list(cfg.label_cols)
        columns = list(dict.fromkeys([id_col] + list(cfg.text_cols) + labels))
        table = ingest.read_table(path, columns, fmt=fmt, encoding=cfg.encoding, string_columns=[id_col] + list(cfg.text_cols))
        ids = table.column(id_col)
        if pa.types.is_floating(ids.type):
            raise InputError(f"{path}: text id column {id_col!r} holds floating-point numbers; ids must be strings or integers")
        ids = pc.cast(ids, pa.string())
        parts = []
        for c in cfg.text_cols:
            col = table.column(c)
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                col = pc.cast(col, pa.string())
            col = pc.if_else(pc.equal(pc.utf8_trim_whitespace(col), ""), pa.scalar(None, pa.string()), col)
            parts.append(col)
        text = pc.binary_join_element_wise(*parts, "\n", null_handling="skip") if len(parts) > 1 else parts[0]
        frame = {"tweet_id": ids.to_pandas(), "text": pc.fill_null(text, "").to_pandas()}
        for c in labels:
            col = table.column(c)
            if pa.types.is_nested(col.type):
                if cfg.label_cols is not None:
                    raise InputError(f"{path}: label column {c!r} is nested ({col.type}); labels must be scalar")
                continue
            frame[c] = col.to_pandas()
        frames.append(pd.DataFrame(frame))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _fingerprints(paths: Iterable[Path], role: str) -> list[dict]:
    out = []
    for p in paths:
        out.append({"role": role, "path": str(Path(p).resolve()), "bytes": Path(p).stat().st_size,
                    "fingerprint": file_fingerprint(p)})
    return out


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim``; no-op elsewhere).

    Streaming leaves many freed chunk-sized blocks in the malloc arenas of the reading and
    encoding threads (~200 MB on the 10M benchmark); without this they stay in the RSS
    while the writer allocates its arrays next to them.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        pa.default_memory_pool().release_unused()
    except AttributeError:
        pass


def _warm_up() -> None:
    try:
        from graph.writer import warm_kernels

        warm_kernels()
    except Exception:  # the real call later reports the problem
        pass


def _first_appearance(ids: np.ndarray) -> np.ndarray:
    """The distinct values of ``ids`` in order of first appearance."""
    values, first = np.unique(ids, return_index=True)
    return values[np.argsort(first, kind="stable")]


def split_heldout(data: dict, texts, cfg: BuildConfig):
    """Move dev/test tweets (graph.split.assign_split) out of the graph: the leakage guard.

    Returns ``(train_data, train_texts, heldout)``: the edge arrays re-indexed to the users and
    tweets that have train engagements, the texts of train tweets, and the arguments of
    :func:`graph.split.write_heldout` (dev/test engagements with their user's train node id or
    -1, and dev/test texts). Embedding, mining and LM training then never see a held-out tweet.
    """
    import pandas as pd

    from graph.split import TRAIN, assign_split, fractions_from_holdout

    fractions = fractions_from_holdout(cfg.holdout)
    tweet_ids = np.asarray(data["tweet_ids"].to_numpy(zero_copy_only=False), dtype=object)
    user_ids = np.asarray(data["user_ids"].to_numpy(zero_copy_only=False), dtype=object)
    codes = assign_split(tweet_ids, cfg.split_seed, fractions)
    edge_codes = codes[data["tweets"]]
    train = edge_codes == TRAIN
    if not train.any():
        raise InputError(f"--holdout {cfg.holdout} left no train engagement; lower it")
    users, tweets = data["users"], data["tweets"]
    u_keep = _first_appearance(users[train])  # the ids a build of the train rows alone would give
    t_keep = _first_appearance(tweets[train])
    u_map = np.full(len(user_ids), -1, np.int64)
    u_map[u_keep] = np.arange(len(u_keep))
    t_map = np.full(len(tweet_ids), -1, np.int64)
    t_map[t_keep] = np.arange(len(t_keep))
    held = ~train
    relations = np.asarray(data["relations"], dtype=object)
    engagements = pd.DataFrame({
        "user_id": user_ids[users[held]], "user": u_map[users[held]], "tweet_id": tweet_ids[tweets[held]],
        "engagement": relations[data["etypes"][held]], "timestamp": data["times"][held], "split": edge_codes[held],
    })
    train_data = dict(data)
    train_data.update(
        user_ids=user_ids[u_keep], tweet_ids=tweet_ids[t_keep], users=u_map[users[train]].astype(np.int32),
        tweets=t_map[tweets[train]].astype(np.int32), etypes=data["etypes"][train], times=data["times"][train],
    )
    names = np.asarray(["train", "dev", "test"], dtype=object)
    if texts is not None:
        text_codes = assign_split(texts["tweet_id"].astype(str).to_numpy(), cfg.split_seed, fractions)
        held_texts = texts[text_codes != TRAIN].assign(split=names[text_codes[text_codes != TRAIN]])
        texts = texts[text_codes == TRAIN]
    else:
        held_texts = pd.DataFrame({"tweet_id": pd.Series([], dtype=str), "text": pd.Series([], dtype=str),
                                   "split": pd.Series([], dtype=str)})
    log.info("held out %d of %d tweets (%d engagements) for dev/test", int((codes != TRAIN).sum()), len(codes), int(held.sum()))
    heldout = {"engagements": engagements, "texts": held_texts, "seed": int(cfg.split_seed), "fractions": fractions,
               "train_tweets": int(len(t_keep))}
    return train_data, texts, heldout


def build_graph(cfg: BuildConfig, out: str | os.PathLike | None = None) -> GraphArtifact:
    """Build GRAPH_DIR from ``cfg``; nothing is written unless the whole build succeeds."""
    import gc

    # The build makes few reference cycles but many allocations, which would trigger full
    # collections over every object of numba/pyarrow/pandas (~0.1 s on the 10M benchmark).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_graph(cfg, out)
    finally:
        if enabled:
            gc.enable()


def _check_duplicate_texts(texts, paths: list[Path], cfg: BuildConfig) -> None:
    """Texts rows repeating a tweet id: the first text of each id is kept (counted in the manifest's
    texts.duplicate_ids); warn, or with --strict refuse, naming the first repeated id."""
    ids = texts["tweet_id"].astype(str)
    dup = ids.duplicated(keep="first")
    n = int(dup.sum())
    if not n:
        return
    first = ids[dup].iloc[0]
    where = ", ".join(map(str, paths[:3])) + (" ..." if len(paths) > 3 else "")
    msg = (f"{n} texts row(s) in {where} repeat a tweet id already seen (first: {first!r}, column "
           f"{cfg.text_id_col or cfg.item_col!r}); the first text of each id is kept")
    if cfg.strict:
        raise InputError(msg + "; --strict makes dropped rows fatal")
    log.warning("%s", msg)


def check_time_magnitude(top: int, cfg: BuildConfig) -> None:
    """Warn when the largest |seconds| read, ``top``, is implausible (past the year 5138): epoch
    milliseconds, microseconds or nanoseconds read as seconds would silently stretch every time
    window (the co-engagement window, for one) by 1,000x or more. --strict makes it an error."""
    if not cfg.time_col or top < IMPLAUSIBLE_SECONDS:
        return
    raw = top * _UNIT_DIV[cfg.time_unit]  # the magnitude as written in the log
    guess = "ns" if raw >= 10 ** 17 else "us" if raw >= 10 ** 14 else "ms"
    msg = (f"timestamps in column {cfg.time_col!r} reach {top:,} s after 1970 (read as {_UNIT_NAMES[cfg.time_unit]}), "
           f"past the year 5138: they look like {_UNIT_NAMES[guess]}; pass --time-unit {guess} (or time_unit: {guess} "
           "in the config)")
    if cfg.strict:
        raise InputError(msg + "; --strict makes this an error")
    log.warning("%s", msg)


_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def _build_graph(cfg: BuildConfig, out: str | os.PathLike | None) -> GraphArtifact:
    from graph.writer import write_graph

    t0 = time.perf_counter()
    out = out or cfg.out
    if not out:
        raise InputError("no output directory given (--out)")
    cfg = cfg.updated(out=str(out))
    cfg.validate()
    log_paths = ingest.expand_paths(cfg.log, "log")
    text_paths = ingest.expand_paths(cfg.texts, "texts") if cfg.texts else []
    check_output(out, KIND, "a graph artifact", overwrite=cfg.overwrite, inputs=log_paths + text_paths)
    for p in text_paths:  # check texts headers before the long part
        fmt = ingest.detect_format(p, cfg.texts_format)
        ingest.require_columns(p, ingest.read_header(p, fmt, cfg.encoding), _texts_required(cfg))

    import threading

    # meanwhile, in the background: load the writer's Numba kernels. (The build never imports
    # dgl or torch: graph.dgl is written by graph.dglfile.)
    threading.Thread(target=_warm_up, daemon=True).start()
    inputs = _fingerprints(log_paths, "log") + _fingerprints(text_paths, "texts")
    data = read_logs(cfg, log_paths)
    release_free_memory()
    t_read = time.perf_counter()
    if len(data["users"]) == 0:
        reasons = ", ".join(f"{k}={v}" for k, v in data["dropped"].items() if v) or "none"
        raise InputError(
            f"no edges to build a graph from: {data['rows_read']} rows read from {len(log_paths)} file(s), "
            f"all dropped (dropped: {reasons})" if data["rows_read"] else
            f"no edges to build a graph from: the log file(s) {', '.join(map(str, log_paths))} have no data rows"
        )
    check_time_magnitude(int(np.abs(data["times"]).max()), cfg)  # (not empty: checked above)
    texts = read_texts(cfg, text_paths) if text_paths else None
    if texts is not None:
        _check_duplicate_texts(texts, text_paths, cfg)
    t_texts = time.perf_counter()
    total_dropped = sum(data["dropped"].values())
    if total_dropped:
        log.warning("dropped %d of %d rows: %s", total_dropped, data["rows_read"],
                    ", ".join(f"{k}={v}" for k, v in data["dropped"].items() if v))
    extra = {
        "rows_read": int(data["rows_read"]),
        "inputs": inputs,
        "config": cfg.to_dict(),
        "timing": {"read_s": round(t_read - t0, 3), "texts_s": round(t_texts - t_read, 3)},
    }
    heldout = None
    if cfg.holdout > 0:
        data, texts, heldout = split_heldout(data, texts, cfg)
    # pop the edge arrays: write_graph frees them once grouped by user (peak memory)
    artifact = write_graph(
        out,
        heldout=heldout,
        user_ids=data["user_ids"], tweet_ids=data["tweet_ids"],
        users=data.pop("users"), tweets=data.pop("tweets"), etypes=data.pop("etypes"), times=data.pop("times"),
        relations=data["relations"], type_weights=data["type_weights"],
        texts=texts, dropped=data["dropped"], extra=extra, write_dgl_binary=not cfg.no_dgl,
    )
    log.info("built %s in %.1f s (%d rows read)", out, time.perf_counter() - t0, data["rows_read"])
    return artifact
