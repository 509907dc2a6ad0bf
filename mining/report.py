"""`coengage mine report`: plots, figures and sample pairs for a pair file.

Writes into OUT_DIR (default ``<pairs>.report/``):

* ``score_hist.png``: histogram of pair scores;
* ``pairs_per_tweet.png``: how many pairs each paired tweet is in;
* ``popularity.png``: engagers per tweet (distinct users in the graph), paired tweets vs all;
* ``report.md`` and ``report.html``: the figures below and sample pairs side by side
  (the best-scoring ones and a seeded random sample);
* ``summary.json``: the same figures, machine-readable.

Figures: pair and tweet counts, coverage (the fraction of tweets with >= 2 engagers that are in
at least one pair) and, when the texts table has a label column (``topic``, ``subreddit``,
``label``, or ``--label-col``), the *same-label rate* of the pairs next to the rate for random
pairs of tweets (sum over labels of p(label)^2 over tweets with a text and a label).
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path

import numpy as np

from coengage.artifacts import atomic_dir, check_output, write_json
from coengage.errors import ArtifactError, InputError

REPORT_KIND = "coengage.pair_report"  # (reports carry no manifest; recognised by their files)
log = logging.getLogger(__name__)

LABEL_COLUMNS = ("topic", "subreddit", "label")


def label_agreement(a, b, labels) -> dict:
    """Same-label rate of pairs ``(a, b)`` (node ids) vs the rate for random tweet pairs.

    ``labels``: object array by node id, None where unknown. Pairs with an unknown label on
    either side are left out (``pairs_labelled`` says how many count).
    """
    import pandas as pd

    labels = np.asarray(labels, dtype=object)
    known = pd.notna(pd.Series(labels)).to_numpy()
    codes, _ = pd.factorize(pd.Series(labels).where(known))
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    both = known[a] & known[b] if len(a) else np.zeros(0, bool)
    same = codes[a[both]] == codes[b[both]]
    p = np.bincount(codes[known]) / max(int(known.sum()), 1) if known.any() else np.zeros(0)
    random_rate = float((p ** 2).sum())
    rate = float(same.mean()) if len(same) else float("nan")
    return {"same_label_rate": rate, "random_rate": random_rate,
            "lift": rate / random_rate if random_rate > 0 and len(same) else float("nan"),
            "pairs_labelled": int(both.sum()), "labels": int(len(p))}


def _plots(out: Path, score, per_tweet, engagers_paired, engagers_all, method: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(score, bins=50, color="tab:blue")
    ax.set(title=f"pair scores ({method})", xlabel="score", ylabel="pairs")
    fig.tight_layout()
    fig.savefig(out / "score_hist.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    top = int(per_tweet.max()) if len(per_tweet) else 1
    ax.hist(per_tweet, bins=np.arange(1, top + 2) - 0.5, color="tab:green")
    ax.set(title="pairs per paired tweet", xlabel="pairs the tweet is in", ylabel="tweets")
    fig.tight_layout()
    fig.savefig(out / "pairs_per_tweet.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    hi = max(int(engagers_all.max()) if len(engagers_all) else 1, 1)
    bins = np.unique(np.logspace(0, np.log10(hi + 1), 40).astype(int))
    ax.hist(engagers_all, bins=bins, alpha=0.5, label="all tweets", density=True)
    ax.hist(engagers_paired, bins=bins, alpha=0.5, label="tweets in pairs (weighted by pairs)", density=True)
    ax.set_xscale("log")
    ax.set(title="popularity of paired tweets", xlabel="distinct engagers", ylabel="density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "popularity.png", dpi=100)
    plt.close(fig)


def _short(text, n: int = 280) -> str:
    text = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _sample_rows(frame, n: int, seed: int):
    best = frame.sort_values("score", ascending=False, kind="stable").head(max(n // 2, 1))
    rest = frame.drop(best.index)
    rand = rest.sample(min(len(rest), n - len(best)), random_state=seed) if len(rest) else rest
    return best.assign(sample="top score"), rand.assign(sample="random")


def _markdown(summary: dict, samples, label_col) -> str:
    lines = [f"# Pair report: {summary['pairs_file']}", "",
             f"Method **{summary['method']}**, graph `{summary['graph']}`.", "", "| figure | value |", "|---|---|"]
    for key in ("pairs", "tweets_paired", "tweets_with_2plus_engagers", "coverage_2plus_engagers",
                "mean_pairs_per_paired_tweet", "max_pairs_per_tweet", "score_min", "score_median", "score_max",
                "mean_engagers_paired", "mean_engagers_all"):
        lines.append(f"| {key} | {_fmt(summary.get(key))} |")
    la = summary.get("label_agreement")
    if la:
        lines += [f"| same-{label_col} rate | {_fmt(la['same_label_rate'])} |",
                  f"| random-pair same-{label_col} rate | {_fmt(la['random_rate'])} |",
                  f"| lift | {_fmt(la['lift'])} |"]
    lines += ["", "![scores](score_hist.png) ![pairs per tweet](pairs_per_tweet.png) ![popularity](popularity.png)", ""]
    for name, rows in samples:
        lines += [f"## Sample pairs: {name}", ""]
        head = "| score | tweet_a | text_a | tweet_b | text_b |"
        sep = "|---|---|---|---|---|"
        if label_col:
            head = f"| score | tweet_a | {label_col} a | text_a | tweet_b | {label_col} b | text_b |"
            sep = "|---|---|---|---|---|---|---|"
        lines += [head, sep]
        for r in rows.itertuples():
            cells = [_fmt(r.score), r.tweet_a]
            cells += ([str(r.label_a)] if label_col else []) + [_short(r.text_a), r.tweet_b]
            cells += ([str(r.label_b)] if label_col else []) + [_short(r.text_b)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in map(str, cells)) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _html(summary: dict, samples, label_col) -> str:
    e = html.escape
    out = ["<!doctype html><html><head><meta charset='utf-8'>",
           f"<title>Pair report: {e(summary['pairs_file'])}</title>",
           "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
           "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}td.t{width:40%}</style></head><body>",
           f"<h1>Pair report: {e(summary['pairs_file'])}</h1>",
           f"<p>Method <b>{e(summary['method'])}</b>, graph <code>{e(summary['graph'])}</code>.</p><table>"]
    for key, value in summary.items():
        if not isinstance(value, (dict, list)):
            out.append(f"<tr><th>{e(key)}</th><td>{e(_fmt(value))}</td></tr>")
    for key, value in (summary.get("label_agreement") or {}).items():
        out.append(f"<tr><th>{e(label_col)}: {e(key)}</th><td>{e(_fmt(value))}</td></tr>")
    out.append("</table>")
    for img in ("score_hist.png", "pairs_per_tweet.png", "popularity.png"):
        out.append(f"<img src='{img}' alt='{img}'>")
    for name, rows in samples:
        out.append(f"<h2>Sample pairs: {e(name)}</h2><table><tr><th>score</th><th>tweet a</th><th>tweet b</th></tr>")
        for r in rows.itertuples():
            la = f" <small>[{e(str(r.label_a))}]</small>" if label_col else ""
            lb = f" <small>[{e(str(r.label_b))}]</small>" if label_col else ""
            out.append(f"<tr><td>{e(_fmt(r.score))}</td><td class='t'><b>{e(str(r.tweet_a))}</b>{la}<br>{e(_short(r.text_a, 1000))}</td>"
                       f"<td class='t'><b>{e(str(r.tweet_b))}</b>{lb}<br>{e(_short(r.text_b, 1000))}</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def pair_report(pairs_path: str | os.PathLike, graph_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                *, samples: int = 20, seed: int = 0, label_col: str | None = None, fmt: str | None = None,
                overwrite: bool = False) -> dict:
    """Write the report for a pair file made from GRAPH_DIR; returns the summary figures.

    ``out_dir`` (default PAIRS.report/) is checked first: an earlier report is replaced, anything
    else that exists there is refused unless ``overwrite``, and it may never be or contain an input."""
    import pandas as pd

    from graph.artifact import check_fingerprint, load
    from mining.mine import distinct_engagers
    from mining.pairs_io import manifest_path, read_manifest, read_pairs

    pairs_path = Path(pairs_path)
    out_dir = Path(out_dir) if out_dir is not None else pairs_path.with_name(pairs_path.name + ".report")
    check_output(out_dir, REPORT_KIND, "a pair report from `coengage mine report`", overwrite=overwrite,
                 inputs=[pairs_path, graph_dir], recognise=lambda p: (p / "summary.json").is_file() and (p / "report.html").is_file())
    graph = load(graph_dir)
    manifest = None
    if manifest_path(pairs_path).exists():
        manifest = read_manifest(pairs_path)
        check_fingerprint(str(manifest.get("graph_fingerprint")), graph, f"pair file {pairs_path}")
    else:
        log.warning("%s has no manifest; cannot check it was mined from %s", pairs_path, graph.path)
    frame = read_pairs(pairs_path, fmt=fmt)
    index = pd.Index(graph.tweet_ids)
    a = index.get_indexer(frame["tweet_a"].astype(str))
    b = index.get_indexer(frame["tweet_b"].astype(str))
    unknown = (a < 0) | (b < 0)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        bad = frame["tweet_a"].iloc[row] if a[row] < 0 else frame["tweet_b"].iloc[row]
        raise InputError(f"{pairs_path}: {int(unknown.sum())} pairs name tweets not in graph {graph.path} "
                         f"(first: row {row}, tweet id {bad!r})")
    texts = graph.texts()
    if label_col is None:
        label_col = next((c for c in LABEL_COLUMNS if c in texts.columns), None)
    elif label_col not in texts.columns:
        raise InputError(f"--label-col {label_col!r}: the graph's texts have columns {list(texts.columns)}")
    text_of = np.full(graph.num_tweets, None, dtype=object)
    text_of[texts["node"].to_numpy()] = texts["text"].to_numpy(dtype=object)
    labels = None
    if label_col:
        labels = np.full(graph.num_tweets, None, dtype=object)
        labels[texts["node"].to_numpy()] = texts[label_col].to_numpy(dtype=object)

    engagers = distinct_engagers(graph)
    score = frame["score"].to_numpy(dtype=np.float64)
    nodes = np.concatenate([a, b])
    per_tweet = np.bincount(nodes, minlength=graph.num_tweets)
    paired = per_tweet > 0
    eligible = engagers >= 2
    method = str(frame["method"].iloc[0]) if len(frame) else (manifest or {}).get("method", "?")
    summary = {
        "pairs_file": str(pairs_path),
        "graph": str(graph.path),
        "method": method,
        "pairs": int(len(frame)),
        "tweets": graph.num_tweets,
        "tweets_paired": int(paired.sum()),
        "tweets_with_2plus_engagers": int(eligible.sum()),
        "coverage_2plus_engagers": float(paired[eligible].mean()) if eligible.any() else 0.0,
        "mean_pairs_per_paired_tweet": float(per_tweet[paired].mean()) if paired.any() else 0.0,
        "max_pairs_per_tweet": int(per_tweet.max()) if len(per_tweet) else 0,
        "score_min": float(score.min()) if len(score) else float("nan"),
        "score_median": float(np.median(score)) if len(score) else float("nan"),
        "score_max": float(score.max()) if len(score) else float("nan"),
        "mean_engagers_paired": float(engagers[nodes].mean()) if len(nodes) else float("nan"),
        "mean_engagers_all": float(engagers.mean()) if len(engagers) else float("nan"),
        "label_column": label_col,
    }
    if labels is not None:
        summary["label_agreement"] = label_agreement(a, b, labels)
    if manifest:
        summary["mine_counts"] = manifest.get("counts", {})

    view = frame[["tweet_a", "tweet_b", "score"]].copy()
    view["text_a"], view["text_b"] = text_of[a], text_of[b]
    if labels is not None:
        view["label_a"], view["label_b"] = labels[a], labels[b]
    top, rand = _sample_rows(view, samples, seed) if len(view) else (view, view)
    sample_sets = [("highest scores", top), ("random", rand)]

    with atomic_dir(out_dir) as tmp:
        _plots(tmp, score, per_tweet[paired], engagers[nodes], engagers, method)
        (tmp / "report.md").write_text(_markdown(summary, sample_sets, label_col), encoding="utf-8")
        (tmp / "report.html").write_text(_html(summary, sample_sets, label_col), encoding="utf-8")
        write_json(tmp / "summary.json", summary)
    log.info("wrote pair report to %s", out_dir)
    if not out_dir.exists():  # pragma: no cover
        raise ArtifactError(f"{out_dir}: report was not written")
    summary["out_dir"] = str(out_dir)
    return summary


def print_summary(summary: dict) -> str:
    """A few lines for the terminal."""
    lines = [f"{summary['method']}: {summary['pairs']} pairs, {summary['tweets_paired']} tweets paired, "
             f"coverage (tweets with >= 2 engagers) {summary['coverage_2plus_engagers']:.3f}"]
    la = summary.get("label_agreement")
    if la:
        lines.append(f"same-{summary['label_column']} rate {la['same_label_rate']:.3f} vs random "
                     f"{la['random_rate']:.3f} (lift {la['lift']:.2f}, {la['pairs_labelled']} labelled pairs)")
    lines.append(f"report: {summary.get('out_dir')}")
    return "\n".join(lines)


__all__ = ["pair_report", "label_agreement", "print_summary"]
