"""benchmarks/bench_lm.py's command line: a quick CPU run, and a section kept from an earlier file.

Asserts the shape of lm.json and the merge rules, not speed (figures live in the benchmark)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_lm.py"


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_no_cpu_without_cuda_and_nothing_to_measure_are_refused(tmp_path):
    for args in (["--no-cpu", "--no-gpu"], ["--no-cpu"]):
        proc = _run(*args, "--out", str(tmp_path / "lm.json"), timeout=120)
        assert proc.returncode == 2 and "--no-cpu" in proc.stderr
        assert not (tmp_path / "lm.json").exists()


@pytest.mark.slow
def test_quick_cpu_run_keeps_an_earlier_gpu_section(tmp_path):
    out = tmp_path / "lm.json"
    earlier_gpu = {"device": "cuda", "gpu_name": "an earlier GPU run", "mfu": 0.1}
    out.write_text(json.dumps({"benchmark": "lm", "cpu": None, "gpu": earlier_gpu}))
    proc = _run("--quick", "--no-gpu", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["gpu"] == earlier_gpu  # --no-gpu keeps what the file had
    cpu = res["cpu"]
    assert cpu["device"] == "cpu" and cpu["ours"]["steps"] == 4 and cpu["baseline"]["steps"] == 4
    assert cpu["ours"]["real_tokens"] > 0 and cpu["ours"]["tokens_per_s"] > 0
    assert res["tokens_per_s"] == cpu["ours"]["tokens_per_s"] and res["quick"] is True
