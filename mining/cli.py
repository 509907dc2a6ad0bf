"""`coengage mine GRAPH_DIR --method walk|coengage|knn --out PAIRS` and `coengage mine report PAIRS`.

Parses arguments and calls :func:`mining.mine.mine` / :func:`mining.report.pair_report`;
numba, faiss and matplotlib are imported only inside the command functions.
"""

from __future__ import annotations

import argparse

from mining.mine import METHODS, WalkConfig

DESCRIPTION = """\
Mine positive pairs of socially similar tweets from a graph built by `coengage graph build`.

Methods:
  walk      Pixie-style random walks with restart, tweet -> user -> tweet; score = visits.
  coengage  exact co-engagement counting (shared engagers, optionally within a time window).
  knn       nearest tweets by cosine of their graph embeddings (--embeddings EMB_DIR from
            `coengage graph embed`); FAISS when installed and the graph is large, exact otherwise.

Every method's candidates are then cleaned, in this order: self-pairs, scores below
--min-score, pairs with a tweet without text, pairs whose texts are identical or
near-identical after normalisation (retweets, copy-paste), beyond --max-pairs-per-tweet per
query tweet, the same unordered pair twice, and beyond --popularity-cap per tweet. Each drop
is counted in the manifest written beside the output (OUT.manifest.json).

Output columns: tweet_a, tweet_b (original tweet ids), score, method [, text_a, text_b].

Engines (--engine): local (default; Numba on this machine) or spark (coengage only; the same
pairs and scores, computed by Apache Spark; reads GRAPH_DIR or, with --logs, the raw logs
with the cleaning rules of `coengage graph build`). See docs/spark.md.

See also `coengage mine report PAIRS --graph GRAPH_DIR` (plots, figures, sample pairs).
"""

REPORT_DESCRIPTION = """\
Write a report for a pair file: PNG plots (score histogram, pairs per tweet, popularity of
paired tweets), report.md and report.html with the figures and sample pairs side by side,
and summary.json. With a label column in the graph's texts (topic, subreddit, label) it
gives the fraction of pairs whose two tweets share the label, next to the rate for random
pairs of tweets.
"""


class _MineParser(argparse.ArgumentParser):
    """`mine` takes GRAPH_DIR as its first argument, unless that argument is `report`."""

    report_parser: argparse.ArgumentParser | None = None

    def parse_known_args(self, args=None, namespace=None):
        if args and args[0] == "report" and self.report_parser is not None:
            return self.report_parser.parse_known_args(args[1:], namespace)
        return super().parse_known_args(args, namespace)


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return v


def _optional_cap(text: str):
    if text.lower() in ("none", "0", "off"):
        return None
    return _positive_int(text)


