"""The stages of `coengage run`, each a function of the run config and upstream artifacts.

A :class:`Stage` knows its artifact paths under the run directory, the upstream stages it
reads, the part of the config that changes its result (``config``, fingerprinted), and how
to run. Every stage calls the Python API of its command (``graph.build``, ``mining.mine``,
``lm.train``, ...), which writes its artifact atomically (temporary sibling + rename).

Run directory layout::

    data/                  synthetic log (synth stage; absent for your own data)
    graph/                 GRAPH_DIR (with heldout/ when build.holdout > 0)
    stats/                 stats.json, degree_distribution.png
    emb/                   EMB_DIR (TwHIN embeddings); emb.checkpoint/ while training
    pairs.parquet          pair file (+ pairs.parquet.manifest.json)
    models/NAME/           MODEL_DIR per train.models entry; models/NAME.work/ while training
    eval/NAME.json         metrics.json per evaluated model (and baseline)
    report.html            the self-contained report
    .stages/STAGE.json     what each finished stage was run with (fingerprints, timing)
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from coengage.artifacts import atomic_dir, file_fingerprint, write_json
from coengage.errors import ArtifactError
from coengage.run.config import RunConfig

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """One step of the run.

    ``name`` is unique (``train.social``); ``group`` is what ``--from`` names (``train``).
    ``outputs`` are the artifact paths (relative to the run directory); ``inputs`` the
    upstream stage names whose output fingerprints enter this stage's fingerprint;
    ``files`` raw input files outside the run directory (fingerprinted by content).
    """

    name: str
    group: str
    outputs: list[str]
    inputs: list[str]
    config: dict
    run: Callable[["Context"], None]
    files: list[str] = field(default_factory=list)
    describe: str = ""


@dataclass
class Context:
    run_dir: Path
    config: RunConfig
    progress: bool | None = None

    def path(self, rel: str) -> Path:
        return self.run_dir / rel


# --------------------------------------------------------------------------- stage functions
def _synth(ctx: Context) -> None:
    from graph.synth import SynthConfig, generate

    generate(ctx.path("data"), SynthConfig(**ctx.config.data["synth"]), overwrite=True, progress=ctx.progress)


def data_files(cfg: RunConfig) -> tuple[list[str], list[str]]:
    """(log files, texts files) the build reads; relative names are under ``data.dir`` when given."""
    if cfg.synthetic:
        return ["data/engagements.parquet"], ["data/tweets.parquet"]
    base = Path(cfg.data["dir"]) if cfg.data.get("dir") else None
    fix = lambda p: str(base / p) if base is not None and not Path(p).is_absolute() else str(p)
    return [fix(p) for p in cfg.data["log"]], [fix(p) for p in cfg.data["texts"]]


def _build(ctx: Context) -> None:
    from graph.build import BuildConfig, build_graph

    logs, texts = data_files(ctx.config)
    if ctx.config.synthetic:
        logs, texts = [str(ctx.path(p)) for p in logs], [str(ctx.path(p)) for p in texts]
    cfg = BuildConfig(log=logs, texts=texts, out=str(ctx.path("graph")), overwrite=True, **ctx.config.build)
    build_graph(cfg)


def _stats(ctx: Context) -> None:
    from graph.stats import compute_stats, plot_degrees

    graph = ctx.path("graph")
    with atomic_dir(ctx.path("stats")) as tmp:
        stats = compute_stats(graph)
        plot_degrees(graph, tmp / "degree_distribution.png")
        write_json(tmp / "stats.json", stats)


def _embed(ctx: Context) -> None:
    from graph.embed import EmbedConfig, train_embeddings

    out = ctx.path("emb")
    cfg = EmbedConfig(**ctx.config.embed, threads=ctx.config.runtime["torch_threads"])
    checkpoint = out.with_name(out.name + ".checkpoint")
    if checkpoint.exists():
        try:
            log.info("embed: resuming from %s", checkpoint)
            train_embeddings(ctx.path("graph"), out, cfg, resume=True, progress=ctx.progress, overwrite=True)
            return
        except ArtifactError as e:  # another graph or other settings: start again
            log.warning("embed: cannot resume (%s); starting again", e)
            shutil.rmtree(checkpoint, ignore_errors=True)
    train_embeddings(ctx.path("graph"), out, cfg, progress=ctx.progress, overwrite=True)  # (the run owns its directory)


def _mine(ctx: Context) -> None:
    from mining.mine import mine

    opts = dict(ctx.config.mine)
    method = opts.pop("method")
    with_text = opts.pop("with_text", False)
    fmt = opts.pop("format", None)
    if method == "knn":
        opts["embeddings"] = str(ctx.path("emb"))
    mine(ctx.path("graph"), method, ctx.path("pairs.parquet"), fmt=fmt, with_text=with_text,
         progress=bool(ctx.progress), overwrite=True, **opts)  # (a run killed between the pair file and its manifest)


def _train(name: str) -> Callable[[Context], None]:
    def run(ctx: Context) -> None:
        from lm.config import TrainConfig
        from lm.train import checkpoints, train, work_dir_of

        if ctx.config.runtime["torch_threads"]:
            import torch

            torch.set_num_threads(ctx.config.runtime["torch_threads"])
        out = ctx.path(f"models/{name}")
        base = dict(ctx.config.models[name])
        make = lambda **kw: TrainConfig(pairs=str(ctx.path("pairs.parquet")), texts=str(ctx.path("graph")), out=str(out),
                                        progress=ctx.progress, **base, **kw)
        work = work_dir_of(out)
        if work.exists() and checkpoints(work):
            try:
                log.info("train.%s: resuming from %s", name, work)
                train(make(resume=True))
                return
            except ArtifactError as e:
                log.warning("train.%s: cannot resume (%s); starting again", name, e)
        train(make(overwrite=True))

    return run


def _eval(name: str, spec_of: Callable[[Context], str]) -> Callable[[Context], None]:
    def run(ctx: Context) -> None:
        from lm.eval.config import EvalConfig
        from lm.eval.run import evaluate

        cfg = EvalConfig(**ctx.config.eval, threads=ctx.config.runtime["torch_threads"])
        evaluate(spec_of(ctx), ctx.path("graph"), ctx.path("emb"), cfg, out=ctx.path(f"eval/{name}.json"))

    return run


def _report(ctx: Context) -> None:
    from coengage.report import write_report

    write_report(ctx.run_dir, ctx.config)


# --------------------------------------------------------------------------- the plan
def plan(cfg: RunConfig) -> list[Stage]:
    """The stages of a run, in order."""
    stages: list[Stage] = []
    logs, texts = data_files(cfg)
    if cfg.synthetic:
        stages.append(Stage("synth", "synth", ["data"], [], {"synth": cfg.data["synth"]}, _synth,
                            describe="synthetic engagement log"))
        build_inputs, files = ["synth"], []
    else:
        build_inputs, files = [], logs + texts
    stages.append(Stage("build", "build", ["graph"], build_inputs,
                        {"build": cfg.build, "log": [Path(p).name for p in logs], "texts": [Path(p).name for p in texts]},
                        _build, files=files, describe="graph build"))
    stages.append(Stage("stats", "stats", ["stats"], ["build"], {}, _stats, describe="graph statistics"))
    stages.append(Stage("embed", "embed", ["emb"], ["build"], {"embed": cfg.embed}, _embed, describe="TwHIN embeddings"))
    mine_inputs = ["build", "embed"] if cfg.mine["method"] == "knn" else ["build"]
    stages.append(Stage("mine", "mine", ["pairs.parquet", "pairs.parquet.manifest.json"], mine_inputs, {"mine": cfg.mine},
                        _mine, describe=f"mine pairs ({cfg.mine['method']})"))
    for name, opts in cfg.models.items():
        stages.append(Stage(f"train.{name}", "train", [f"models/{name}"], ["build", "mine"], {"train": opts},
                            _train(name), describe=f"lm train {name} ({opts.get('objective', 'infonce')})"))
    if cfg.eval_enabled:
        evals = [(n, f"train.{n}", (lambda n: lambda ctx: str(ctx.path(f"models/{n}")))(n)) for n in cfg.eval_models]
        evals += [(b, None, (lambda b: lambda ctx: b)(b)) for b in cfg.baselines]
        for name, train_stage, spec in evals:
            inputs = ["build", "embed"] + ([train_stage] if train_stage else [])
            stages.append(Stage(f"eval.{name}", "eval", [f"eval/{name}.json"], inputs, {"eval": cfg.eval, "model": name},
                                _eval(name, spec), describe=f"lm eval {name}"))
    if cfg.report["enabled"]:
        upstream = [s.name for s in stages]
        stages.append(Stage("report", "report", ["report.html"], upstream, {"report": cfg.report}, _report,
                            describe="report.html"))
    return stages


def output_fingerprint(run_dir: Path, outputs: list[str]) -> str | None:
    """Fingerprint of a stage's published artifact(s): every file's path and content fingerprint.

    ``None`` when any output is missing or has no files (so the stage must run).
    """
    from coengage.artifacts import combine_fingerprints

    parts = []
    for rel in outputs:
        p = run_dir / rel
        if p.is_file():
            parts.append((rel, file_fingerprint(p)))
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            if not files:
                return None
            parts.extend((str(f.relative_to(run_dir)), file_fingerprint(f)) for f in files)
        else:
            return None
    return combine_fingerprints(parts)
