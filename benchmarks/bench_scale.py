"""Growth of every stage with the number of engagement edges: build, mine (local and Spark), embed, knn.

For each size E (engagement rows asked of ``coengage synth``; users = E/50, tweets = E/20, the
synth defaults' proportions, power-law activity and popularity) the benchmark

1. writes the synthetic log once into ``--data-dir`` (reused when its manifest matches),
2. runs each stage as a subprocess of the real command line and measures its wall time, the
   peak RSS of the child's whole process tree (psutil, sampled every ``--sample-s``; the
   Spark JVM is a grandchild and is counted) and the CPU seconds of the tree,
3. writes every figure to ``benchmarks/results/scale.json`` (atomically, after each stage, so a
   run cut off keeps what it measured; sizes already in the file and not re-run are kept),
4. fits the growth exponent b of ``time ~ E^b`` and ``peak RSS ~ E^b`` per stage (least squares
   in log-log over the measured sizes) and draws ``scale.png``.

Stages (``--stages``):

* ``build``      ``coengage graph build --log engagements.parquet --texts tweets.parquet --out G``
* ``coengage``   ``coengage mine G --method coengage --out P`` (local Numba kernel)
* ``walk``       ``coengage mine G --method walk --out P`` (local Numba kernel)
* ``spark``      ``coengage mine G --method coengage --engine spark --out P`` (graph artifact, Spark local mode)
* ``spark-logs`` ``coengage mine --engine spark --logs engagements.parquet --texts tweets.parquet --method coengage --out P``
* ``embed``      ``--steps`` optimiser steps of ``coengage graph embed``'s trainer (a child process of this
                 script running graph.embed's own TwHINModel.train_batch; setup and steps timed apart):
                 a whole epoch at 100M edges would take hours on 2 cores. The tables after those steps are
                 saved as an embeddings artifact (``emb_e<N>``) for the knn stage.
* ``knn``        ``coengage mine G --method knn --embeddings emb_e<N> --out P`` (``--knn-nprobe`` and
                 ``--knn-index`` passed on when given). The embeddings are the embed stage's, trained for
                 ``--embed-steps`` steps only: the search costs the same for any vectors of that shape, but
                 the pairs are not meaningful. Its cost follows the number of tweets (E/20), not edges.

A stage that runs past ``--max-stage-s``, or while which the machine's available memory falls
below ``--min-free-gib``, is killed and recorded as ``not_measured`` with the reason; a size
whose data would not fit (``--big-min-free-gib`` available memory required for sizes >= 1e8)
is recorded likewise. Nothing is extrapolated into the measured figures.

    .venv/bin/python benchmarks/bench_scale.py --sizes 1e6,1e7          # 1M and 10M edges
    .venv/bin/python benchmarks/bench_scale.py --sizes 1e8 --stages build,coengage
    .venv/bin/python benchmarks/bench_scale.py --quick --out /tmp/s.json --plot /tmp/s.png --data-dir /tmp/sd
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
ALL_STAGES = ("build", "coengage", "walk", "spark", "spark-logs", "embed", "knn")
QUICK_STAGES = ("build", "coengage", "walk", "embed", "knn")
QUICK_SIZES = "5e3,2e4"
WORKER_TAG = "__SCALE_EMBED__ "
GIB = 1 << 30


# --------------------------------------------------------------------------- helpers
def parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if part:
            v = int(float(part))
            if v < 1000:
                raise SystemExit(f"--sizes: {part} is below 1000 engagements")
            out.append(v)
    return sorted(set(out))


def size_label(n: int) -> str:
    exp = int(math.floor(math.log10(n)))
    mant = n / 10 ** exp
    return f"{mant:g}e{exp}"


def coengage_bin() -> str:
    exe = Path(sys.executable).parent / "coengage"
    return str(exe) if exe.exists() else shutil.which("coengage") or "coengage"


def machine_state() -> dict:
    import psutil

    vm = psutil.virtual_memory()
    return {"utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
            "uptime_s": round(time.time() - psutil.boot_time()),
            "available_gib": round(vm.available / GIB, 2)}


def git_state() -> str:
    """HEAD of the working tree the stage ran from (plus '+dirty' when tracked files differ)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               cwd=ROOT, timeout=30).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine_info() -> dict:
    import platform

    import psutil

    return {"cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "memory_gib": round(psutil.virtual_memory().total / GIB, 2), "python": platform.python_version(),
            "platform": platform.platform()}


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants; enforces the memory guard."""

    def __init__(self, pid: int, interval: float, min_free_bytes: int):
        super().__init__(daemon=True)
        self.pid, self.interval, self.min_free = pid, interval, min_free_bytes
        self.peak = 0
        self.peak_single = 0
        self.max_procs = 0
        self.low_memory = None  # (available bytes, tree rss) when the guard fired
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._halt.is_set():
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak = max(self.peak, total)
            self.max_procs = max(self.max_procs, len(procs))
            if self.min_free and psutil.virtual_memory().available < self.min_free and self.low_memory is None:
                self.low_memory = (int(psutil.virtual_memory().available), int(total))
                _kill_group(self.pid)
                break
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()


def _kill_group(pid: int) -> None:
    """Kill the process group this benchmark started for one stage (its own session)."""
    import signal

    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_stage(cmd: list[str], *, timeout_s: float, min_free_gib: float, sample_s: float, log_path: Path,
              env: dict | None = None) -> dict:
    """Run ``cmd`` in its own session; wall, peak tree RSS, CPU seconds, exit status."""
    import resource

    log_path.parent.mkdir(parents=True, exist_ok=True)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = machine_state()
    t0 = time.perf_counter()
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})}, cwd=str(ROOT))
        sampler = TreeSampler(proc.pid, sample_s, int(min_free_gib * GIB))
        sampler.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            proc.wait()
        wall = time.perf_counter() - t0
        sampler.stop()
        sampler.join()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_waited = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out = {"command": shlex.join(cmd), "returncode": proc.returncode, "wall_s": round(wall, 3),
           "peak_rss_bytes": int(sampler.peak), "peak_rss_single_process_bytes": int(sampler.peak_single),
           "max_processes": sampler.max_procs, "cpu_s": round(cpu_waited, 3),
           "machine_before": before, "machine_after": machine_state(), "log": str(log_path), "git": git_state()}
    if timed_out:
        out["status"], out["reason"] = "not_measured", f"killed after {timeout_s:.0f} s (--max-stage-s)"
    elif sampler.low_memory is not None:
        avail, tree = sampler.low_memory
        out["status"] = "not_measured"
        out["reason"] = (f"killed: machine available memory fell to {avail / GIB:.1f} GiB (< --min-free-gib {min_free_gib}) "
                         f"while the stage's process tree held {tree / GIB:.1f} GiB")
    elif proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-1500:]
        out["status"], out["reason"] = "failed", f"exit {proc.returncode}: {tail.strip()[-600:]}"
    else:
        out["status"] = "measured"
    return out


# --------------------------------------------------------------------------- data
def ensure_synth(data_dir: Path, n: int, args) -> dict:
    """The synthetic log of size ``n`` (written once; reused when its manifest config matches)."""
    d = data_dir / f"synth_e{n}"
    want = {"users": n // 50, "tweets": n // 20, "engagements": n, "seed": args.seed, "format": "parquet"}
    m = d / "manifest.json"
    if m.exists():
        cfg = json.loads(m.read_text()).get("config", {})
        if all(cfg.get(k) == v for k, v in want.items()):
            return {"dir": str(d), "reused": True, "counts": json.loads(m.read_text()).get("counts", {})}
    cmd = [coengage_bin(), "synth", "--out", str(d), "--overwrite", "--users", str(want["users"]), "--tweets",
           str(want["tweets"]), "--engagements", str(n), "--seed", str(args.seed)]
    r = run_stage(cmd, timeout_s=args.max_stage_s * 2, min_free_gib=args.min_free_gib, sample_s=args.sample_s,
                  log_path=data_dir / "logs" / f"synth_e{n}.log")
    if r["status"] != "measured":
        raise RuntimeError(f"coengage synth for {n} engagements: {r.get('reason')}")
    return {"dir": str(d), "reused": False, "counts": json.loads(m.read_text()).get("counts", {}), "synth": r}


def graph_counts(graph_dir: Path) -> dict:
    m = json.loads((graph_dir / "manifest.json").read_text())
    edges = m.get("num_edges", {})
    nodes = m.get("num_nodes", {})
    csr = graph_dir / "csr"
    return {"edges": int(sum(edges.values())) if isinstance(edges, dict) else edges, "users": nodes.get("user"),
            "tweets": nodes.get("tweet"), "rows": m.get("rows_read"),
            "csr_bytes": sum(p.stat().st_size for p in csr.glob("*.npy")) if csr.exists() else None,
            "artifact_bytes": sum(p.stat().st_size for p in graph_dir.rglob("*") if p.is_file())}


def pair_count(out: Path) -> dict:
    """``written`` and ``candidates`` from the pair file's manifest (``OUT.manifest.json`` or ``OUT/manifest.json``)."""
    for m in (Path(str(out) + ".manifest.json"), out / "manifest.json" if out.is_dir() else None):
        if m is not None and m.exists():
            counts = json.loads(m.read_text()).get("counts", {})
            return {k: counts.get(k) for k in ("written", "candidates", "tweets_paired") if k in counts}
    return {}