def register(sub) -> None:
    p = sub.add_parser("mine", help="mine positive tweet pairs from the graph (walk | coengage | knn)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="A graph directory literally named 'report' must be given as ./report.")
    p.__class__ = _MineParser
    p.add_argument("graph_dir", metavar="GRAPH_DIR", nargs="?", default=None,
                   help="graph artifact directory (from `coengage graph build`); omit it with --engine spark --logs")
    p.add_argument("--method", choices=METHODS, default="walk", help="mining method (default: walk)")
    p.add_argument("--out", required=True, metavar="PATH", help="pair file to write (atomically); "
                   "its manifest goes to PATH.manifest.json. An earlier pair file there is replaced; anything else "
                   "is refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace whatever exists at PATH (never an input)")
    p.add_argument("--format", dest="fmt", choices=("parquet", "tsv", "jsonl"), default=None,
                   help="output format (default: from the file name: .tsv[.gz], .jsonl[.gz], else parquet)")
    p.add_argument("--with-text", action="store_true", help="add text_a and text_b columns")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) instead of warning when candidate pairs "
                   "involve tweets without text, embeddings have zero vectors, or no pair is left")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    g = p.add_argument_group("candidates (all methods)")
    g.add_argument("--top-k", "--k", dest="top_k", type=_positive_int, default=20,
                   help="candidates per query tweet before post-processing: most visited (walk), most "
                        "shared engagers (coengage), nearest (knn) (default: 20)")

    g = p.add_argument_group("post-processing (all methods)")
    g.add_argument("--max-pairs-per-tweet", type=_optional_cap, default=10,
                   help="keep each query tweet's N best pairs ('none' = no limit; default: 10)")
    g.add_argument("--popularity-cap", type=_optional_cap, default=50,
                   help="a tweet joins at most M pairs; the highest-scoring pairs win ('none' = no cap; default: 50)")
    g.add_argument("--min-score", type=float, default=None,
                   help="drop pairs scoring below this (knn: cosine, e.g. 0.5; walk: visits; coengage: its "
                        "score) (default: none)")
    g.add_argument("--keep-near-duplicates", action="store_true",
                   help="keep pairs whose normalised texts are identical or near-identical (dropped by default)")
    g.add_argument("--near-dup-jaccard", type=float, default=0.9,
                   help="word-shingle Jaccard at or above which two texts count as near-identical; 1 = only "
                        "identical normalised texts (default: 0.9)")
    g.add_argument("--shingle-size", type=_positive_int, default=1,
                   help="words per shingle in the Jaccard check (default: 1, word sets)")
    g.add_argument("--drop-hashtags", action="store_true",
                   help="remove hashtags entirely when normalising texts (default: keep the word, drop '#')")
    g.add_argument("--keep-without-text", action="store_true",
                   help="keep pairs with tweets that have no text (dropped by default: the LM cannot use them)")

    g = p.add_argument_group("walk")
    g.add_argument("--walks-per-query", type=_positive_int, default=200, help="walks started per query tweet (default: 200)")
    g.add_argument("--walk-length", type=_positive_int, default=4, help="at most this many tweet->user->tweet hops per walk (default: 4)")
    g.add_argument("--restart-prob", type=float, default=0.5, help="probability of restarting at the query after each hop (default: 0.5)")
    g.add_argument("--max-user-degree", type=_positive_int, default=100,
                   help="users with more engagements are bots or hyperactive (walk: see --degree-cap-mode; "
                        "coengage: ignored) (default: 100)")
    g.add_argument("--degree-cap-mode", choices=("skip", "sample"), default="skip",
                   help="walk: never step into users over --max-user-degree (skip) or down-sample their "
                        "engagements to about that many (sample) (default: skip)")
    g.add_argument("--min-visits", type=_positive_int, default=2, help="visits a tweet needs to become a candidate (default: 2)")
    g.add_argument("--walkers-in-flight", type=_positive_int, default=WalkConfig.walkers_in_flight,
                   help="walkers per thread advancing together so their memory loads overlap; speed "
                        f"only, the pairs are identical for any value (default: {WalkConfig.walkers_in_flight})")
    g.add_argument("--seed", type=int, default=0, help="random seed (walk; knn FAISS training) (default: 0)")

    g = p.add_argument_group("coengage")
    g.add_argument("--window-s", type=int, default=None,
                   help="count a shared engager only if both engagements lie within this many seconds "
                        "(e.g. 1800 or 7200; default: no window)")
    g.add_argument("--min-count", type=_positive_int, default=2, help="shared engagers a pair needs (default: 2)")
    g.add_argument("--normalize", choices=("count", "cosine", "jaccard", "swing"), default="count",
                   help="coengage score: count = shared engagers; cosine = count/sqrt(n_a*n_b); jaccard = "
                        "count/(n_a+n_b-count); swing = sum over shared users of 1/log2(2+degree) (default: count)")

    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local: this machine (default); spark: Apache Spark computes the coengage pairs (same pairs "
                        "and scores; needs pyspark and Java; see docs/spark.md)")
    g.add_argument("--spark-master", metavar="URL", default=None,
                   help="Spark master (local[4], spark://host:7077, yarn, ...); default: the session of spark-submit, "
                        "else local[*]")
    g.add_argument("--spark-conf", metavar="KEY=VALUE", action="append", default=[],
                   help="a Spark setting, e.g. spark.executor.memory=8g (repeatable)")
    g.add_argument("--spark-partitions", type=_positive_int, default=None,
                   help="spark.sql.shuffle.partitions for the joins and aggregations (default: Spark's)")
    g.add_argument("--spark-output", choices=("single", "partitioned"), default="single",
                   help="single: candidates come back to the driver and the local post-processing writes one pair "
                        "file (default); partitioned: every step runs in Spark and OUT is a directory of Parquet "
                        "part files (for outputs that do not fit on the driver)")
    g.add_argument("--spark-salt", type=_positive_int, default=1,
                   help="rank each tweet's candidates in this many salt buckets first (heavy tweets spread over "
                        "tasks; the result is identical) (default: 1, no salting)")
    g.add_argument("--spark-tmp", metavar="DIR", default=None,
                   help="scratch directory every executor can read (graph edges, candidates); default: the system "
                        "temp dir (fine for local[*])")

    g = p.add_argument_group("raw logs (--engine spark, instead of GRAPH_DIR)")
    g.add_argument("--logs", nargs="+", action="extend", metavar="FILE",
                   help="engagement log files or globs (Parquet/CSV/TSV/JSONL), cleaned as by `coengage graph build`")
    g.add_argument("--texts", nargs="+", action="extend", metavar="FILE", help="texts table files or globs")
    g.add_argument("--config", metavar="YAML", help="a `graph build` YAML config (columns, types, ...); flags override it")
    g.add_argument("--user-col", help="log column with the user id (default user_id)")
    g.add_argument("--item-col", help="log column with the tweet id (default tweet_id)")
    g.add_argument("--type-col", help="log column with the engagement type (default engagement; 'none': one type)")
    g.add_argument("--time-col", help="log column with the timestamp (default timestamp; 'none': all 0)")
    g.add_argument("--time-unit", choices=("s", "ms", "us", "ns"), help="unit of numeric epoch timestamps (default s)")
    g.add_argument("--types", metavar="T=W,...", help="engagement type vocabulary (as in `graph build`)")
    g.add_argument("--unknown-types", choices=("error", "keep", "drop"),
                   help="a type not in --types: error (default), keep or drop (counted)")
    g.add_argument("--text-id-col", help="texts column with the tweet id (default: --item-col)")
    g.add_argument("--text-cols", help="comma-separated texts column(s) joined into the text (default text)")
    g.add_argument("--log-format", dest="log_format", choices=("auto", "csv", "tsv", "parquet", "jsonl"),
                   help="log format (default auto: from the file name)")
    g.add_argument("--texts-format", choices=("auto", "csv", "tsv", "parquet", "jsonl"),
                   help="texts format (default auto)")
    g.add_argument("--encoding", help="text encoding of CSV/TSV/JSONL inputs (default utf-8)")

    g = p.add_argument_group("knn")
    g.add_argument("--embeddings", metavar="EMB_DIR", help="embeddings from `coengage graph embed` on this graph (required for knn)")
    g.add_argument("--index", choices=("auto", "exact", "faiss-ivf", "faiss-hnsw"), default="auto",
                   help="auto: faiss-ivf when FAISS is installed and there are > 200k tweets, else exact "
                        "(blocked matrix products) (default: auto)")
    g.add_argument("--pq", type=_positive_int, default=None,
                   help="faiss-ivf: product-quantise vectors into this many sub-vectors (must divide the dimension)")
    g.add_argument("--nlist", type=_positive_int, default=None, help="faiss-ivf: inverted lists (default: ~sqrt(tweets))")
    g.add_argument("--nprobe", type=_positive_int, default=None, help="faiss-ivf: lists searched per query (default: 32)")
    g.add_argument("--hnsw-m", type=_positive_int, default=32, help="faiss-hnsw: neighbours per node (default: 32)")
    g.add_argument("--ef-search", type=_positive_int, default=None, help="faiss-hnsw: search breadth (default: max(128, 2k))")
    p.set_defaults(func=cmd_mine)

    r = argparse.ArgumentParser(prog=f"{p.prog} report", description=REPORT_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("pairs", metavar="PAIRS", help="pair file written by `coengage mine`")
    r.add_argument("--graph", required=True, metavar="GRAPH_DIR", help="the graph the pairs were mined from")
    r.add_argument("--out", default=None, metavar="DIR", help="report directory (default: PAIRS.report/); an earlier "
                   "report there is replaced, anything else is refused unless --overwrite")
    r.add_argument("--overwrite", action="store_true", help="replace whatever exists at the report directory (never an input)")
    r.add_argument("--samples", type=_positive_int, default=20, help="sample pairs shown (half best-scoring, half random) (default: 20)")
    r.add_argument("--label-col", default=None,
                   help="texts column for the same-label rate (default: the first of topic, subreddit, label present)")
    r.add_argument("--format", dest="fmt", choices=("parquet", "tsv", "jsonl"), default=None,
                   help="format of PAIRS (default: from its name)")
    r.add_argument("--seed", type=int, default=0, help="seed of the random sample (default: 0)")
    r.set_defaults(func=cmd_report)
    p.report_parser = r
    p.epilog = (p.epilog or "") + "\n`coengage mine report --help` describes the report command."


METHOD_OPTIONS = {
    "walk": ("walks_per_query", "walk_length", "restart_prob", "max_user_degree", "degree_cap_mode", "min_visits",
             "walkers_in_flight", "seed", "top_k"),
    "coengage": ("max_user_degree", "window_s", "min_count", "normalize", "top_k"),
    "knn": ("embeddings", "top_k", "index", "pq", "nlist", "nprobe", "hnsw_m", "ef_search", "seed"),
}


def _postprocess_options(args) -> dict:
    return dict(max_pairs_per_tweet=args.max_pairs_per_tweet, popularity_cap=args.popularity_cap,
                min_score=args.min_score, drop_near_duplicates=not args.keep_near_duplicates,
                near_dup_jaccard=args.near_dup_jaccard, shingle_size=args.shingle_size,
                drop_hashtags=args.drop_hashtags, require_text=not args.keep_without_text)


def _spark_options(args):
    from mining.spark.session import SparkOptions, parse_conf

    return SparkOptions(master=args.spark_master, conf=parse_conf(args.spark_conf), tmp_dir=args.spark_tmp,
                        output=args.spark_output, salt=args.spark_salt, shuffle_partitions=args.spark_partitions)


def _build_config(args):
    """The `graph build` cleaning config for --logs (YAML under flags)."""
    from graph.build import BuildConfig

    cfg = BuildConfig.from_yaml(args.config) if args.config else BuildConfig()
    return cfg.updated(log=args.logs, texts=args.texts, user_col=args.user_col, item_col=args.item_col,
                       type_col=args.type_col, time_col=args.time_col, time_unit=args.time_unit, types=args.types,
                       unknown_types=args.unknown_types, text_id_col=args.text_id_col, text_cols=args.text_cols,
                       format=args.log_format, texts_format=args.texts_format, encoding=args.encoding,
                       strict=True if args.strict else None)


def cmd_mine(args) -> int:
    from coengage.errors import InputError
    from mining.mine import mine

    options = {name: getattr(args, name) for name in METHOD_OPTIONS[args.method]}
    raw = bool(args.logs) or bool(args.config)
    if args.engine == "local":
        if raw:
            raise InputError("--logs/--config read raw logs with --engine spark only; build a graph first with "
                             "`coengage graph build` for the local engine")
        if args.graph_dir is None:
            raise InputError("GRAPH_DIR is required (or --engine spark --logs FILE ...)")
    else:
        from mining.spark.engine import check_method

        check_method(args.method, args.degree_cap_mode)
        if raw == (args.graph_dir is not None):
            raise InputError("--engine spark reads either GRAPH_DIR or raw logs (--logs/--config), exactly one of them")
    common = dict(method=args.method, out=args.out, fmt=args.fmt, with_text=args.with_text, strict=args.strict,
                  progress=not args.no_progress, overwrite=args.overwrite, **_postprocess_options(args), **options)
    if args.engine == "spark" and (raw or args.spark_output == "partitioned"):
        from mining.spark.engine import mine_spark

        result = mine_spark(args.graph_dir, build_config=_build_config(args) if raw else None,
                            spark_options=_spark_options(args), **common)
    elif args.engine == "spark":
        result = mine(args.graph_dir, engine="spark", spark_options=_spark_options(args), **common)
    else:
        result = mine(args.graph_dir, **common)
    c = result.counts
    dropped = ", ".join(f"{k.replace('_', ' ')} {c[k]}" for k in (
        "self_pairs", "below_threshold", "without_text", "near_duplicate_text", "over_max_per_tweet",
        "duplicates", "over_popularity_cap") if c.get(k))
    print(f"{args.method}: {c['written']} pairs from {c['candidates']} candidates ({dropped or 'nothing dropped'}); "
          f"{c['tweets_paired']} tweets paired, coverage of tweets with >= 2 engagers "
          f"{result.manifest['coverage_2plus_engagers']:.3f} -> {result.path}")
    return 0


def cmd_report(args) -> int:
    from mining.report import pair_report, print_summary

    summary = pair_report(args.pairs, args.graph, args.out, samples=args.samples, seed=args.seed,
                          label_col=args.label_col, fmt=args.fmt, overwrite=args.overwrite)
    print(print_summary(summary))
    return 0
