"""report.html: self-contained (inline PNGs and CSS, no external URL), every section present,
and it renders in headless Chromium (skipped only when no Chromium is installed)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import pytest

from coengage.report import eval_table, format_table
from coengage.run import run, validate
from tests.run_helpers import tiny

pytestmark = pytest.mark.slow

QUICK_EVAL = {"seeds": 1, "max_steps": 20, "eval_every": 10, "candidates": 50, "tasks": ["engagement", "classify", "pairs"],
              "baselines": ["random"]}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("report") / "run"
    run(validate(tiny(eval=QUICK_EVAL, report={"samples": 3})), d)
    return d


def test_report_is_self_contained_with_every_section(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    for anchor in ("id='eval'", "id='graph'", "id='pairs'", "id='embed'", "id='train'", "id='stages'"):
        assert anchor in page
    for text in ("Degrees (distinct edges per node)", "Sample pairs, side by side", "tweet A", "tweet B",
                 "Held-out edges ranked against", "median tokens/s", "engagement HITS@10", "classify macro-F1"):
        assert text in page, text
    # no external resource: every src/href is a data: URI or an in-page anchor
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page)
    assert refs and all(r.startswith("data:") or r.startswith("#") for r in refs), [r[:40] for r in refs]
    # (tweet texts may mention URLs as text; no element or style loads anything)
    assert "url(" not in page and "@import" not in page and "<link" not in page and "<script" not in page
    assert "<iframe" not in page and "<object" not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # degree plot, 3 pair plots, embedding curves, training curves
    assert len(images) >= 6
    for b64 in images:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_table_rows_follow_the_config(run_dir):
    rows = eval_table(run_dir)
    assert list(rows) == ["social", "mlm", "random"]
    for r in rows.values():
        assert 0.0 <= r["hits@10"] <= 1.0 and 0.0 <= r["macro_f1"] <= 1.0 and r["seeds"] == 1
    text = format_table(rows)
    assert text.splitlines()[0].split()[:3] == ["model", "engagement", "HITS@10"]
    assert [line.split()[0] for line in text.splitlines()[2:5]] == ["social", "mlm", "random"]
    # the note under the table says how many candidates each query really ranked, and chance
    r = rows["social"]
    assert 1 < r["mean_candidates"] <= 50 and r["chance_hits@10"] == pytest.approx(min(1, 10 / r["mean_candidates"]), rel=0.2)
    assert f"here {r['mean_candidates']:,.0f} on average" in text


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    url = (run_dir / "report.html").resolve().as_uri()
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # the DOM Chromium built has the evaluation table with one row per model, and the plots
    table = re.search(r'<table id="eval-table">(.*?)</table>', dom.stdout, re.S)
    assert table, dom.stdout[:2000]
    assert all(f"<td>{m}</td>" in table.group(1) for m in ("social", "mlm", "random"))
    assert dom.stdout.count("<img") >= 6
    shot = tmp_path / "shot.png"
    r = subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,2000", url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, r.stderr[-2000:]
