"""`coengage run`: every stage of the pipeline from one validated YAML config.

Python API (mirrors the CLI)::

    from coengage.run import load_config, run
    results = run("configs/demo.yaml", "/tmp/run")            # or run(load_config(...), ...)
    results = run("configs/demo.yaml", "/tmp/run", from_stage="train")

Modules: :mod:`coengage.run.config` (schema and validation), :mod:`coengage.run.stages`
(what each stage does and writes), :mod:`coengage.run.runner` (fingerprints, skipping,
locking, cleanup after a kill).
"""

from __future__ import annotations

import os
from pathlib import Path

from coengage.run.config import RunConfig, load as load_config, validate

__all__ = ["RunConfig", "load_config", "validate", "run", "apply_runtime"]


def apply_runtime(runtime: dict) -> None:
    """Thread settings for this process: ``torch_threads`` (also OMP/MKL when torch is not yet
    imported) and ``numba_threads`` (0 = Numba's default, all cores)."""
    import sys

    t = int(runtime.get("torch_threads") or 0)
    if t > 0:
        if "torch" not in sys.modules:
            os.environ["OMP_NUM_THREADS"] = str(t)
            os.environ["MKL_NUM_THREADS"] = str(t)
        else:
            import torch

            torch.set_num_threads(t)
    n = int(runtime.get("numba_threads") or 0)
    if n > 0:
        if "numba" in sys.modules:
            import numba

            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        else:
            os.environ["NUMBA_NUM_THREADS"] = str(n)


def run(config: "RunConfig | str | os.PathLike", run_dir: "str | os.PathLike | None" = None, *,
        from_stage: str | None = None, until: str | None = None, overrides: list[str] | None = None,
        progress: bool | None = None):
    """Run every stage of ``config`` (a :class:`RunConfig` or a YAML path) into ``run_dir``.

    Stages whose inputs and config did not change since they last finished are skipped;
    ``from_stage`` (a stage or group name: ``build``, ``train``, ``eval.mlm``, ...) forces that
    stage and all later ones to run; ``until`` stops after that stage. ``overrides`` are
    ``--set KEY.PATH=VALUE`` strings. Returns a list of :class:`~coengage.run.runner.StageResult`.
    """
    from coengage.errors import InputError
    from coengage.run.runner import Runner

    cfg = config if isinstance(config, RunConfig) else load_config(config, overrides=overrides)
    run_dir = run_dir or cfg.run_dir
    if not run_dir:
        raise InputError(f"{cfg.source}: no run directory: give --out DIR or run_dir: DIR in the config")
    apply_runtime(cfg.runtime)
    return Runner(cfg, Path(run_dir), progress=progress).run(from_stage=from_stage, until=until)
