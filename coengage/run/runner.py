"""Run the stages of a run config in order, skipping those whose inputs and config are unchanged.

For each stage the runner computes a fingerprint = combine_fingerprints(stage name, the
stage's config, the output fingerprints of the upstream stages it reads, the content
fingerprints of raw input files). When ``run_dir/.stages/STAGE.json`` records the same
fingerprint and the artifact on disk still has the output fingerprint recorded there
(every file's size and content hash), the stage is skipped. Otherwise its record is
deleted, the stage runs (its artifact is published atomically by the stage) and a new
record is written atomically afterwards. ``from_stage`` forces that stage and every later
one to run.

Killing a run at any moment is safe: an artifact is either the old complete one or a new
complete one (temporary siblings ``*.tmp-PID`` / ``*.old-PID`` of dead processes are
removed at the next start), and a stage without a matching record simply runs again.
Embedding and LM training resume from their checkpoints (``emb.checkpoint/``,
``models/NAME.work/``), which give the same result as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from coengage.artifacts import combine_fingerprints, file_fingerprint, now_iso, write_json
from coengage.errors import ArtifactError, InputError
from coengage.run.config import STAGE_ORDER, RunConfig
from coengage.run.stages import Context, Stage, output_fingerprint, plan

log = logging.getLogger(__name__)
STAGES_DIR = ".stages"
_TEMP = re.compile(r"\.(tmp|old)-(\d+)$")


@dataclass
class StageResult:
    name: str
    status: str  # "ran" | "skipped"
    seconds: float
    cpu_seconds: float
    fingerprint: str
    output: str


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(run_dir: Path) -> list[Path]:
    """Remove ``*.tmp-PID`` / ``*.old-PID`` leftovers of dead processes (a killed earlier run)."""
    removed = []
    for parent in (run_dir, run_dir / "models", run_dir / "eval", run_dir / STAGES_DIR):
        if not parent.is_dir():
            continue
        for p in parent.iterdir():
            m = _TEMP.search(p.name)
            if m and not _pid_alive(int(m.group(2))):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    for p in removed:
        log.info("removed %s (left by an interrupted run)", p)
    return removed


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One run per directory at a time (an advisory lock, released when the process dies)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    f = open(run_dir / ".lock", "w")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArtifactError(f"{run_dir} is in use by another `coengage run`; wait for it or choose another --out") from None
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        f.close()


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def check_run_dir(run_dir: Path) -> None:
    """A run writes data/, graph/, emb/, ... into its directory, replacing entries of those names:
    it goes only into a new or empty directory, or one an earlier run made (run.json or .stages/)."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise ArtifactError(f"run directory {run_dir} exists and is a file; choose another --out")
    if (run_dir / "run.json").is_file() or (run_dir / STAGES_DIR).is_dir() or {p.name for p in run_dir.iterdir()} <= {".lock"}:
        return  # (a run killed before it wrote run.json leaves only its lock file)
    raise ArtifactError(f"{run_dir} exists and is not a run directory (no run.json): a run would replace entries "
                        "there (data/, graph/, emb/, models/, ...); choose a new or empty --out")


