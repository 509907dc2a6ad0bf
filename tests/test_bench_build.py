"""Smoke run of benchmarks/bench_build.py on a tiny log: the repeated runs and their median.

Asserts the shape of build.json, not speed (speed targets live in the benchmark's own output).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_build.py"


@pytest.mark.slow
def test_repeated_runs_report_the_median_run_and_the_worst_peak(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH), "--rows", "20000", "--repeat", "3", "--no-naive",
                           "--formats", "parquet", "--results", str(tmp_path / "res"), "--data-dir", str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    res = json.loads((tmp_path / "res" / "build.json").read_text())
    for name in ("raw", "ours"):
        rec = res["detail"]["parquet"][name]
        walls = sorted(r["wall_s"] for r in rec["runs"])
        assert len(walls) == 3 and walls[0] > 0
        assert rec["wall_s"] == walls[1]  # the median run
        assert rec["peak_rss_bytes"] == max(r["peak_rss_bytes"] for r in rec["runs"])
    ours = res["detail"]["parquet"]["ours"]
    assert res["wall_s"] == ours["wall_s"] and res["rows_per_s"] == pytest.approx(ours["rows"] / ours["wall_s"])
    assert ours["edges"] > 0 and ours["final_array_bytes"] > 0
    assert res["peak_rss_over_final_arrays"] == pytest.approx(ours["peak_rss_bytes"] / ours["final_array_bytes"])
    assert {r["contender"] for r in res["table"]} == {"raw", "ours"}
