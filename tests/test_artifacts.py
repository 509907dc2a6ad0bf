"""coengage.artifacts: atomic writes never leave half an artifact; manifests and fingerprints."""

from __future__ import annotations

import json

import pytest

from coengage.artifacts import (atomic_dir, atomic_file, combine_fingerprints, file_fingerprint,
                                read_manifest, write_json)
from coengage.errors import ArtifactError


def test_atomic_dir_publishes_only_on_success(tmp_path):
    target = tmp_path / "art"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["art"]


def test_atomic_dir_failure_keeps_old_artifact_and_leaves_no_temp(tmp_path):
    target = tmp_path / "art"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a.txt").write_text("new")
            raise RuntimeError("crash mid-build")
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["art"]


def test_atomic_dir_replaces_existing_and_refuses_without_overwrite(tmp_path):
    target = tmp_path / "art"
    for value in ("1", "2"):
        with atomic_dir(target) as tmp:
            (tmp / "v").write_text(value)
    assert (target / "v").read_text() == "2"
    with pytest.raises(ArtifactError, match="exists"):
        with atomic_dir(target, overwrite=False):
            pass


def test_atomic_file_failure_leaves_nothing(tmp_path):
    target = tmp_path / "pairs.parquet"
    with pytest.raises(ValueError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert list(tmp_path.iterdir()) == []
    with atomic_file(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"


def test_read_manifest_checks_kind_and_reports_problems(tmp_path):
    with pytest.raises(ArtifactError, match="no such directory"):
        read_manifest(tmp_path / "missing")
    with pytest.raises(ArtifactError, match="no manifest.json"):
        read_manifest(tmp_path)
    write_json(tmp_path / "manifest.json", {"kind": "coengage.graph", "n": 1})
    assert read_manifest(tmp_path, kind="coengage.graph")["n"] == 1
    with pytest.raises(ArtifactError, match="expected a 'coengage.pairs'"):
        read_manifest(tmp_path, kind="coengage.pairs")
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(ArtifactError, match="corrupt"):
        read_manifest(tmp_path)


def test_write_json_handles_numpy(tmp_path):
    np = pytest.importorskip("numpy")
    write_json(tmp_path / "x.json", {"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(2)})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 3, "b": 0.5, "c": [0, 1]}


def test_file_fingerprint_sees_edits_in_the_middle_of_small_files_and_ends_of_large(tmp_path):
    small = tmp_path / "s"
    small.write_bytes(b"a" * 1000)
    fp = file_fingerprint(small)
    small.write_bytes(b"a" * 500 + b"b" + b"a" * 499)
    assert file_fingerprint(small) != fp
    big = tmp_path / "b"
    data = bytearray(b"x" * (5 << 20))
    big.write_bytes(bytes(data))
    fp = file_fingerprint(big)
    data[-1:] = b"y"
    big.write_bytes(bytes(data))
    assert file_fingerprint(big) != fp
    assert file_fingerprint(big, full=True) != fp


def test_combine_fingerprints_is_order_sensitive_and_key_order_insensitive():
    assert combine_fingerprints({"a": 1, "b": 2}) == combine_fingerprints({"b": 2, "a": 1})
    assert combine_fingerprints("x", "y") != combine_fingerprints("y", "x")


def test_read_parquet_equals_pandas_for_files_parts_and_columns(tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from coengage.artifacts import read_parquet

    df = pd.DataFrame({"tweet_id": ["a", "b", None], "n": [1, 2, 3], "x": [0.5, None, 2.0]})
    df.to_parquet(tmp_path / "t.parquet", index=False)
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "t.parquet"), pd.read_parquet(tmp_path / "t.parquet"))
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "t.parquet", columns=["n"]),
                                  pd.read_parquet(tmp_path / "t.parquet", columns=["n"]))
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(2):  # a directory of parts, as Spark writes
        pq.write_table(pa.table({"tweet_a": [f"a{i}"], "score": [float(i)]}), parts / f"part-{i}.parquet")
    pd.testing.assert_frame_equal(read_parquet(parts), pd.read_parquet(parts))


def test_library_code_reads_parquet_through_the_path_not_a_python_file():
    """pandas.read_parquet hands pyarrow a Python file object; with torch loaded the process can
    abort at exit (SIGABRT) while pyarrow's I/O threads wind down. Library code uses
    coengage.artifacts.read_parquet instead."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = [f"{p.relative_to(root)}:{i}" for pkg in ("coengage", "graph", "mining", "lm")
                 for p in sorted((root / pkg).rglob("*.py"))
                 for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bread_parquet\(", line)
                 and "def read_parquet" not in line and not re.search(r"(?<![\w.])read_parquet\(", line)]
    assert not offenders, f"use coengage.artifacts.read_parquet, not pandas': {offenders}"


def test_check_not_input_refuses_an_output_that_is_or_holds_an_input(tmp_path):
    from coengage.artifacts import check_not_input

    g = tmp_path / "work" / "g"
    g.mkdir(parents=True)
    (tmp_path / "link").symlink_to(g)
    for out in (g, tmp_path / "work", tmp_path, tmp_path / "link", tmp_path / "work" / ".." / "work"):
        with pytest.raises(ArtifactError, match="would replace the input"):
            check_not_input(out, [None, g])
    check_not_input(tmp_path / "work" / "e", [g, None, ""])  # a sibling: fine
    check_not_input(g / "sub", [g])  # inside an input is not replacing it


def test_check_output_replaces_only_its_own_kind_unless_overwrite(tmp_path):
    from coengage.artifacts import check_output, write_json

    def check(path, **kw):
        check_output(path, "coengage.x", "an X", **kw)

    check(tmp_path / "new")  # absent
    (tmp_path / "empty").mkdir()
    check(tmp_path / "empty")
    ours = tmp_path / "ours"
    ours.mkdir()
    write_json(ours / "manifest.json", {"kind": "coengage.x"})
    check(ours)
    other = tmp_path / "other"
    other.mkdir()
    write_json(other / "manifest.json", {"kind": "coengage.graph"})
    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    for path in (other, notes):
        with pytest.raises(ArtifactError, match=r"is not an X; pass --overwrite"):
            check(path)
        check(path, overwrite=True)
        check(path, recognise=lambda p: True)
    # sidecar manifests (pair files): PATH.manifest.json of the kind beside PATH
    with pytest.raises(ArtifactError, match="is not an X"):
        check(notes, sidecar=True)
    write_json(tmp_path / "notes.txt.manifest.json", {"kind": "coengage.x"})
    check(notes, sidecar=True)
    with pytest.raises(ArtifactError, match="would replace the input"):
        check(ours, overwrite=True, inputs=[ours / "manifest.json"])
    assert notes.read_text() == "keep" and (other / "manifest.json").exists()


def test_atomic_file_refuses_to_replace_a_directory_unless_asked(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "precious").write_text("x")
    with pytest.raises(ArtifactError, match="is a directory"):
        with atomic_file(d) as tmp:
            tmp.write_text("new")
    assert (d / "precious").read_text() == "x"
    with atomic_file(d, replace_dir=True) as tmp:
        tmp.write_text("new")
    assert d.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["d"]


def test_a_failed_rename_puts_the_old_artifact_back_and_leaves_no_temp(tmp_path, monkeypatch):
    import os

    import coengage.artifacts as A

    target = tmp_path / "a"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real, calls = os.replace, []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the new directory onto the target, after the old one was moved aside
            raise OSError("disk on fire")
        return real(src, dst)

    monkeypatch.setattr(A.os, "replace", flaky)
    with pytest.raises(OSError, match="disk on fire"):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
    assert (target / "old.txt").read_text() == "old" and len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    monkeypatch.setattr(A.os, "replace", real)
    notes = tmp_path / "notes.txt"  # a directory artifact may replace a file (when the caller allows it)
    notes.write_text("x")
    with atomic_dir(notes) as tmp:
        (tmp / "f").write_text("y")
    assert (notes / "f").read_text() == "y" and sorted(p.name for p in tmp_path.iterdir()) == ["a", "notes.txt"]


def test_the_current_directory_or_one_holding_it_is_never_replaced(tmp_path, monkeypatch):
    work = tmp_path / "proj" / "sub"
    work.mkdir(parents=True)
    (work / "keep.txt").write_text("x")
    monkeypatch.chdir(work)
    for out in (".", "..", str(work), str(tmp_path)):
        with pytest.raises(ArtifactError, match="current directory or holds it"):
            with atomic_dir(out, overwrite=True) as tmp:
                (tmp / "f").write_text("y")
    assert (work / "keep.txt").read_text() == "x"
    with atomic_dir("out") as tmp:  # a new directory inside the current one: fine
        (tmp / "f").write_text("y")
    assert (work / "out" / "f").read_text() == "y"
