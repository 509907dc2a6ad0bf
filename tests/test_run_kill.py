"""coengage run killed (SIGKILL) during graph build, embedding, mining and LM training, then run
again: it finishes, leaves no temporary or half-written artifact, and every artifact equals the one
of an uninterrupted run (graph fingerprint, embedding arrays, pair rows, model tensors: exactly)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from coengage.run import run, validate
from tests.run_helpers import artifact_contents, assert_same_contents, tiny

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

# `coengage run` in a child process. COENGAGE_TEST_KILL_IN_WRITE=graph|pairs makes the graph's
# (or the pair file's) atomic write kill the process once the temporary directory (file) is
# complete and before the rename: the narrowest window, which polling from outside cannot hit
# reliably for a sub-second write.
DRIVER = """
import os, signal, sys, contextlib
where = os.environ.get("COENGAGE_TEST_KILL_IN_WRITE")
if where:
    module, name = {"graph": ("graph.writer", "atomic_dir"), "pairs": ("mining.pairs_io", "atomic_file")}[where]
    import importlib
    mod = importlib.import_module(module)
    real = getattr(mod, name)
    @contextlib.contextmanager
    def killing(target, *a, **k):
        with real(target, *a, **k) as tmp:
            yield tmp
            assert tmp.exists()
            os.kill(os.getpid(), signal.SIGKILL)
    setattr(mod, name, killing)
from coengage.cli import main
sys.exit(main(["-q", "run", "--config", sys.argv[1], "--out", sys.argv[2]]))
"""


def config() -> dict:
    raw = tiny()
    raw["embed"]["epochs"] = 3  # checkpoints after epochs 1 and 2: something to resume from
    return raw


def start(cfg_path: Path, run_dir: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(cfg_path), str(run_dir)], cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def kill_when(proc: subprocess.Popen, condition, what: str, timeout: float = 240) -> None:
    """SIGKILL ``proc`` as soon as ``condition()`` holds (polled every 10 ms)."""
    t0 = time.time()
    while not condition():
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace")
            pytest.fail(f"run ended (rc {proc.returncode}) before {what}:\n{out[-3000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]


def test_killed_runs_finish_with_identical_artifacts(tmp_path):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(config()))
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "killed"
    run(validate(config()), ref_dir)  # the uninterrupted run

    # 1. during graph build: the graph's temporary directory is complete, not yet renamed
    p = start(cfg_path, run_dir, {"COENGAGE_TEST_KILL_IN_WRITE": "graph"})
    p.wait(timeout=400)
    assert p.returncode == -signal.SIGKILL
    assert not (run_dir / "graph").exists() and list(run_dir.glob("graph.tmp-*"))
    # 2. during embedding: after the first epoch's checkpoint, before EMB_DIR is published
    p = start(cfg_path, run_dir)
    kill_when(p, lambda: (run_dir / "emb.checkpoint").exists(), "the first embedding checkpoint")
    assert not (run_dir / "emb").exists() and (run_dir / "graph" / "manifest.json").exists()
    # 3. during mining: the pair file's temporary file is complete, not yet renamed
    p = start(cfg_path, run_dir, {"COENGAGE_TEST_KILL_IN_WRITE": "pairs"})
    p.wait(timeout=400)
    assert p.returncode == -signal.SIGKILL
    assert not (run_dir / "pairs.parquet").exists() and list(run_dir.glob("pairs.parquet.tmp-*"))
    # 4. during LM training: a checkpoint of the first model exists, training goes on
    p = start(cfg_path, run_dir)
    work = run_dir / "models" / "social.work" / "checkpoints"
    kill_when(p, lambda: work.is_dir() and any(c.name.startswith("step-") for c in work.iterdir()),
              "the first LM checkpoint")
    assert not (run_dir / "models" / "social").exists()
    # run again: it finishes the work
    finish(start(cfg_path, run_dir))

    leftovers = [p for p in run_dir.rglob("*") if ".tmp-" in p.name or ".old-" in p.name or p.name.endswith(".work")
                 or p.name.endswith(".checkpoint")]
    assert leftovers == []
    assert_same_contents(artifact_contents(run_dir), artifact_contents(ref_dir))
    # and everything is now up to date
    again = start(cfg_path, run_dir)
    finish(again)
    records = sorted(p.name for p in (run_dir / ".stages").iterdir())
    assert records == sorted(f"{s}.json" for s in ("synth", "build", "stats", "embed", "mine", "train.social", "train.mlm"))
