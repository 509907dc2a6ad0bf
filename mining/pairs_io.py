"""Pair files: write and read them, with their manifest.

A pair file has one row per unordered tweet pair: ``tweet_a``, ``tweet_b`` (the original
string tweet ids), ``score`` (float64), ``method`` (string), and with texts ``text_a``,
``text_b``. Formats: ``parquet`` (default), ``tsv`` (tab-separated with a header; fields
that contain tabs, newlines or quotes are double-quoted CSV-style), ``jsonl`` (one JSON
object per line). A ``.gz`` suffix on tsv/jsonl compresses.

Beside ``PATH`` sits ``PATH.manifest.json``: kind ``coengage.pairs``, schema_version,
graph_fingerprint, fingerprint (:func:`coengage.artifacts.file_fingerprint` of the pair
file), method, config, counts. The pair file is written atomically, then its manifest;
:func:`read_manifest` refuses a manifest whose fingerprint does not match the file.
``coengage mine --engine spark --spark-output partitioned`` writes a directory of Parquet part
files instead (manifest ``layout: partitioned``, ``parts``, fingerprint from
:func:`coengage.artifacts.parts_fingerprint`); :func:`read_manifest` and :func:`read_pairs` accept it too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from coengage.artifacts import (atomic_file, check_output, file_fingerprint, load_manifest_file, now_iso, parts_fingerprint, read_parquet,
                                write_json)
from coengage.errors import ArtifactError, InputError

KIND = "coengage.pairs"
SCHEMA_VERSION = 1
FORMATS = ("parquet", "tsv", "jsonl")
REQUIRED = ("tweet_a", "tweet_b", "score", "method")
TEXT_COLUMNS = ("text_a", "text_b")


def manifest_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".manifest.json")


def infer_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """``fmt`` if given, else from the file name (.parquet/.pq, .tsv[.gz], .jsonl[.gz]); parquet by default."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown pair file format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, f in ((".tsv", "tsv"), (".txt", "tsv"), (".jsonl", "jsonl"), (".json", "jsonl")):
        if name.endswith(ext):
            return f
    return "parquet"


def pairs_table(tweet_ids, a, b, score, method: str, text_of=None):
    """A pyarrow table of pairs: node ids ``a``/``b`` mapped to original ``tweet_ids``."""
    import pyarrow as pa

    tweet_ids = np.asarray(tweet_ids, dtype=object)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    cols = {
        "tweet_a": pa.array(tweet_ids[a].astype(str) if len(a) else [], pa.string()),
        "tweet_b": pa.array(tweet_ids[b].astype(str) if len(b) else [], pa.string()),
        "score": pa.array(np.asarray(score, dtype=np.float64), pa.float64()),
        "method": pa.array([method] * len(a), pa.string()),
    }
    if text_of is not None:
        text_of = np.asarray(text_of, dtype=object)
        cols["text_a"] = pa.array(list(text_of[a]), pa.string())
        cols["text_b"] = pa.array(list(text_of[b]), pa.string())
    return pa.table(cols)


def check_pairs_output(out: str | os.PathLike, overwrite: bool, inputs=()) -> None:
    """Refuse a pair-file path whose replacement could lose something (an earlier pair file, one
    with ``OUT.manifest.json`` of this kind beside it, is replaced; see
    :func:`coengage.artifacts.check_output`)."""
    check_output(out, KIND, "a pair file from `coengage mine`", overwrite=overwrite, inputs=inputs, sidecar=True)


def write_pairs(path: str | os.PathLike, table, *, fmt: str | None = None, manifest: dict | None = None) -> dict:
    """Write ``table`` (pyarrow Table or DataFrame) atomically, then its manifest; returns the manifest."""
    import pyarrow as pa

    path = Path(path)
    fmt = infer_format(path, fmt)
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ValueError(f"pair table lacks columns {missing}")
    gz = path.name.lower().endswith(".gz")
    with atomic_file(path, replace_dir=True) as tmp:  # (mine checked PATH with check_pairs_output)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        elif fmt == "tsv":
            import pyarrow.csv as pacsv

            with pa.CompressedOutputStream(str(tmp), "gzip") if gz else pa.OSFile(str(tmp), "wb") as sink:
                pacsv.write_csv(table, sink, pacsv.WriteOptions(delimiter="\t", quoting_style="needed"))
        else:
            import gzip

            names = table.column_names
            opener = gzip.open if gz else open
            with opener(tmp, "wt", encoding="utf-8") as f:
                for batch in table.to_batches(max_chunksize=65536):
                    columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                    # json.dumps writes floats with repr: they read back bit-identical
                    f.writelines(json.dumps(dict(zip(names, row)), ensure_ascii=False) + "\n" for row in zip(*columns))
    full = dict(manifest or {})
    full.update({"kind": KIND, "schema_version": SCHEMA_VERSION, "format": fmt, "rows": int(table.num_rows),
                 "columns": list(table.column_names), "fingerprint": file_fingerprint(path)})
    full.setdefault("created", now_iso())
    write_json(manifest_path(path), full)
    return full


def read_manifest(path: str | os.PathLike, check: bool = True) -> dict:
    """The manifest beside a pair file (or partitioned directory); with ``check``, its fingerprint must
    match what is on disk."""
    path = Path(path)
    mpath = manifest_path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such pair file")
    if not mpath.exists():
        raise ArtifactError(f"{path}: no manifest beside it ({mpath.name}); was it written by `coengage mine`?")
    manifest = load_manifest_file(mpath, KIND)
    partitioned = manifest.get("layout") == "partitioned" or path.is_dir()
    if partitioned and not path.is_dir():
        raise ArtifactError(f"{path}: the manifest describes a partitioned directory, but this is a file")
    if not check:
        return manifest
    if partitioned:
        on_disk = sorted(p.name for p in path.glob("*.parquet"))
        if on_disk != sorted(manifest.get("parts") or []):
            raise ArtifactError(f"{path}: its part files differ from those listed in {mpath.name}; re-run `coengage mine`")
        actual = parts_fingerprint(path, on_disk)
    else:
        actual = file_fingerprint(path)
    if manifest.get("fingerprint") != actual:
        raise ArtifactError(f"{path} changed after it was written (fingerprint differs from {mpath.name}); "
                            "re-run `coengage mine`")
    return manifest


def read_pairs(path: str | os.PathLike, fmt: str | None = None, columns: list[str] | None = None):
    """A pair file as a DataFrame (ids and texts as str, score float64); checks the columns."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such pair file")
    fmt = infer_format(path, fmt)
    strings = {c: str for c in ("tweet_a", "tweet_b", "method", "text_a", "text_b")}
    try:
        if fmt == "parquet":
            frame = read_parquet(path, columns=columns)
        elif fmt == "tsv":
            frame = pd.read_csv(path, sep="\t", dtype=strings, keep_default_na=False, usecols=columns)
        else:
            frame = pd.read_json(path, orient="records", lines=True, dtype=strings, precise_float=True)
            if frame.empty and not len(frame.columns):
                frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in REQUIRED})
            if columns is not None:
                frame = frame[columns]
    except (ValueError, OSError) as e:
        if isinstance(e, KeyError):
            raise
        raise InputError(f"{path}: cannot read as a {fmt} pair file ({e})") from e
    need = REQUIRED if columns is None else [c for c in REQUIRED if c in columns]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing pair file column(s) {', '.join(missing)}; expected {', '.join(REQUIRED)}")
    if "score" in frame.columns:
        frame["score"] = frame["score"].astype(np.float64)
    return frame
