"""``run_dir/report.html``: one self-contained page describing a `coengage run`.

Sections: the evaluation table (models x engagement HITS@10 / MRR, classification macro-F1,
pair retrieval), graph statistics with degree plots, pair statistics with sample pairs side
by side, embedding quality (link prediction per epoch and per relation, nearest-neighbour
label agreement), training curves (loss parts and tokens/s per model) and the stages'
timings. Plots are PNGs inlined as base64 ``data:`` URIs and the CSS is inline, so the file
has no external reference and can be mailed or archived on its own.

:func:`write_report` reads only artifacts under the run directory; :func:`eval_table` and
:func:`format_table` give the final table the CLI prints.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from coengage.artifacts import atomic_file

log = logging.getLogger(__name__)

EVAL_COLUMNS = (("hits@10", "engagement HITS@10"), ("mrr", "engagement MRR"), ("macro_f1", "classify macro-F1"),
                ("pairs_mrr", "pairs MRR"), ("pairs_hr@10", "pairs HR@10"), ("pairs_mpr", "pairs MPR"))

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.4}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:.8em 0}th,td{border:1px solid #ccc;padding:.25em .6em;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.text{max-width:480px;font-size:.9em}img{max-width:100%;border:1px solid #ddd;margin:.3em 0}
.note{color:#666;font-size:.9em}.best{font-weight:bold;background:#eef8ee}code{background:#f4f4f4;padding:0 .2em}
"""


# --------------------------------------------------------------------------- helpers
def _esc(v) -> str:
    return html.escape("" if v is None else str(v))


def _num(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return "nan" if np.isnan(v) else f"{float(v):.{digits}f}"
    return _esc(v)


def _table(header: list[str], rows: list[list], num_cols: set | None = None, row_class: list | None = None,
           digits: int = 4) -> str:
    num_cols = num_cols or set()
    out = ["<table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>"]
    for i, r in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        cells = []
        for j, v in enumerate(r):
            if j in num_cols:
                cells.append(f'<td class="num">{_num(v, digits)}</td>')
            else:
                cells.append(f'<td class="text">{_esc(v)}</td>' if isinstance(v, str) and len(v) > 60 else f"<td>{_esc(v)}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    return "\n".join(out + ["</table>"])


def _png(path_or_fig, alt: str) -> str:
    """An <img> with the PNG inlined (a file path or a matplotlib figure)."""
    if isinstance(path_or_fig, (str, os.PathLike)):
        data = Path(path_or_fig).read_bytes()
    else:
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        path_or_fig.tight_layout()
        path_or_fig.savefig(buf, format="png", dpi=90)
        plt.close(path_or_fig)
        data = buf.getvalue()
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# --------------------------------------------------------------------------- the evaluation table
def eval_table(run_dir: str | os.PathLike) -> dict[str, dict]:
    """``{model: summary figures + seeds}`` from ``run_dir/eval/*.json`` (trained models first)."""
    run_dir = Path(run_dir)
    rows = {}
    files = sorted((run_dir / "eval").glob("*.json")) if (run_dir / "eval").is_dir() else []
    stages = (_read_json(run_dir / "run.json") or {}).get("stages", [])
    order = [s.split(".", 1)[1] for s in stages if s.startswith("eval.")]  # the config's order
    files.sort(key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.stem))
    for f in files:
        m = _read_json(f)
        if not m:
            continue
        s = dict(m.get("summary", {}))
        eng = m.get("tasks", {}).get("engagement", {})
        s["seeds"] = len(eng.get("per_seed", [])) or None
        s["candidates"] = eng.get("candidates")
        s["mean_candidates"] = eng.get("mean_candidates")  # absent in results written before it existed
        s["chance_hits@10"] = eng.get("random_hits@10")
        s["test_users"] = eng.get("test_users")
        rows[f.stem] = s
    return rows


def format_table(rows: dict[str, dict]) -> str:
    """The final table as plain text (model x HITS@10, MRR, macro-F1), with the seeds used."""
    cols = [(k, t) for k, t in EVAL_COLUMNS[:3]]
    width = max([len("model")] + [len(n) for n in rows])
    head = f"{'model':<{width}}  " + "  ".join(f"{t:>18}" for _, t in cols) + "  seeds"
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_num(r.get(k)):>18}" for k, _ in cols) + f"  {r.get('seeds') or '–':>5}")
    if rows:
        any_row = next(iter(rows.values()))
        mean = any_row.get("mean_candidates")
        really = (f" (here {mean:,.0f} on average: chance HITS@10 = {any_row.get('chance_hits@10'):.4f})"
                  if mean is not None and any_row.get("chance_hits@10") is not None else "")
        lines.append(f"engagement: each test user ranks 1 engaged held-out tweet among up to {any_row.get('candidates')} "
                     f"candidates{really} (all test tweets when there are fewer), median over the seeds;\n"
                     "classify: logistic regression on the frozen features, test macro-F1")
    return "\n".join(lines)


