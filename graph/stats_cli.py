"""`coengage graph stats GRAPH_DIR`: print counts and degree summaries, plot degree distributions."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Print a graph artifact's counts (users, tweets, edges per engagement type, rows read,
duplicates merged, dropped rows by reason) and degree summaries per node type (overall
and per engagement type), and write a PNG of the degree distributions on log-log axes
(one panel per node type)."""


def register(sub) -> None:
    p = sub.add_parser("stats", help="counts, degree summaries and a degree plot of GRAPH_DIR",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graph_dir", metavar="GRAPH_DIR", help="a directory written by `coengage graph build`")
    p.add_argument("--plot", metavar="PNG", help="where to write the degree plot (default GRAPH_DIR/degree_distribution.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the plot")
    p.add_argument("--json", metavar="FILE", help="also write the statistics as JSON to FILE ('-' prints JSON instead of the table)")
    p.set_defaults(func=run_stats)


def run_stats(args) -> int:
    import json
    from pathlib import Path

    from coengage.artifacts import write_json
    from graph.artifact import GraphArtifact
    from graph.stats import compute_stats, format_stats, plot_degrees

    graph = GraphArtifact(args.graph_dir)
    stats = compute_stats(graph)
    if args.json == "-":
        print(json.dumps(stats, indent=2))
    else:
        print(format_stats(stats))
        if args.json:
            write_json(args.json, stats)
    if not args.no_plot:
        out = Path(args.plot) if args.plot else graph.path / "degree_distribution.png"
        plot_degrees(graph, out)
        if args.json != "-":
            print(f"degree plot: {out}")
    return 0
