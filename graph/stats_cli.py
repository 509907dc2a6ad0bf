"""`coengage graph stats GRAPH_DIR`: print counts and degree summaries, plot degree distributions."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Print a graph artifact's counts (users, tweets, edges per engagement type, rows read,
duplicates merged, dropped rows by reason) and degree summaries per node type (overall
and per engagement type), and write a PNG of the degree distributions on log-log axes
(one panel per node type).

With --engine spark the statistics are computed by Apache Spark straight from raw logs
(--logs, with the column options and cleaning of `coengage graph build`; no GRAPH_DIR, no
plot): nodes, edges per type, rows read, duplicates merged, dropped rows per reason and the
same degree summaries. See docs/spark.md."""


def register(sub) -> None:
    p = sub.add_parser("stats", help="counts, degree summaries and a degree plot of GRAPH_DIR",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graph_dir", metavar="GRAPH_DIR", nargs="?", default=None,
                   help="a directory written by `coengage graph build` (omit with --engine spark --logs)")
    p.add_argument("--plot", metavar="PNG", help="where to write the degree plot (default GRAPH_DIR/degree_distribution.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the plot")
    p.add_argument("--json", metavar="FILE", help="also write the statistics as JSON to FILE ('-' prints JSON instead of the table)")
    g = p.add_argument_group("spark engine (raw logs)")
    g.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local: statistics of GRAPH_DIR (default); spark: statistics of raw logs (--logs) by Spark")
    g.add_argument("--logs", nargs="+", action="extend", metavar="FILE", help="engagement log files or globs")
    g.add_argument("--config", metavar="YAML", help="a `graph build` YAML config (columns, types, ...); flags override it")
    g.add_argument("--user-col", help="log column with the user id (default user_id)")
    g.add_argument("--item-col", help="log column with the tweet id (default tweet_id)")
    g.add_argument("--type-col", help="log column with the engagement type (default engagement; 'none': one type)")
    g.add_argument("--time-col", help="log column with the timestamp (default timestamp; 'none': all 0)")
    g.add_argument("--types", metavar="T=W,...", help="engagement type vocabulary (as in `graph build`)")
    g.add_argument("--unknown-types", choices=("error", "keep", "drop"), help="a type not in --types (as in `graph build`)")
    g.add_argument("--log-format", choices=("auto", "csv", "tsv", "parquet", "jsonl"), help="log format (default auto)")
    g.add_argument("--encoding", help="text encoding of CSV/TSV/JSONL logs (default utf-8)")
    g.add_argument("--strict", action="store_true", default=None, help="a row that would be dropped is an error")
    g.add_argument("--spark-master", metavar="URL", default=None,
                   help="Spark master (default: the session of spark-submit, else local[*])")
    g.add_argument("--spark-conf", metavar="KEY=VALUE", action="append", default=[], help="a Spark setting (repeatable)")
    p.set_defaults(func=run_stats)


def run_stats(args) -> int:
    import json
    from pathlib import Path

    from coengage.artifacts import write_json
    from graph.artifact import GraphArtifact
    from graph.stats import compute_stats, format_stats, plot_degrees

    if args.engine == "spark":
        return _run_stats_spark(args)
    if args.graph_dir is None:
        from coengage.errors import InputError

        raise InputError("GRAPH_DIR is required (or --engine spark --logs FILE ...)")
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


def _run_stats_spark(args) -> int:
    import json

    from coengage.artifacts import write_json
    from coengage.errors import InputError
    from graph.build import BuildConfig
    from graph.spark_stats import compute_stats_spark, format_stats_spark
    from mining.spark.session import SparkOptions, parse_conf

    if args.graph_dir is not None:
        raise InputError("--engine spark computes statistics of raw logs (--logs); for GRAPH_DIR use --engine local")
    cfg = BuildConfig.from_yaml(args.config) if args.config else BuildConfig()
    cfg = cfg.updated(log=args.logs, user_col=args.user_col, item_col=args.item_col, type_col=args.type_col,
                      time_col=args.time_col, types=args.types, unknown_types=args.unknown_types,
                      format=args.log_format, encoding=args.encoding, strict=args.strict)
    stats = compute_stats_spark(cfg, SparkOptions(master=args.spark_master, conf=parse_conf(args.spark_conf)))
    if args.json == "-":
        print(json.dumps(stats, indent=2))
    else:
        print(format_stats_spark(stats))
        if args.json:
            write_json(args.json, stats)
    return 0
