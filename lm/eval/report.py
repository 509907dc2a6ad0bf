"""Markdown tables of evaluation results (metrics.json files, benchmarks/results/quality.json)."""

from __future__ import annotations

COLUMNS = (("hits@10", "HITS@10"), ("mrr", "MRR"), ("macro_f1", "macro-F1"),
           ("pairs_mrr", "pairs MRR"), ("pairs_hr@10", "pairs HR@10"), ("pairs_hr@100", "pairs HR@100"), ("pairs_mpr", "pairs MPR"))


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def markdown_table(rows: dict, columns=COLUMNS) -> str:
    """``rows``: {row name: {metric: value}} -> a markdown table with the metrics that occur."""
    present = [(k, title) for k, title in columns if any(k in r for r in rows.values())]
    lines = ["| model | " + " | ".join(t for _, t in present) + " |", "|---|" + "---:|" * len(present)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(r.get(k)) for k, _ in present) + " |")
    return "\n".join(lines)


def relative_gain(a: float | None, b: float | None) -> float | None:
    """(a - b) / b, or None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return (a - b) / b