# --------------------------------------------------------------------------- sections
def _eval_section(run_dir: Path) -> str:
    rows = eval_table(run_dir)
    if not rows:
        return "<h2 id='eval'>Evaluation</h2><p class='note'>No evaluation results (eval disabled or not run).</p>"
    cols = [c for c in EVAL_COLUMNS if any(c[0] in r for r in rows.values())]
    best = {k: max((r.get(k) for r in rows.values() if r.get(k) is not None), default=None) for k, _ in cols}
    header = ["model"] + [t for _, t in cols] + ["seeds", "test users", "candidates (up to)"]
    body = []
    for name, r in rows.items():
        cells = [f"<td>{_esc(name)}</td>"]
        for k, _ in cols:
            v = r.get(k)
            mark = ' best' if v is not None and v == best[k] and k != "pairs_mpr" else ""
            cells.append(f'<td class="num{mark}">{_num(v)}</td>')
        cells += [f'<td class="num">{_num(r.get(x))}</td>' for x in ("seeds", "test_users", "candidates")]
        body.append("<tr>" + "".join(cells) + "</tr>")
    table = ("<table id='eval-table'><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>\n"
             + "\n".join(body) + "</table>")
    return ("<h2 id='eval'>Evaluation</h2>"
            "<p>Frozen tweet embeddings ([CLS] ‖ mean of tokens) on the held-out tweets (never seen by embed, mine or "
            "training). <b>Engagement</b>: a two-tower model over TwHIN user embeddings and tweet features; each test "
            "user ranks one engaged test tweet among the candidates; HITS@10 and MRR are medians over the seeds. "
            "<b>Classify</b>: logistic regression, test macro-F1. <b>Pairs</b>: retrieval of held-out co-engaged "
            "tweet pairs by cosine (MPR: lower is better). Best value per column in bold.</p>" + table)


def _graph_section(run_dir: Path) -> str:
    stats = _read_json(run_dir / "stats" / "stats.json")
    if not stats:
        return "<h2 id='graph'>Graph</h2><p class='note'>No graph statistics.</p>"
    nn = stats["num_nodes"]
    rows = [["users", nn.get("user")], ["tweets", nn.get("tweet")], ["edges (distinct user, tweet, type)", stats["total_edges"]]]
    rows += [[f"edges: {r} (weight {stats['type_weights'].get(r, 1.0):g})", stats["num_edges"].get(r)] for r in stats["relations"]]
    rows += [["rows read", stats.get("rows_read")], ["duplicate rows merged", stats.get("duplicates_merged")]]
    rows += [[f"dropped: {k}", v] for k, v in stats.get("dropped", {}).items() if v]
    for k, v in (stats.get("texts") or {}).items():
        rows.append([k.replace("_", " "), v])
    graph_manifest = _read_json(run_dir / "graph" / "manifest.json") or {}
    split = graph_manifest.get("split")
    if split:
        for k, v in (split.get("counts") or {}).items():
            rows.append([f"held out: {k}", v])
    deg_rows = []
    for node_type, per in stats["degrees"].items():
        for name, s in per.items():
            deg_rows.append([node_type, name, s["nodes"], s["zero_degree"], s["mean"], s["median"], s["p90"], s["p99"], s["max"]])
    plot = run_dir / "stats" / "degree_distribution.png"
    return ("<h2 id='graph'>Graph statistics</h2>" + _table(["", "count"], rows, {1})
            + "<h3>Degrees (distinct edges per node)</h3>"
            + _table(["node type", "engagement", "nodes", "zero", "mean", "median", "p90", "p99", "max"], deg_rows,
                     {2, 3, 4, 5, 6, 7, 8}, digits=2)
            + (_png(plot, "degree distributions") if plot.exists() else ""))