def spark_available() -> tuple[bool, bool, str]:
    """(graph route, raw-log route, why not) from ``coengage mine --help``."""
    try:
        h = subprocess.run([coengage_bin(), "mine", "--help"], capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, False, f"coengage mine --help failed: {e}"
    if "--engine" not in h:
        return False, False, "this checkout's `coengage mine --help` has no --engine (the Spark engine is not in it)"
    return True, "--logs" in h, "" if "--logs" in h else "`coengage mine --help` has no --logs (raw-log route)"


# --------------------------------------------------------------------------- embed worker
def embed_worker(graph_dir: str, steps: int, batch_size: int, dim: int, negatives: int, seed: int,
                 save_to: str | None = None) -> None:
    """Child process: graph.embed's trainer set up as ``coengage graph embed`` does, then ``steps`` steps;
    with ``save_to`` the tables are then written there as an embeddings artifact (for the knn stage)."""
    from graph.embed import choose_omp_wait

    choose_omp_wait()
    import numpy as np
    import torch

    from graph.artifact import load
    from graph.embed.config import EmbedConfig
    from graph.embed.data import PackedEdges, graph_edges, split_edges
    from graph.embed.negatives import NegativeSampler
    from graph.embed.train import TwHINModel, available_cores

    t0 = time.perf_counter()
    cfg = EmbedConfig(dim=dim, batch_size=batch_size, negatives=negatives, seed=seed, epochs=1)
    torch.set_num_threads(available_cores())
    g = load(graph_dir)
    edges = graph_edges(g)
    train_pos, _ = split_edges(len(edges), cfg.holdout, cfg.seed)
    te = PackedEdges(edges, train_pos)  # as train_embeddings packs them
    E = len(te)
    del edges, train_pos
    tw = TwHINModel(g.num_users, g.num_tweets, len(g.relations), cfg)
    sampler = NegativeSampler(g.num_users, g.num_tweets, te.users, te.tweets, cfg.tweet_negatives,
                              cfg.user_negatives, cfg.degree_fraction)
    setup_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(E, generator=gen)
    done, pos, losses = 0, 0, []
    t1 = time.perf_counter()
    for _ in range(steps):
        if pos >= E:
            perm, pos = torch.randperm(E, generator=gen), 0
        idx = perm[pos:pos + batch_size]
        pos += len(idx)
        losses.append(tw.train_batch(te, idx, sampler, gen))
        done += len(idx)
    step_s = time.perf_counter() - t1
    print(WORKER_TAG + json.dumps({"setup_s": round(setup_s, 3), "steps_s": round(step_s, 3), "steps": steps,
                                   "edges_trained": done, "edges_per_s": done / step_s if step_s > 0 else None,
                                   "train_edges": E, "users": g.num_users, "tweets": g.num_tweets, "dim": dim,
                                   "first_loss": losses[0], "last_loss": losses[-1],
                                   "finite": bool(np.isfinite(losses).all())}), flush=True)
    if save_to:
        from graph.embed.io import write_embeddings

        # the tables themselves, not tw.arrays()'s copies: the stage's peak RSS stays the training's
        write_embeddings(save_to, user=tw.user.weight.numpy(), tweet=tw.tweet.weight.numpy(),
                         relation=tw.relation.detach().numpy(), graph_fingerprint=g.fingerprint, relations=list(g.relations),
                         config=cfg.to_dict(), metrics={},
                         extra={"note": f"bench_scale: {steps} training steps only, for timing the knn stage"})


def worker_result(log_path: Path) -> dict | None:
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if line.startswith(WORKER_TAG):
            return json.loads(line[len(WORKER_TAG):])
    return None


# --------------------------------------------------------------------------- stages
def stage_commands(stage: str, n: int, synth_dir: Path, work: Path, args) -> tuple[list[str], Path | None]:
    cb = coengage_bin()
    g = work / f"graph_e{n}"
    logs, texts = str(synth_dir / "engagements.parquet"), str(synth_dir / "tweets.parquet")
    if stage == "build":
        cmd = [cb, "graph", "build", "--log", logs, "--texts", texts, "--out", str(g), "--overwrite"]
        return cmd, g
    if stage in ("coengage", "walk"):
        out = work / f"pairs_{stage}_e{n}.parquet"
        return [cb, "mine", str(g), "--method", stage, "--out", str(out), "--no-progress"], out
    if stage == "spark":
        out = work / f"pairs_spark_e{n}"
        return [cb, "mine", str(g), "--method", "coengage", "--engine", "spark", "--out", str(out)], out
    if stage == "spark-logs":
        out = work / f"pairs_sparklogs_e{n}"
        return [cb, "mine", "--engine", "spark", "--logs", logs, "--texts", texts, "--method", "coengage",
                "--out", str(out)], out
    if stage == "embed":
        cmd = [sys.executable, str(Path(__file__).resolve()), "--embed-worker", str(g), "--steps", str(args.embed_steps),
               "--embed-batch", str(args.embed_batch), "--embed-dim", str(args.embed_dim),
               "--embed-negatives", str(args.embed_negatives), "--save-embeddings", str(work / f"emb_e{n}")]
        return cmd, None
    if stage == "knn":
        out = work / f"pairs_knn_e{n}.parquet"
        cmd = [cb, "mine", str(g), "--method", "knn", "--embeddings", str(work / f"emb_e{n}"), "--out", str(out),
               "--no-progress"]
        if args.knn_index:
            cmd += ["--index", args.knn_index]
        if args.knn_nprobe:
            cmd += ["--nprobe", str(args.knn_nprobe)]
        return cmd, out
    raise ValueError(stage)


def measure(stage: str, n: int, synth: dict, work: Path, args, spark: tuple) -> dict:
    synth_dir = Path(synth["dir"])
    g = work / f"graph_e{n}"
    rec: dict = {"stage": stage, "engine": "spark-local" if stage.startswith("spark") else "local"}
    if stage != "build" and stage != "spark-logs" and not (g / "manifest.json").exists():
        return {**rec, "status": "not_measured", "reason": f"no graph artifact at {g} (the build stage did not complete)"}
    if stage == "spark" and not spark[0]:
        return {**rec, "status": "not_measured", "reason": spark[2]}
    if stage == "spark-logs" and not spark[1]:
        return {**rec, "status": "not_measured", "reason": spark[2] or "no raw-log route"}
    if stage == "knn" and not (work / f"emb_e{n}" / "manifest.json").exists():
        return {**rec, "status": "not_measured",
                "reason": f"no embeddings at {work / f'emb_e{n}'} (run the embed stage of this size first)"}
    cmd, out = stage_commands(stage, n, synth_dir, work, args)
    # embed chooses its OpenMP wait policy from the machine's load (graph.embed.choose_omp_wait)
    env = {} if stage == "embed" else {"OMP_WAIT_POLICY": "PASSIVE"}
    r = run_stage(cmd, timeout_s=args.max_stage_s, min_free_gib=args.min_free_gib, sample_s=args.sample_s,
                  log_path=work / "logs" / f"{stage}_e{n}.log", env=env)
    rec.update(r)
    if r["status"] != "measured":
        if out is not None and stage != "build" and out.exists():
            shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink()
        return rec
    if stage == "build":
        c = graph_counts(g)
        rec.update(c)
        rows = c.get("rows") or synth["counts"].get("rows")
        rec["rows"] = rows
        rec["rows_per_s"] = rows / r["wall_s"] if rows else None
    elif stage == "embed":
        w = worker_result(Path(r["log"]))
        if w is None:
            rec["status"], rec["reason"] = "failed", "embed worker printed no result"
        else:
            rec["embed"] = w
            rec["edges_per_s"] = w["edges_per_s"]
    elif stage == "knn":
        rec["pairs"] = pair_count(out)
        rec["tweets"] = graph_counts(g)["tweets"]
        rec["tweets_per_s"] = rec["tweets"] / r["wall_s"] if rec["tweets"] else None
        man = Path(str(out) + ".manifest.json")
        if man.exists():  # what the command chose (index, nlist, nprobe) and where its time went
            m = json.loads(man.read_text())
            rec["knn_config"] = {k: v for k, v in m.get("config", {}).get("knn", {}).items() if k != "embeddings"}
            rec["knn_info"] = m.get("info", {})
            rec["mine_timing"] = m.get("timing", {})
    else:
        rec["pairs"] = pair_count(out)
        if stage == "spark-logs":
            rows = synth["counts"].get("rows")
            rec["rows_per_s"] = rows / r["wall_s"] if rows else None
        else:
            edges = graph_counts(g)["edges"]
            rec["edges_per_s"] = edges / r["wall_s"] if edges else None
        if out.exists():
            rec["output_bytes"] = (sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir()
                                   else out.stat().st_size)
    return rec


# --------------------------------------------------------------------------- fit, plot, table
def fit_exponent(xs: list[float], ys: list[float]) -> float | None:
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x and y and x > 0 and y > 0]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def time_of(stage: str, rec: dict) -> float | None:
    """The time figure a stage's growth is fitted on: wall seconds of the command; for embed the
    seconds per million trained edges (it runs a fixed number of steps, not an epoch)."""
    if stage == "embed":
        eps = rec.get("edges_per_s")
        return 1e6 / eps if eps else None
    return rec.get("wall_s")


