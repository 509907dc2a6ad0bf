"""Readers for engagement logs and texts tables: CSV, TSV, Parquet and JSONL, optionally gzipped.

Everything here streams: :func:`iter_chunks` yields ``pyarrow.Table`` chunks of at most about
``chunk_rows`` rows with only the requested columns, so a multi-GB log never has to fit in
memory as strings. Before a file is read its header is checked (:func:`require_columns`): a
missing column is an :class:`~coengage.errors.InputError` naming the file, the column and the
columns that are present. Undecodable bytes are reported with the file and line
(:func:`find_undecodable`).

Formats are recognised from the file name (``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``,
``.jsonl``/``.ndjson``/``.json``, each optionally ending in ``.gz``) unless given explicitly.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import logging
import os
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow as pa

from coengage.errors import InputError

log = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_SUFFIXES = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}
# CSV/JSONL bytes per block handed to the parser; chunk_rows is converted with this estimate.
_BYTES_PER_ROW_ESTIMATE = 48


def expand_paths(patterns: Sequence[str | os.PathLike], what: str = "input") -> list[Path]:
    """Expand files and glob patterns (sorted per pattern, duplicates removed, order kept)."""
    out: list[Path] = []
    seen = set()
    for pattern in patterns:
        pattern = str(pattern)
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise InputError(f"{what} pattern {pattern!r} matches no files")
        else:
            if not os.path.exists(pattern):
                raise InputError(f"{what} file {pattern} does not exist")
            matches = [pattern]
        for m in matches:
            p = Path(m)
            if p.is_dir():
                raise InputError(f"{what} {p} is a directory; give files or a glob such as '{p}/*.parquet'")
            key = os.path.realpath(p)
            if key not in seen:
                seen.add(key)
                out.append(p)
    if not out:
        raise InputError(f"no {what} files given")
    return out


def is_gzip(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(".gz")


def detect_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The file's format: ``fmt`` when given (not 'auto'), else from its name."""
    if fmt and fmt != "auto":
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    name = str(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = os.path.splitext(name)[1]
    if suffix not in _SUFFIXES:
        raise InputError(
            f"{path}: cannot tell the format from the name; expected one of "
            f"{', '.join(sorted(_SUFFIXES))} (optionally .gz), or pass --format"
        )
    return _SUFFIXES[suffix]


def _open_text_bytes(path: Path):
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def _arrow_stream(path: Path):
    """A pyarrow input stream that decompresses .gz transparently."""
    return pa.input_stream(str(path), compression="gzip" if is_gzip(path) else None)


def find_undecodable(path: str | os.PathLike, encoding: str = "utf-8") -> tuple[int, int] | None:
    """(line, byte column), both 1-based, of the first bytes that do not decode, or None."""
    path = Path(path)
    import codecs

    decoder_cls = codecs.getincrementaldecoder(encoding)
    with _open_text_bytes(path) as f:
        for lineno, line in enumerate(f, start=1):
            try:
                decoder_cls().decode(line, final=True)
            except UnicodeDecodeError as e:
                return lineno, e.start + 1
    return None


def undecodable_error(path: Path, encoding: str, cause: Exception | None = None) -> InputError:
    where = find_undecodable(path, encoding)
    if where is None:
        return InputError(f"{path}: cannot decode the file as {encoding} ({cause})")
    line, col = where
    return InputError(
        f"{path}: line {line}, byte {col}: undecodable bytes (not valid {encoding}); "
        "fix or re-encode the file, or pass --encoding"
    )


def _looks_like_encoding_error(e: Exception) -> bool:
    msg = str(e).lower()
    return "utf8" in msg or "utf-8" in msg or "unicode" in msg or isinstance(e, UnicodeDecodeError)


def read_header(path: str | os.PathLike, fmt: str, encoding: str = "utf-8") -> list[str]:
    """The column names of a file, reading as little of it as possible."""
    path = Path(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            if is_gzip(path):
                raise InputError(f"{path}: gzipped Parquet is not supported (Parquet compresses internally)")
            return list(pq.read_schema(path).names)
        with _open_text_bytes(path) as f:
            if fmt in ("csv", "tsv"):
                first = f.readline()
                if not first:
                    raise InputError(f"{path}: empty file (no header line)")
                try:
                    text = first.decode(encoding)
                except UnicodeDecodeError as e:
                    raise InputError(f"{path}: line 1, byte {e.start + 1}: undecodable bytes in the header "
                                     f"(not valid {encoding})") from None
                import csv

                row = next(csv.reader([text.rstrip("\r\n")], delimiter="," if fmt == "csv" else "\t"))
                return [c.strip() for c in row]
            # JSONL: the union of keys over the first few records
            keys: dict[str, None] = {}
            for lineno, line in enumerate(f, start=1):
                if lineno > 100:
                    break
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line.decode(encoding))
                except UnicodeDecodeError as e:
                    raise InputError(f"{path}: line {lineno}, byte {e.start + 1}: undecodable bytes "
                                     f"(not valid {encoding})") from None
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}: line {lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(rec, dict):
                    raise InputError(f"{path}: line {lineno}: expected a JSON object per line")
                keys.update(dict.fromkeys(rec))
            return list(keys)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise InputError(f"{path}: cannot read ({e})") from None


def require_columns(path: str | os.PathLike, present: Sequence[str], required) -> None:
    """Raise naming the file and the missing column(s) unless every ``required`` column is present.

    ``required`` maps a role ('user', 'tweet', ...) to the configured column name, or is a
    sequence of (role, column) pairs.
    """
    pairs = list(required.items()) if isinstance(required, dict) else list(required)
    missing = [(role, col) for role, col in pairs if col not in present]
    if missing:
        what = ", ".join(f"{col!r} ({role} column)" for role, col in missing)
        flags = ", ".join(dict.fromkeys(f"--{_ROLE_FLAGS.get(role, role)}" for role, _ in missing))
        raise InputError(
            f"{path}: missing required column {what}; columns present: {list(present)}. "
            f"Name the right column with {flags} (or in the --config YAML){_separator_hint(path, present)}"
        )


def _separator_hint(path, present: Sequence[str]) -> str:
    """A header read as one column that holds another separator: say so (a ';'-separated .csv)."""
    if len(present) != 1:
        return ""
    for sep, name in ((";", "';'"), ("|", "'|'"), ("\t", "tab"), (",", "','")):
        if sep in str(present[0]):
            read_as = "tab" if str(path).lower().removesuffix(".gz").endswith(".tsv") else "','"
            return (f". The header looks {name}-separated, but the file was read as {read_as}-separated (.csv: ',', "
                    f".tsv: tab, or --log-format/--texts-format); convert it to one of those")
    return ""


_ROLE_FLAGS = {"user": "user-col", "tweet": "item-col", "type": "type-col", "time": "time-col",
               "text id": "text-id-col", "text": "text-cols", "label": "label-cols"}


def _csv_reader(path: Path, fmt: str, columns: Sequence[str], column_types: dict, chunk_rows: int, encoding: str):
    import pyarrow.csv as pcsv

    read_opts = pcsv.ReadOptions(block_size=max(1 << 16, int(chunk_rows) * _BYTES_PER_ROW_ESTIMATE),
                                 encoding=encoding, use_threads=True)
    parse_opts = pcsv.ParseOptions(delimiter="," if fmt == "csv" else "\t", newlines_in_values=False)
    convert_opts = pcsv.ConvertOptions(include_columns=list(columns), column_types=column_types,
                                       strings_can_be_null=False, quoted_strings_can_be_null=False)
    return pcsv.open_csv(_arrow_stream(path), read_options=read_opts, parse_options=parse_opts,
                         convert_options=convert_opts)


def _iter_jsonl(path: Path, columns: Sequence[str], chunk_rows: int, encoding: str) -> Iterator[pa.Table]:
    """Stream JSONL by cutting the byte stream at line ends into blocks pyarrow parses."""
    import pyarrow.json as pj

    block = max(1 << 16, int(chunk_rows) * _BYTES_PER_ROW_ESTIMATE * 4)
    parse = pj.ParseOptions(newlines_in_values=False, unexpected_field_behavior="infer")
    line0 = 1
    tail = b""
    with _open_text_bytes(path) as f:
        while True:
            data = f.read(block)
            buf = tail + data
            if not data:
                if not buf.strip():
                    break
                cut = len(buf)
            else:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:
                    tail = buf
                    continue
            piece, tail = buf[:cut], buf[cut:]
            try:  # pyarrow's JSON reader does not validate UTF-8: check the block here
                decoded = piece.decode(encoding)
            except UnicodeDecodeError as e:
                raise undecodable_error(path, encoding, e) from None
            if encoding.lower().replace("-", "").replace("_", "") != "utf8":
                piece = decoded.encode("utf-8")
            del decoded
            if piece.strip():
                try:
                    table = pj.read_json(io.BytesIO(piece), parse_options=parse)
                except pa.ArrowInvalid as e:
                    if _looks_like_encoding_error(e):
                        raise undecodable_error(path, encoding, e) from None
                    last = line0 + piece.count(b"\n")
                    raise InputError(f"{path}: bad JSON between lines {line0} and {last} ({e})") from None
                present = table.column_names
                for c in columns:
                    if c not in present:  # a key missing from a whole block: nulls
                        table = table.append_column(c, pa.nulls(table.num_rows))
                yield table.select(list(columns))
            line0 += piece.count(b"\n")
            if not data:
                break


def iter_chunks(
    path: str | os.PathLike,
    columns: Sequence[str],
    fmt: str | None = None,
    chunk_rows: int = 1 << 20,
    encoding: str = "utf-8",
    string_columns: Sequence[str] = (),
    dictionary_columns: Sequence[str] = (),
    prefer_dictionary: Sequence[str] = (),
) -> Iterator[pa.Table]:
    """Yield tables with exactly ``columns`` (in that order), a chunk at a time.

    For CSV/TSV, ``string_columns`` are read as strings (no type inference, so ids like
    ``007`` stay ids) and ``dictionary_columns`` as dictionary-encoded strings; Parquet and
    JSONL keep their stored types, except that the Parquet string columns among
    ``prefer_dictionary`` that the file stores dictionary-encoded (:func:`parquet_dictionary_columns`)
    come back as ``DictionaryArray`` (indices + the row group's dictionary), which is cheaper
    than decoding every row's string. Missing columns must have been checked with
    :func:`require_columns` first. Decoding problems raise :class:`InputError` with file and line.
    """
    path = Path(path)
    fmt = detect_format(path, fmt)
    columns = list(dict.fromkeys(columns))
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            read_dictionary = parquet_dictionary_columns(path, prefer_dictionary) if prefer_dictionary else []
            pf = pq.ParquetFile(path, read_dictionary=read_dictionary or None)
            for batch in pf.iter_batches(batch_size=int(chunk_rows), columns=columns, use_threads=True):
                yield pa.Table.from_batches([batch])
        elif fmt in ("csv", "tsv"):
            types = {c: pa.string() for c in string_columns if c in columns}
            types.update({c: pa.dictionary(pa.int32(), pa.string()) for c in dictionary_columns if c in columns})
            reader = _csv_reader(path, fmt, columns, types, chunk_rows, encoding)
            for batch in reader:
                yield pa.Table.from_batches([batch]).select(columns)
        else:
            yield from _iter_jsonl(path, columns, chunk_rows, encoding)
    except InputError:
        raise
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        if _looks_like_encoding_error(e):
            raise undecodable_error(path, encoding, e) from None
        raise InputError(f"{path}: cannot parse as {fmt} ({e})") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise InputError(f"{path}: cannot read ({e})") from None


# A column chunk whose bytes are under this share of the plain-encoded estimate is taken to
# be dictionary-encoded throughout (writers fall back to plain pages once the dictionary
# page is full, e.g. pyarrow at 1 MiB: such chunks are about as big as the plain estimate).
_DICTIONARY_SHARE = 0.35


def parquet_dictionary_columns(path: str | os.PathLike, candidates: Sequence[str]) -> list[str]:
    """The string columns among ``candidates`` worth reading as dictionaries from a Parquet file.

    A column qualifies when every row group stores it with a dictionary page and its size is
    well under (``_DICTIONARY_SHARE``) what plain strings would take (rows x (4 + typical length from the min/max
    statistics)): then almost every data page holds dictionary indices, and reading the
    indices skips both decoding each row's string and hashing it. Otherwise (high-cardinality
    ids that overflowed the dictionary page) reading as a dictionary would make pyarrow hash
    the plain pages itself, which is slower than decoding them.
    """
    import pyarrow.parquet as pq

    md = pq.read_metadata(path)
    names = [md.schema.column(i).path for i in range(md.num_columns)]
    out = []
    for c in candidates:
        if c not in names or md.num_row_groups == 0:
            continue
        j = names.index(c)
        if md.schema.column(j).physical_type != "BYTE_ARRAY":
            continue
        ok, stored, plain = True, 0, 0.0
        for g in range(md.num_row_groups):
            cc = md.row_group(g).column(j)
            if cc.num_values == 0:
                continue
            if not cc.has_dictionary_page:
                ok = False
                break
            length = 8.0
            st = cc.statistics
            if st is not None and st.has_min_max:
                try:
                    length = (len(st.min) + len(st.max)) / 2
                except TypeError:
                    pass
            stored += cc.total_uncompressed_size
            plain += cc.num_values * (4 + length)
        ok = ok and stored <= _DICTIONARY_SHARE * plain
        if ok:
            out.append(c)
    return out


def read_table(path: str | os.PathLike, columns: Sequence[str], fmt: str | None = None,
               encoding: str = "utf-8", string_columns: Sequence[str] = ()) -> pa.Table:
    """The whole file (only ``columns``) as one table; for texts tables, not for logs."""
    chunks = list(iter_chunks(path, columns, fmt=fmt, encoding=encoding, string_columns=string_columns))
    if not chunks:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    try:
        return pa.concat_tables(chunks, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InputError(f"{path}: columns change type between parts of the file ({e})") from None


def file_rows_hint(path: Path, fmt: str) -> int | None:
    """Number of rows when cheaply known (Parquet metadata), else None."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return None