def _pairs_section(run_dir: Path, samples: int, seed: int) -> str:
    pairs = run_dir / "pairs.parquet"
    if not pairs.exists():
        return "<h2 id='pairs'>Pairs</h2><p class='note'>No pair file.</p>"
    from mining.report import pair_report

    with tempfile.TemporaryDirectory(prefix="coengage-report-") as tmp:
        out = Path(tmp) / "pairs"
        summary = pair_report(pairs, run_dir / "graph", out, samples=samples, seed=seed)
        pngs = [_png(p, p.stem) for p in sorted(out.glob("*.png"))]
    keys = ["method", "pairs", "tweets", "tweets_paired", "tweets_with_2plus_engagers", "coverage_2plus_engagers",
            "mean_pairs_per_paired_tweet", "max_pairs_per_tweet", "score_min", "score_median", "score_max",
            "mean_engagers_paired", "mean_engagers_all"]
    rows = [[k.replace("_", " "), summary.get(k)] for k in keys if k in summary]
    agree = summary.get("label_agreement")
    if isinstance(agree, dict):
        for k, v in agree.items():
            if isinstance(v, (int, float)):
                rows.append([f"label agreement ({summary.get('label_column')}): {k}", v])
    counts = summary.get("mine_counts") or {}
    drops = [[k.replace("_", " "), v] for k, v in counts.items() if isinstance(v, (int, float))]
    sample_html = _sample_pairs(pairs, run_dir / "graph", samples, seed, summary.get("label_column"))
    return ("<h2 id='pairs'>Mined pairs</h2>" + _table(["", "value"], rows, {1})
            + "<h3>Mining counts (candidates and post-processing drops)</h3>" + _table(["", "count"], drops, {1})
            + "".join(pngs) + "<h3>Sample pairs, side by side</h3>" + sample_html)


def _sample_pairs(pairs: Path, graph_dir: Path, n: int, seed: int, label_col: str | None) -> str:
    import pandas as pd

    from graph.artifact import load
    from mining.pairs_io import read_pairs

    frame = read_pairs(pairs)
    if not len(frame):
        return "<p class='note'>No pairs.</p>"
    texts = load(graph_dir).texts().set_index("tweet_id")
    rng = np.random.default_rng(seed)
    top = frame.nlargest(min(n, len(frame)), "score")
    rand = frame.iloc[np.sort(rng.choice(len(frame), size=min(n, len(frame)), replace=False))]
    out = []
    for title, part in (("highest scores", top), ("random sample", rand)):
        rows = []
        for a, b, s in zip(part["tweet_a"].astype(str), part["tweet_b"].astype(str), part["score"]):
            ta = texts["text"].get(a) if a in texts.index else None
            tb = texts["text"].get(b) if b in texts.index else None
            la = texts[label_col].get(a) if label_col and label_col in texts.columns and a in texts.index else None
            lb = texts[label_col].get(b) if label_col and label_col in texts.columns and b in texts.index else None
            row = [float(s), ta, tb]
            if label_col:
                row += [la, lb]
            rows.append(row)
        header = ["score", "tweet A", "tweet B"] + ([f"{label_col} A", f"{label_col} B"] if label_col else [])
        out.append(f"<h4>{_esc(title)}</h4>" + _table(header, rows, {0}))
    del pd
    return "".join(out)


