"""Small helpers shared by benchmarks/bench_*.py: peak RSS, isolated runs, result files, tables.

Each contender of a benchmark runs in its own subprocess (``run_isolated``) so its peak RSS
is its own; the figures still come from one invocation of the benchmark, side by side.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

RESULTS = Path(__file__).resolve().parent / "results"
WORKER_TAG = "__BENCH_RESULT__ "


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far, in bytes (Linux ru_maxrss is KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def current_rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def emit(result: dict) -> None:
    """Print a worker's result for :func:`run_isolated` (adds peak RSS)."""
    result = dict(result)
    result.setdefault("peak_rss_bytes", peak_rss_bytes())
    print(WORKER_TAG + json.dumps(result), flush=True)


def run_isolated(argv: Sequence[str], timeout: float | None = None, env: dict | None = None) -> dict:
    """Run ``python argv...`` in a fresh process; return the dict it passed to :func:`emit`."""
    cmd = [sys.executable, *map(str, argv)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(WORKER_TAG):
            out = json.loads(line[len(WORKER_TAG):])
            out["process_wall_s"] = wall
            return out
    raise RuntimeError(f"benchmark worker printed no result: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def machine_info() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        info["load_avg_1m"] = os.getloadavg()[0]
    except OSError:
        pass
    try:
        import psutil

        info["memory_bytes"] = int(psutil.virtual_memory().total)
    except ImportError:
        pass
    return info


def write_result(name: str, obj: Any, directory: Path | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically."""
    from coengage.artifacts import write_json

    path = Path(directory or RESULTS) / f"{name}.json"
    write_json(path, obj)
    return path


def format_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A plain fixed-width table of ``rows`` (dicts) over ``columns``."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
