"""Artifact directories: atomic writes, manifests and fingerprints.

Every stage writes a directory (or a file) that later stages read. The rules:

* writes are atomic: build into ``<target>.tmp-<pid>`` next to the target and rename
  when complete, so a crash leaves the old artifact or none, never half of one;
* every artifact directory has ``manifest.json`` with at least ``kind``,
  ``schema_version`` and ``fingerprint``; a later stage records the fingerprints of
  its inputs and refuses inputs whose fingerprint does not match.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

from coengage.errors import ArtifactError

MANIFEST = "manifest.json"


def _tmp_sibling(target: Path) -> Path:
    return target.with_name(f"{target.name}.tmp-{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _target_path(target: str | os.PathLike) -> Path:
    """``target`` as an absolute path (``.`` has no name to put a temporary beside); the current
    directory, or one holding it, is never replaced (``--out .`` would delete what the user is in)."""
    path = Path(target).absolute()
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current directory was removed: nothing to protect
        return path
    real = path.resolve()
    if real == cwd or real in cwd.parents:
        raise ArtifactError(f"--out {target} is the current directory or holds it; it would be replaced as a whole: "
                            "choose a new directory")
    return path


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``target`` in one rename.

    On any exception the temporary directory is removed and ``target`` is untouched.
    """
    target = _target_path(target)
    if target.exists() and not overwrite:
        raise ArtifactError(f"{target} exists; pass --overwrite or choose another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(target)
    _remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish(tmp, target)


def _publish(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` over ``target``; unless both are files, an existing target is moved aside
    first and removed after. If that fails, ``target`` is put back and ``tmp`` removed."""
    old = None
    try:
        if (target.exists() or target.is_symlink()) and (tmp.is_dir() or (target.is_dir() and not target.is_symlink())):
            old = target.with_name(f"{target.name}.old-{os.getpid()}")
            _remove(old)
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        if old is not None and old.exists() and not target.exists():  # (moved aside, not yet replaced)
            os.replace(old, target)
        with contextlib.suppress(FileNotFoundError):
            _remove(tmp)
        raise
    if old is not None:
        _remove(old)


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, replace_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; rename it over ``target`` on success.

    A directory at ``target`` is an error unless ``replace_dir`` (for callers that checked it is
    their own earlier output, e.g. partitioned pairs replaced by a single pair file)."""
    target = _target_path(target)
    if target.is_dir() and not target.is_symlink() and not replace_dir:
        raise ArtifactError(f"{target} is a directory; expected a file path here")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(target)
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            _remove(tmp)
        raise
    _publish(tmp, target)  # (a directory target only with replace_dir, checked above)


def json_kind(path: str | os.PathLike) -> str | None:
    """The ``kind`` of a JSON file (a manifest, a metrics file), or None (absent, unreadable, other)."""
    try:
        return json.loads(Path(path).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def check_not_input(out: str | os.PathLike, inputs) -> None:
    """An output that is, or contains, one of the command's inputs (files, directories, globs;
    None entries are skipped) is an error: replacing it would delete that input."""
    out = Path(out)
    target = out.resolve()
    for inp in inputs:
        if inp is None or str(inp) == "":
            continue
        p = Path(inp).resolve()
        if p == target or target in p.parents:
            raise ArtifactError(f"--out {out} would replace the input {inp}"
                                f"{'' if p == target else ' (it lies inside)'}; choose another --out")


def check_output(out: str | os.PathLike, kind: str, what: str, *, overwrite: bool = False, inputs=(),
                 sidecar: bool = False, recognise=None, overwrite_flag: str | None = "--overwrite") -> None:
    """Refuse an output path whose replacement could lose something; call it before the long work.

    * ``out`` may never be one of the command's ``inputs`` or contain one (replacing it would
      delete the input), ``overwrite`` or not (:func:`check_not_input`);
    * an existing ``out`` is replaced only when it is an earlier output of the same kind (a
      directory whose ``manifest.json`` says ``kind``; with ``sidecar``, a file or directory with
      ``OUT.manifest.json`` of that kind beside it, as pair files have), an empty directory, one
      that ``recognise(out)`` accepts (outputs that carry no manifest), or when ``overwrite``.
    ``what`` names the expected output in the message ("an EMB_DIR", "a pair file");
    ``overwrite_flag``: the command's flag for ``overwrite`` (None: it has none).
    """
    out = Path(out)
    check_not_input(out, inputs)
    if overwrite or not (out.exists() or out.is_symlink()):
        return
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        return
    if recognise is not None and recognise(out):
        return
    if sidecar:
        if json_kind(out.with_name(out.name + ".manifest.json")) == kind:
            return
    elif out.is_dir() and json_kind(out / MANIFEST) == kind:
        return
    hint = f"pass {overwrite_flag} to replace it, or choose another --out" if overwrite_flag else "choose another --out"
    raise ArtifactError(f"{out} exists and is not {what}; {hint}")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (pretty, sorted keys, trailing newline)."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_manifest(directory: str | os.PathLike, kind: str | None = None) -> dict:
    """Read ``directory/manifest.json``; check its ``kind`` when given."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.exists():
        raise ArtifactError(f"{directory}: no such directory")
    if not path.exists():
        raise ArtifactError(f"{directory}: not a coengage artifact (no {MANIFEST})")
    return load_manifest_file(path, kind, where=directory)


def load_manifest_file(path: str | os.PathLike, kind: str | None = None, where: Any = None) -> dict:
    """Parse a manifest file; a corrupt one, or one of another ``kind``, is an ArtifactError
    naming ``where`` (default: the file)."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path}: corrupt manifest ({e})") from e
    if kind is not None and manifest.get("kind") != kind:
        raise ArtifactError(f"{where or path}: expected a {kind!r} artifact, found {manifest.get('kind')!r}")
    return manifest


def file_fingerprint(path: str | os.PathLike, full: bool = False) -> str:
    """A cheap content fingerprint: size, plus a hash of the head and tail (or all bytes).

    Hashing 1 MiB from each end catches edits, truncation and appends without reading
    a multi-GB log twice; ``full=True`` hashes everything.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if full or size <= 2 << 20:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f.read(1 << 20))
            f.seek(size - (1 << 20))
            h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def parts_fingerprint(directory: str | os.PathLike, parts: list[str] | None = None) -> str:
    """The fingerprint of a directory of Parquet part files (e.g. partitioned pairs), by name.

    ``parts`` (names from the manifest) must all exist; without it, every ``*.parquet`` in the
    directory counts, so a part added or removed afterwards changes the fingerprint.
    """
    directory = Path(directory)
    names = sorted(p.name for p in directory.glob("*.parquet")) if parts is None else sorted(parts)
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise ArtifactError(f"{directory}: part file(s) listed in its manifest are missing: {', '.join(missing[:5])}"
                            f"{' ...' if len(missing) > 5 else ''}")
    return combine_fingerprints([[n, file_fingerprint(directory / n)] for n in names])


def combine_fingerprints(*parts: Any) -> str:
    """A stable fingerprint of JSON-serialisable parts (configs, other fingerprints)."""
    blob = json.dumps(parts, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None):
    """A Parquet file (or a directory of parts) as a pandas DataFrame, like ``pandas.read_parquet``.

    pyarrow is handed the path, not a file object: pandas opens local files as Python file
    objects, pyarrow then pre-buffers column chunks on its I/O threads through that object, and a
    process that has also loaded torch aborts at exit now and then ("terminate called without an
    active exception", SIGABRT; 7 of 20 runs of a reader under CPU load, 0 of 20 reading the path).
    """
    import pyarrow.parquet as pq

    return pq.read_table(str(path), columns=columns, use_pandas_metadata=True).to_pandas()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
