"""Smoke run of benchmarks/bench_scale.py --quick: real subprocess stages on tiny synthetic logs.

Asserts the shape of scale.json (sizes, stages, commands, machine state) and that every
measured figure is positive; a stage killed by --max-stage-s is recorded as not measured with
its reason, never with a figure.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_scale.py"


def _run(*args, timeout=240):
    proc = subprocess.run([sys.executable, str(BENCH), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_quick_run_writes_positive_figures_per_stage_and_size(tmp_path):
    out, png, data = tmp_path / "scale.json", tmp_path / "scale.png", tmp_path / "data"
    common = ("--data-dir", data, "--out", out, "--plot", png)
    _run("--quick", "--sizes", "3e3,1e4", "--stages", "build,coengage", *common)
    # a later run of another stage merges into the same file (as the 100M stages are run one by one)
    _run("--quick", "--sizes", "1e4", "--stages", "embed,knn", "--embed-steps", "2", *common)
    res = json.loads(out.read_text())
    assert res["benchmark"] == "scale"
    assert res["machine"]["cpus"] >= 1
    assert len(res["runs"]) == 2
    assert res["runs"][0]["command"].startswith(".venv/bin/python benchmarks/bench_scale.py --quick")
    assert len(res["runs"][0]["start"]["load_avg"]) == 3 and res["runs"][0]["start"]["uptime_s"] > 0
    assert set(res["sizes"]) == {"3e3", "1e4"}
    for label, size in res["sizes"].items():
        assert size["edges"] > 0 and size["users"] > 0 and size["tweets"] > 0
        for stage, rec in size["stages"].items():
            assert rec["status"] == "measured", (label, stage, rec.get("reason"))
            assert rec["wall_s"] > 0 and rec["peak_rss_bytes"] > 0 and rec["cpu_s"] > 0
            assert rec["command"] and rec["machine_before"]["load_avg"]
        assert size["stages"]["build"]["rows_per_s"] > 0
        assert size["stages"]["build"]["csr_bytes"] > 0
        assert size["stages"]["coengage"]["edges_per_s"] > 0
        assert size["stages"]["coengage"]["pairs"]["written"] > 0
    assert set(res["sizes"]["1e4"]["stages"]) == {"build", "coengage", "embed", "knn"}
    emb = res["sizes"]["1e4"]["stages"]["embed"]["embed"]
    assert emb["steps"] == 2 and emb["edges_per_s"] > 0 and emb["finite"]
    # knn searched the embed stage's saved tables: one query per tweet of the graph
    knn = res["sizes"]["1e4"]["stages"]["knn"]
    assert knn["knn_info"]["searched"] == knn["tweets"] == res["sizes"]["1e4"]["tweets"]
    assert knn["tweets_per_s"] > 0 and knn["pairs"]["written"] > 0 and "--embeddings" in knn["command"]
    # the larger log has more edges, and the growth exponents are fitted from both sizes
    assert res["sizes"]["1e4"]["edges"] > res["sizes"]["3e3"]["edges"]
    for stage in ("build", "coengage"):
        f = res["fits"][stage]
        assert f["points"] == 2 and math.isfinite(f["time_exponent"]) and math.isfinite(f["memory_exponent"])
    assert res["fits"]["embed"]["points"] == 1 and res["fits"]["embed"]["time_exponent"] is None
    assert png.stat().st_size > 1000

    # a stage killed by the time limit is recorded as not measured, with the reason and no figure;
    # the other size's earlier measurement is kept
    _run("--sizes", "3e3", "--stages", "build", "--max-stage-s", "0.5", *common)
    res2 = json.loads(out.read_text())
    killed = res2["sizes"]["3e3"]["stages"]["build"]
    assert killed["status"] == "not_measured" and "killed after" in killed["reason"]
    assert "rows_per_s" not in killed
    assert res2["sizes"]["1e4"]["stages"]["build"]["status"] == "measured"
    assert len(res2["runs"]) == 3