def _embed_section(run_dir: Path, label_col: str | None) -> str:
    m = _read_json(run_dir / "emb" / "manifest.json")
    if not m:
        return "<h2 id='embed'>Embeddings</h2><p class='note'>No embeddings.</p>"
    met = m.get("metrics", {})
    rows = [["overall", met.get("count"), met.get("mrr"), met.get("hits@1"), met.get("hits@10"), met.get("hits@50")]]
    for r, v in (met.get("per_relation") or {}).items():
        rows.append([r, v.get("count"), v.get("mrr"), v.get("hits@1"), v.get("hits@10"), v.get("hits@50")])
    cands = (m.get("config") or {}).get("eval_candidates")
    html_ = ("<h2 id='embed'>Embedding quality (TwHIN)</h2>"
             f"<p>Held-out edges ranked against {_esc(cands)} random tweets after the last epoch "
             f"(dim {_esc(m.get('dim'))}, {_esc(len(m.get('history', [])))} epochs).</p>"
             + _table(["relation", "edges", "MRR", "HITS@1", "HITS@10", "HITS@50"], rows, {1, 2, 3, 4, 5}))
    agreement = _knn_agreement(run_dir, label_col)
    if agreement:
        html_ += ("<p>Nearest-neighbour label agreement of tweet embeddings (share of each tweet's 10 nearest tweets "
                  f"by cosine with the same <code>{_esc(agreement[0])}</code>): <b>{agreement[1]:.3f}</b> "
                  f"(random embeddings: {agreement[2]:.3f}).</p>")
    hist = m.get("history") or []
    if hist:
        plt = _plt()
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        ep = [h["epoch"] for h in hist]
        axes[0].plot(ep, [h.get("loss") for h in hist], marker="o")
        axes[0].set(title="training loss", xlabel="epoch")
        for k in ("mrr", "hits@10", "hits@50"):
            axes[1].plot(ep, [np.nan if h.get(k) is None else h[k] for h in hist], marker="o", label=k)
        axes[1].set(title="held-out link prediction", xlabel="epoch")
        axes[1].legend()
        html_ += _png(fig, "embedding training")
    return html_


def _knn_agreement(run_dir: Path, label_col: str | None):
    try:
        from graph.artifact import load
        from graph.embed.evaluation import knn_label_agreement, random_label_agreement

        graph = load(run_dir / "graph")
        texts = graph.texts()
        col = label_col if label_col in texts.columns else None
        if col is None:
            return None
        keep = texts[texts[col].notna()]
        if len(keep) > 5000:
            keep = keep.sample(5000, random_state=0)
        tweet = np.load(run_dir / "emb" / "tweet.npy", mmap_mode="r")
        x = np.asarray(tweet[keep["node"].to_numpy()])
        labels = keep[col].astype(str).to_numpy()
        return col, knn_label_agreement(x, labels, k=10), random_label_agreement(labels)
    except Exception as e:  # the report must not fail on an optional figure
        log.warning("report: no nearest-neighbour label agreement (%s)", e)
        return None