class Runner:
    """Runs a :class:`RunConfig` into ``run_dir``.

    >>> Runner(config, "/tmp/run").run()          # doctest: +SKIP
    """

    def __init__(self, config: RunConfig, run_dir: str | os.PathLike, progress: bool | None = None):
        self.config = config
        self.run_dir = Path(run_dir).resolve()
        self.stages = plan(config)
        self.progress = config.runtime.get("progress") if progress is None else progress
        self.results: list[StageResult] = []

    # ---------------------------------------------------------------- records
    def record_path(self, stage: Stage) -> Path:
        return self.run_dir / STAGES_DIR / f"{stage.name}.json"

    def read_record(self, stage: Stage) -> dict | None:
        p = self.record_path(stage)
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def fingerprint(self, stage: Stage, outputs: dict[str, str]) -> str:
        self.check_files(stage)
        files = [(Path(f).name, file_fingerprint(f)) for f in stage.files]
        return combine_fingerprints(stage.name, stage.config, [(i, outputs[i]) for i in stage.inputs], files)

    def check_files(self, stage: Stage) -> None:
        for f in stage.files:
            if not Path(f).is_file():
                raise InputError(f"{self.config.source}: input file {f} (from data.log/data.texts) does not exist")

    def resolve_from(self, from_stage: str | None) -> int | None:
        if from_stage is None:
            return None
        for i, s in enumerate(self.stages):
            if from_stage in (s.name, s.group):
                return i
        names = list(dict.fromkeys([s.group for s in self.stages] + [s.name for s in self.stages]))
        raise InputError(f"--from {from_stage}: not a stage of this run; stages: {', '.join(names)}")

    # ---------------------------------------------------------------- the run
    def status(self) -> list[dict]:
        """What would run and why, without running anything."""
        outputs, rows = {}, []
        for stage in self.stages:
            try:
                fp = self.fingerprint(stage, outputs)
            except KeyError:
                rows.append({"stage": stage.name, "state": "pending (upstream not done)"})
                outputs[stage.name] = None
                continue
            rec = self.read_record(stage)
            out = output_fingerprint(self.run_dir, stage.outputs)
            done = rec is not None and rec.get("fingerprint") == fp and out is not None and rec.get("output") == out
            rows.append({"stage": stage.name, "state": "done" if done else "to run"})
            outputs[stage.name] = out if done else None
        return rows

    def run(self, from_stage: str | None = None, until: str | None = None) -> list[StageResult]:
        """Run every stage (skipping up-to-date ones); ``from_stage`` forces a rerun from that stage on."""
        force_at = self.resolve_from(from_stage)
        stop_at = self.resolve_from(until)
        for stage in self.stages:  # missing inputs are an error before the run directory is touched
            self.check_files(stage)
        check_run_dir(self.run_dir)
        ctx = Context(self.run_dir, self.config, self.progress)
        with run_lock(self.run_dir):
            clean_stale_temps(self.run_dir)
            write_json(self.run_dir / "run.json", {"config": self.config.raw, "source": self.config.source,
                                                   "stages": [s.name for s in self.stages]})
            outputs: dict[str, str] = {}
            for i, stage in enumerate(self.stages):
                if stop_at is not None and i > stop_at:
                    break
                forced = force_at is not None and i >= force_at
                self.results.append(self._one(stage, ctx, outputs, forced))
        return self.results

    def _one(self, stage: Stage, ctx: Context, outputs: dict, forced: bool) -> StageResult:
        fp = self.fingerprint(stage, outputs)
        rec = self.read_record(stage)
        if not forced and rec is not None and rec.get("fingerprint") == fp:
            current = output_fingerprint(self.run_dir, stage.outputs)
            if current is not None and current == rec.get("output"):
                log.info("%-14s up to date (skipped)", stage.name)
                outputs[stage.name] = current
                return StageResult(stage.name, "skipped", 0.0, 0.0, fp, current)
            log.info("%-14s artifact missing or changed since it was written; running it again", stage.name)
        self.record_path(stage).unlink(missing_ok=True)
        log.info("%-14s running: %s", stage.name, stage.describe or stage.name)
        t0, c0 = time.perf_counter(), _cpu()
        stage.run(ctx)
        seconds, cpu = time.perf_counter() - t0, _cpu() - c0
        out = output_fingerprint(self.run_dir, stage.outputs)
        if out is None:
            raise ArtifactError(f"stage {stage.name} finished but did not write {', '.join(stage.outputs)}")
        write_json(self.record_path(stage), {
            "stage": stage.name, "fingerprint": fp, "output": out, "config": stage.config,
            "inputs": {i: outputs[i] for i in stage.inputs}, "outputs": stage.outputs,
            "finished": now_iso(), "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
        })
        log.info("%-14s done in %.1f s (CPU %.1f s)", stage.name, seconds, cpu)
        outputs[stage.name] = out
        return StageResult(stage.name, "ran", seconds, cpu, fp, out)


def stage_names() -> tuple[str, ...]:
    return STAGE_ORDER