TIME_LABEL = {"embed": "s per 1M edges trained", "embed-setup": "setup s: load edges, init tables"}


def series(results: dict) -> dict:
    """stage -> sorted [(edges, time figure, peak_rss_bytes)] over measured sizes (see :func:`time_of`)."""
    out: dict[str, list] = {}
    for size in results["sizes"].values():
        edges = size.get("edges")
        for stage, rec in size.get("stages", {}).items():
            if rec.get("status") == "measured" and edges and time_of(stage, rec):
                out.setdefault(stage, []).append((edges, time_of(stage, rec), rec["peak_rss_bytes"],
                                                  None if stage == "embed" else rec.get("cpu_s")))
            if stage == "embed" and rec.get("status") == "measured" and edges and rec.get("embed"):
                out.setdefault("embed-setup", []).append((edges, rec["embed"]["setup_s"], rec["peak_rss_bytes"], None))
    return {k: sorted(v) for k, v in out.items()}


def fits(results: dict) -> dict:
    res = {}
    for stage, pts in series(results).items():
        xs = [p[0] for p in pts]
        res[stage] = {"points": len(pts), "time": TIME_LABEL.get(stage, "wall s of the command"),
                      "time_exponent": fit_exponent(xs, [p[1] for p in pts]),
                      "memory_exponent": fit_exponent(xs, [p[2] for p in pts]),
                      "cpu_time_exponent": (fit_exponent(xs, [p[3] for p in pts]) if all(p[3] for p in pts) else None),
                      "edges_range": [xs[0], xs[-1]]}
    return res


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ser, fit = series(results), results.get("fits", {})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for stage in [s for s in (*ALL_STAGES, "embed-setup") if s in ser]:
        pts = ser[stage]
        xs = [p[0] for p in pts]
        f = fit.get(stage, {})
        te, me = f.get("time_exponent"), f.get("memory_exponent")
        engine = "spark-local" if stage.startswith("spark") else "local"
        what = f", {TIME_LABEL[stage]}" if stage in TIME_LABEL else ""
        style = "s--" if engine == "spark-local" else ("^:" if stage == "embed-setup" else "o-")
        axes[0].loglog(xs, [p[1] for p in pts], style,
                       label=f"{stage} ({engine}{what})" + (f"  b={te:.2f}" if te is not None else ""))
        if stage == "embed-setup":
            continue  # the same process as embed
        axes[1].loglog(xs, [p[2] / 2**20 for p in pts], style,
                       label=f"{stage} ({engine})" + (f"  b={me:.2f}" if me is not None else ""))
    axes[0].set(xlabel="engagement edges E", ylabel="wall time of the command (s)", title="time ~ E^b")
    axes[1].set(xlabel="engagement edges E", ylabel="peak RSS of the process tree (MiB)", title="memory ~ E^b")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", framealpha=0.7)
    cores = results.get("machine", {}).get("cpus")
    fig.suptitle(f"coengage stage growth on {cores} cores (embed: {results['config']['embed_steps']} steps, not an epoch)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def table(results: dict) -> str:
    cols = ("size", "edges", "stage", "status", "wall_s", "peak_MiB", "throughput", "load_1m")
    rows = []
    for label, size in sorted(results["sizes"].items(), key=lambda kv: kv[1]["engagements"]):
        for stage in ALL_STAGES:
            rec = size.get("stages", {}).get(stage)
            if rec is None:
                continue
            thr = rec.get("rows_per_s") or rec.get("edges_per_s") or rec.get("tweets_per_s")
            rows.append({"size": label, "edges": f"{size.get('edges') or 0:,}", "stage": stage, "status": rec.get("status"),
                         "wall_s": f"{rec['wall_s']:.1f}" if rec.get("wall_s") is not None else "-",
                         "peak_MiB": f"{rec['peak_rss_bytes'] / 2**20:,.0f}" if rec.get("peak_rss_bytes") else "-",
                         "throughput": f"{thr:,.0f}/s" if thr else "-",
                         "load_1m": str(rec.get("machine_before", {}).get("load_avg", ["-"])[0])})
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) if rows else len(c) for c in cols}
    lines = ["  ".join(c.rjust(widths[c]) for c in cols)]
    lines += ["  ".join(r[c].rjust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """The growth table and the fitted exponents as Markdown (for docs/scaling.md)."""
    lines = ["| size | edges | users | tweets | stage | engine | wall s | CPU s | peak RSS MiB | throughput (wall) | load avg (1/5/15 min) | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, size in sorted(results["sizes"].items(), key=lambda kv: kv[1]["engagements"]):
        for stage in ALL_STAGES:
            rec = size.get("stages", {}).get(stage)
            if rec is None:
                continue
            ok = rec.get("status") == "measured"
            thr = ""
            if ok and rec.get("rows_per_s"):
                thr = f"{rec['rows_per_s']:,.0f} rows/s"
            elif ok and stage == "embed":
                thr = f"{rec['edges_per_s']:,.0f} edges/s ({rec['embed']['steps']} steps; setup {rec['embed']['setup_s']:.1f} s)"
            elif ok and rec.get("edges_per_s"):
                thr = f"{rec['edges_per_s']:,.0f} edges/s"
            elif ok and rec.get("tweets_per_s"):
                info = rec.get("knn_info", {})
                how = ", ".join(f"{k} {info[k]}" for k in ("index", "nlist", "nprobe") if info.get(k) is not None)
                thr = f"{rec['tweets_per_s']:,.0f} tweets/s ({how})" if how else f"{rec['tweets_per_s']:,.0f} tweets/s"
            load = rec.get("machine_before", {}).get("load_avg")
            status = "measured" if ok else f"**not measured**: {rec.get('reason', '')}"
            lines.append(f"| {label} | {size.get('edges') or 0:,} | {size.get('users') or 0:,} | {size.get('tweets') or 0:,} | "
                         f"{stage} | {'spark-local' if stage.startswith('spark') else 'local'} | "
                         f"{rec['wall_s']:.1f} | {rec.get('cpu_s', 0):.1f} |" if ok else
                         f"| {label} | {size.get('edges') or 0:,} | {size.get('users') or 0:,} | {size.get('tweets') or 0:,} | "
                         f"{stage} | {'spark-local' if stage.startswith('spark') else 'local'} | – | – |")
            lines[-1] += (f" {rec['peak_rss_bytes'] / 2**20:,.0f} |" if ok else " – |")
            lines[-1] += f" {thr} | {'/'.join(str(x) for x in load) if load else ''} | {status} |"
    lines += ["", "| stage | time figure | sizes | time exponent b | CPU-time exponent b | memory exponent b |",
              "|---|---|---|---|---|---|"]
    for stage, f in sorted(results.get("fits", {}).items()):
        fmt = (lambda v: f"{v:.2f}" if v is not None else "–")
        lines.append(f"| {stage} | {f.get('time', 'wall s')} | {f['points']} | {fmt(f['time_exponent'])} | "
                     f"{fmt(f.get('cpu_time_exponent'))} | {fmt(f['memory_exponent'])} |")
    return "\n".join(lines)


def save(results: dict, out: Path, plot_path: Path | None) -> None:
    from coengage.artifacts import write_json

    results["fits"] = fits(results)
    results["updated"] = machine_state()
    write_json(out, results)
    if plot_path is not None:
        plot(results, plot_path)


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=None, help="engagement rows per size, comma-separated (default 1e6,1e7,1e8; --quick: "
                                                 f"{QUICK_SIZES})")
    p.add_argument("--stages", default=None, help=f"comma-separated subset of {','.join(ALL_STAGES)} (default all; --quick: "
                                                  f"{','.join(QUICK_STAGES)})")
    p.add_argument("--quick", action="store_true", help="tiny sizes and the local stages, a smoke run in seconds")
    p.add_argument("--data-dir", default="/work/scale_data", help="synthetic logs and the artifacts of each stage go here "
                                                                   "(not the repository) (default /work/scale_data)")
    p.add_argument("--out", default=None, help="results JSON (default benchmarks/results/scale.json; --quick: "
                                               "benchmarks/results/scale_quick.json)")
    p.add_argument("--plot", default=None, help="log-log plot (default: the --out path with .png)")
    p.add_argument("--fresh", action="store_true", help="start a new results file instead of merging into --out")
    p.add_argument("--max-stage-s", type=float, default=900.0, help="kill a stage after this many seconds (default 900)")
    p.add_argument("--min-free-gib", type=float, default=4.0,
                   help="kill a stage when the machine's available memory falls below this (default 4)")
    p.add_argument("--big-min-free-gib", type=float, default=16.0,
                   help="sizes >= 1e8 run only when this much memory is available at their start (default 16)")
    p.add_argument("--sample-s", type=float, default=0.2, help="RSS sampling interval (default 0.2 s)")
    p.add_argument("--embed-steps", type=int, default=None, help="embed: optimiser steps timed (default 100; --quick 5)")
    p.add_argument("--embed-batch", type=int, default=8192, help="embed: positive edges per step (default 8192)")
    p.add_argument("--embed-dim", type=int, default=128, help="embed: dimension (default 128)")
    p.add_argument("--embed-negatives", type=int, default=100, help="embed: negatives per positive (default 100)")
    p.add_argument("--knn-index", default=None, help="knn: --index passed to `coengage mine` (default: its own, auto)")
    p.add_argument("--knn-nprobe", type=int, default=None, help="knn: --nprobe passed to `coengage mine` (default: its own)")
    p.add_argument("--seed", type=int, default=0, help="synth seed (default 0)")
    p.add_argument("--keep-outputs", action="store_true", help="keep pair files and graphs of the last size")
    p.add_argument("--not-run", action="append", default=[], metavar="STAGE=REASON",
                   help="record STAGE as not measured for every --sizes entry, with REASON (say what any "
                        "extrapolation in it rests on); the stage is not run")
    p.add_argument("--embed-worker", metavar="GRAPH_DIR", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--save-embeddings", default=None, help=argparse.SUPPRESS)
    p.add_argument("--markdown", action="store_true", help="print --out's table and exponents as Markdown; run nothing")
    args = p.parse_args(argv)

    if args.embed_worker:
        embed_worker(args.embed_worker, args.steps, args.embed_batch, args.embed_dim, args.embed_negatives, args.seed,
                     args.save_embeddings)
        return 0

    if args.markdown:
        out = Path(args.out) if args.out else RESULTS / ("scale_quick.json" if args.quick else "scale.json")
        res = json.loads(out.read_text())
        res["fits"] = fits(res)
        print(markdown(res))
        return 0
    sizes = parse_sizes(args.sizes or (QUICK_SIZES if args.quick else "1e6,1e7,1e8"))
    stages = [s.strip() for s in (args.stages or ",".join(QUICK_STAGES if args.quick else ALL_STAGES)).split(",") if s.strip()]
    bad = [s for s in stages if s not in ALL_STAGES]
    if bad:
        raise SystemExit(f"--stages: unknown {bad}; choose from {', '.join(ALL_STAGES)}")
    not_run = {}
    for item in args.not_run:
        st, _, why = item.partition("=")
        if st not in ALL_STAGES or not why:
            raise SystemExit(f"--not-run: expected STAGE=REASON with STAGE one of {', '.join(ALL_STAGES)}, got {item!r}")
        not_run[st] = why
    stages = [s for s in ALL_STAGES if s in stages and s not in not_run]
    args.embed_steps = args.embed_steps or (5 if args.quick else 100)
    out = Path(args.out) if args.out else RESULTS / ("scale_quick.json" if args.quick else "scale.json")
    plot_path = Path(args.plot) if args.plot else out.with_suffix(".png")
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    command = shlex.join([".venv/bin/python", "benchmarks/bench_scale.py",
                          *(argv if argv is not None else sys.argv[1:])])
    results = None
    if out.exists() and not args.fresh:
        try:
            results = json.loads(out.read_text())
        except json.JSONDecodeError:
            results = None
    if results is None or results.get("benchmark") != "scale":
        results = {"benchmark": "scale", "sizes": {}, "runs": []}
    results["machine"] = machine_info()
    results["config"] = {"users_per_edge": "E/50", "tweets_per_edge": "E/20", "synth_seed": args.seed,
                         "embed_steps": args.embed_steps, "embed_batch": args.embed_batch, "embed_dim": args.embed_dim,
                         "embed_negatives": args.embed_negatives, "max_stage_s": args.max_stage_s,
                         "min_free_gib": args.min_free_gib, "big_min_free_gib": args.big_min_free_gib,
                         "rss": "peak of the summed RSS of the stage's process tree, psutil every "
                                f"{args.sample_s} s", "size": "engagement rows asked of coengage synth "
                                "(plus ~1% duplicate rows); edges = distinct (user, tweet, type) after the build"}
    results["runs"].append({"command": command, "start": machine_state(), "sizes": [size_label(n) for n in sizes],
                            "stages": stages, "not_run": not_run})
    spark = spark_available() if any(s.startswith("spark") for s in stages) else (False, False, "")

    for n in sizes:
        label = size_label(n)
        entry = results["sizes"].setdefault(label, {"engagements": n, "stages": {}})
        entry["engagements"] = n
        state = machine_state()
        if n >= 10**8 and state["available_gib"] < args.big_min_free_gib:
            reason = (f"not run: {state['available_gib']} GiB available at {state['utc']}, below --big-min-free-gib "
                      f"{args.big_min_free_gib}")
            for s in stages:
                if entry["stages"].get(s, {}).get("status") != "measured":
                    entry["stages"][s] = {"stage": s, "status": "not_measured", "reason": reason}
            save(results, out, plot_path)
            print(f"{label}: {reason}", flush=True)
            continue
        synth = ensure_synth(data_dir, n, args)
        entry["synth"] = {k: synth[k] for k in ("dir", "reused", "counts")}
        entry["users"], entry["tweets"] = n // 50, n // 20
        work = data_dir
        g = work / f"graph_e{n}"
        if (g / "manifest.json").exists():
            c = graph_counts(g)
            entry.update({"edges": c["edges"], "users": c["users"], "tweets": c["tweets"]})
        for stage, why in not_run.items():
            entry["stages"][stage] = {"stage": stage, "status": "not_measured", "reason": why, "machine_before": state}
        for stage in stages:
            print(f"{label} {stage} ...", flush=True)
            rec = measure(stage, n, synth, work, args, spark)
            entry["stages"][stage] = rec
            if stage == "build" and rec.get("status") == "measured":
                entry.update({"edges": rec["edges"], "users": rec["users"], "tweets": rec["tweets"]})
            save(results, out, plot_path)
            msg = rec.get("status")
            if rec.get("status") == "measured":
                msg = f"{rec['wall_s']:.1f} s, peak {rec['peak_rss_bytes'] / 2**20:,.0f} MiB"
            else:
                msg += f" ({rec.get('reason')})"
            print(f"{label} {stage}: {msg}", flush=True)
        if not args.keep_outputs:
            for stage in ("coengage", "walk", "spark", "spark-logs", "knn"):
                if stage in stages:
                    _, o = stage_commands(stage, n, Path(synth["dir"]), work, args)
                    if o is not None and o.exists():
                        shutil.rmtree(o, ignore_errors=True) if o.is_dir() else o.unlink()
                        m = Path(str(o) + ".manifest.json")
                        if m.exists():
                            m.unlink()
    results["runs"][-1]["end"] = machine_state()
    save(results, out, plot_path)
    print(table(results))
    for stage, f in results["fits"].items():
        te, me = f["time_exponent"], f["memory_exponent"]
        print(f"fit {stage}: time ~ E^{te:.2f}, memory ~ E^{me:.2f} over {f['points']} sizes" if te is not None
              else f"fit {stage}: fewer than 2 measured sizes")
    print(f"wrote {out} and {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