def _train_section(run_dir: Path) -> str:
    models = sorted(p for p in (run_dir / "models").iterdir() if p.is_dir() and not p.name.endswith(".work")) \
        if (run_dir / "models").is_dir() else []
    if not models:
        return "<h2 id='train'>Training</h2><p class='note'>No trained models.</p>"
    stages = (_read_json(run_dir / "run.json") or {}).get("stages", [])
    order = [s.split(".", 1)[1] for s in stages if s.startswith("train.")]  # the config's order
    models.sort(key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))
    logs = {}
    rows = []
    for mdir in models:
        recs = []
        if (mdir / "train_log.jsonl").exists():
            recs = [json.loads(line) for line in (mdir / "train_log.jsonl").read_text().splitlines() if line.strip()]
        logs[mdir.name] = recs
        man = _read_json(mdir / "manifest.json") or {}
        cfg = (_read_json(mdir / "coengage_config.json") or {}).get("train", {})
        toks = [r.get("tok/s") for r in recs if r.get("tok/s")]
        rows.append([mdir.name, man.get("objective"), cfg.get("from_scratch") or man.get("base_model"), man.get("steps"),
                     cfg.get("batch_size"), (man.get("counts") or {}).get("pairs_used"), (man.get("final") or {}).get("loss"),
                     float(np.median(toks)) if toks else None, (man.get("timing") or {}).get("seconds")])
    html_ = ("<h2 id='train'>Language-model training</h2>"
             + _table(["model", "objective", "start", "steps", "batch (pairs)", "pairs used", "final loss",
                       "median tokens/s", "seconds"], rows, {3, 4, 5, 6, 7, 8}))
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, recs in logs.items():
        if not recs:
            continue
        step = [r["step"] for r in recs]
        axes[0].plot(step, [r.get("loss") for r in recs], label=f"{name}: total")
        if any(r.get("social") is not None for r in recs):
            axes[0].plot(step, [r.get("social") for r in recs], ls="--", label=f"{name}: social")
        axes[1].plot(step, [r.get("mlm") for r in recs], label=name)
        axes[2].plot(step, [r.get("tok/s") for r in recs], label=name)
    axes[0].set(title="loss (total, social)", xlabel="step")
    axes[1].set(title="MLM loss", xlabel="step")
    axes[2].set(title="tokens/s", xlabel="step")
    for ax in axes:
        ax.legend(fontsize=8)
    return html_ + _png(fig, "training curves")


def _stages_section(run_dir: Path) -> str:
    rows = []
    for f in sorted((run_dir / ".stages").glob("*.json"), key=lambda p: p.stat().st_mtime) if (run_dir / ".stages").is_dir() else []:
        r = _read_json(f) or {}
        rows.append([r.get("stage"), r.get("finished"), r.get("seconds"), r.get("cpu_seconds"), r.get("fingerprint")])
    return ("<h2 id='stages'>Stages</h2><p class='note'>When each stage last ran, its wall-clock and CPU seconds "
            "(this process and its waited children), and its fingerprint (config + inputs).</p>"
            + _table(["stage", "finished (UTC)", "seconds", "CPU seconds", "fingerprint"], rows, {2, 3}))


def render(run_dir: str | os.PathLike, *, samples: int = 8, seed: int = 0, label_col: str | None = None,
           title: str | None = None) -> str:
    """The report of ``run_dir`` as one HTML string."""
    run_dir = Path(run_dir)
    parts = [_eval_section(run_dir), _graph_section(run_dir), _pairs_section(run_dir, samples, seed),
             _embed_section(run_dir, label_col), _train_section(run_dir), _stages_section(run_dir)]
    title = title or f"coengage run: {run_dir.name}"
    nav = " · ".join(f"<a href='#{a}'>{t}</a>" for a, t in (("eval", "evaluation"), ("graph", "graph"), ("pairs", "pairs"),
                                                           ("embed", "embeddings"), ("train", "training"), ("stages", "stages")))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{_esc(title)}</h1><p class='note'>{_esc(str(run_dir))}</p><p>{nav}</p>"
            + "\n".join(parts) + "</body></html>\n")


def write_report(run_dir: str | os.PathLike, config=None, out: str | os.PathLike | None = None) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path."""
    run_dir = Path(run_dir)
    samples, seed, label_col = 8, 0, None
    if config is not None:
        samples = int(config.report.get("samples", 8))
        seed = int(config.seed)
        label_col = config.eval.get("label_col") or None
    out = Path(out) if out else run_dir / "report.html"
    page = render(run_dir, samples=samples, seed=seed, label_col=label_col)
    with atomic_file(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("wrote %s", out)
    return out
