"""`coengage demo` (what `make demo` runs) prints the final table; re-running it reuses every stage."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def demo(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coengage", "-q", "demo", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_make_demo_runs_coengage_demo():
    assert re.search(r"^demo:.*\n\t\$\(BIN\)/coengage demo\b", (ROOT / "Makefile").read_text(), re.M)


def test_demo_prints_the_final_table_and_caches(tmp_path):
    first = demo(tmp_path / "d")
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("model"))
    assert "engagement HITS@10" in lines[head] and "engagement MRR" in lines[head] and "classify macro-F1" in lines[head]
    rows = {line.split()[0]: line.split()[1:] for line in lines[head + 2:head + 4]}
    assert set(rows) == {"social", "mlm"}
    for values in rows.values():
        hits, mrr, f1 = map(float, values[:3])
        assert 0 <= mrr <= hits <= 1 and 0 <= f1 <= 1
    assert (tmp_path / "d" / "report.html").stat().st_size > 10_000
    assert re.search(r"^(synth|build|embed|train\.social)\s+ran\b", first.stdout, re.M)

    second = demo(tmp_path / "d")
    assert second.returncode == 0, second.stderr[-3000:]
    stages = [line.split() for line in second.stdout.splitlines() if re.match(r"^(synth|build|stats|embed|mine|train\.\S+|eval\.\S+|report)\s", line)]
    assert len(stages) == 10 and all(s[1] == "skipped" for s in stages), stages
    # the same table again, read from the cached metrics
    assert [line for line in second.stdout.splitlines() if line.startswith(("social", "mlm"))] == \
           [line for line in first.stdout.splitlines() if line.startswith(("social", "mlm"))]
