"""`coengage graph build`: parse flags (over an optional YAML config) and call graph.build."""

from __future__ import annotations

import argparse
import json

DESCRIPTION = """\
Build the user-tweet engagement graph (GRAPH_DIR) from engagement logs and a texts table.

Logs are CSV, TSV, Parquet or JSONL files (optionally .gz), one engagement per row: who
(user column), which tweet/item (item column), how (type column) and when (time column,
unix seconds or ISO-8601). Rows with an empty user or tweet id, an empty type or an
unparseable timestamp are counted per reason in manifest.json "dropped" and skipped
(--strict: the first one is an error naming the file and row). Duplicate (user, tweet,
type) rows become one edge with the latest timestamp and a count.

GRAPH_DIR gets manifest.json, user_ids.parquet / tweet_ids.parquet (id maps), csr/*.npy
(CSR arrays over all relations, both directions), texts.parquet and graph.dgl. It is
written to a temporary directory and renamed when complete: a failed build leaves
nothing behind. An existing graph artifact at --out is replaced; any other existing,
non-empty path is refused unless --overwrite.

Every option can also be given in a YAML file (--config) with the same names
(underscores or dashes); flags override the file. Example:
  log: [logs/*.parquet]
  texts: tweets.jsonl.gz
  user_col: uid
  types: {fav: 1.0, retweet: 2.0, reply: 3.0}
  unknown_types: drop
"""

EXAMPLE = """\
example (the bundled Reddit data):
  coengage graph build --log ../shared/data/reddit_college/engagements.csv.gz \\
      --texts ../shared/data/reddit_college/posts.jsonl.gz --user-col user --item-col post_id \\
      --type-col engagement --time-col timestamp --text-cols title,text --out /tmp/g
"""


def register(sub) -> None:
    p = sub.add_parser(
        "build", help="engagement logs + texts -> GRAPH_DIR", description=DESCRIPTION, epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = p.add_argument_group("inputs and output")
    io.add_argument("--log", nargs="+", action="extend", metavar="FILE",
                    help="engagement log files or globs (quote globs); repeatable")
    io.add_argument("--texts", nargs="+", action="extend", metavar="FILE",
                    help="texts table files or globs (tweet id + text + optional label columns)")
    io.add_argument("--out", metavar="GRAPH_DIR", help="output directory (required here or in --config)")
    io.add_argument("--config", metavar="YAML", help="YAML file with any of these options; flags override it")
    io.add_argument("--format", choices=["auto", "csv", "tsv", "parquet", "jsonl"],
                    help="log format (default auto: from the file name)")
    io.add_argument("--texts-format", choices=["auto", "csv", "tsv", "parquet", "jsonl"],
                    help="texts format (default auto)")
    io.add_argument("--encoding", help="text encoding of CSV/TSV/JSONL files (default utf-8)")
    io.add_argument("--overwrite", action="store_true", default=None,
                    help="replace --out even if it exists and is not a graph artifact")

    cols = p.add_argument_group("log columns")
    cols.add_argument("--user-col", help="column with the user id (default user_id)")
    cols.add_argument("--item-col", help="column with the tweet/item id (default tweet_id)")
    cols.add_argument("--type-col", help="column with the engagement type (default engagement; "
                                         "'none': one type named 'engaged')")
    cols.add_argument("--time-col", help="column with the timestamp, unix seconds or ISO-8601 "
                                         "(default timestamp; 'none': all 0)")
    cols.add_argument("--time-unit", choices=["s", "ms", "us", "ns"],
                      help="unit of numeric epoch timestamps (default s; ISO-8601 strings and typed timestamps carry "
                           "their own). A build whose seconds pass the year 5138 warns and names the likely unit")

    types = p.add_argument_group("engagement types")
    types.add_argument("--types", metavar="T=W,...",
                       help="type vocabulary with weights, e.g. fav=1,retweet=2 (weight defaults to 1). "
                            "Without it every type found is a relation of weight 1 (sorted by name)")
    types.add_argument("--unknown-types", choices=["error", "keep", "drop"],
                       help="a type not in --types: error (default; lists the known ones), keep it "
                            "(weight 1) or drop the row (counted as dropped.unknown_type)")

    texts = p.add_argument_group("texts table")
    texts.add_argument("--text-id-col", help="texts column with the tweet id (default: --item-col)")
    texts.add_argument("--text-cols", help="comma-separated texts column(s) joined with a newline into the "
                                           "tweet text (default text); empty parts are skipped")
    texts.add_argument("--label-cols", help="comma-separated texts columns kept in texts.parquet as labels "
                                            "(default: every other scalar column)")

    run = p.add_argument_group("behaviour")
    run.add_argument("--strict", action="store_true", default=None,
                     help="any row that would be dropped is an error naming the file and row")
    run.add_argument("--chunk-rows", type=int, metavar="N", help="rows per streamed chunk; bounds memory, does not change the graph (default 131072)")
    run.add_argument("--workers", type=int, metavar="N", help="threads encoding chunks (default 2)")
    run.add_argument("--holdout", type=float, metavar="FRACTION",
                     help="hold out this share of tweets for evaluation, half dev and half test (e.g. 0.2 for "
                          "the paper's 0.8/0.1/0.1 split). Held-out tweets, their texts and engagements go to "
                          "GRAPH_DIR/heldout/ and nowhere else, so embedding, mining and LM training never see "
                          "them; only `lm eval` reads them (default 0: no split)")
    run.add_argument("--split-seed", type=int, metavar="N",
                     help="seed of the per-tweet hash that assigns the split (default 0)")
    run.add_argument("--no-dgl", action="store_true", default=None,
                     help="skip the DGL binary graph.dgl (graph.dglgraph.load_dgl rebuilds it from the CSR)")
    p.set_defaults(func=run_build)


def run_build(args) -> int:
    import logging

    from graph.build import BuildConfig, build_graph

    cfg = BuildConfig.from_yaml(args.config) if args.config else BuildConfig()
    overrides = {
        "out": args.out, "format": args.format, "texts_format": args.texts_format, "encoding": args.encoding,
        "overwrite": args.overwrite, "user_col": args.user_col, "item_col": args.item_col,
        "type_col": args.type_col, "time_col": args.time_col, "time_unit": args.time_unit, "types": args.types,
        "unknown_types": args.unknown_types, "text_id_col": args.text_id_col, "text_cols": args.text_cols,
        "label_cols": args.label_cols, "strict": args.strict, "chunk_rows": args.chunk_rows,
        "workers": args.workers, "no_dgl": args.no_dgl,
        "holdout": args.holdout, "split_seed": args.split_seed,
    }
    if args.log:
        overrides["log"] = args.log
    if args.texts:
        overrides["texts"] = args.texts
    cfg = cfg.updated(**overrides)
    artifact = build_graph(cfg)
    m = artifact.manifest
    summary = {k: m[k] for k in ("num_nodes", "num_edges", "dropped", "duplicates_merged", "rows_read") if k in m}
    if "split" in m:
        summary["split"] = m["split"]["counts"]
    t = m.get("texts", {})
    summary["texts"] = {k: t[k] for k in ("tweets_with_text", "tweets_without_text") if k in t}
    summary["texts"].update({k: t[k] for k in ("duplicate_ids", "not_in_graph", "empty_text") if t.get(k)})  # rows not used
    logging.getLogger(__name__).info("wrote %s", artifact.path)
    print(json.dumps(summary, indent=2))
    return 0
