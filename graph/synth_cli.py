"""``coengage synth``: write a synthetic engagement log with planted topics (graph/synth.py)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Write a synthetic engagement log with planted ground truth into OUT (atomically):

  engagements.<ext>  user_id, tweet_id, engagement (fav|retweet|reply|quote|author), timestamp
  tweets.<ext>       tweet_id, author_id, text, topic, hashtag, lang, created
  users.<ext>        user_id, is_bot, lang, activity, top_topic, interests (JSON list of K floats)
  manifest.json      config, counts (rows, duplicates, malformed by kind, bots), topics

Users have interest mixtures over K topics (concentrated on 1-2), tweets have one topic
and short noisy texts; activity and popularity follow power laws; bots engage at random;
exact duplicate rows are mixed in, and malformed rows when --malformed-rate > 0.
The same --seed gives the same files. The defaults make the demo data set.
"""

EPILOG = """\
examples:
  coengage synth --out data/synth
  coengage synth --out /tmp/s --users 2000 --tweets 5000 --engagements 100000 --seed 1
  coengage synth --out /tmp/big --users 1000000 --tweets 5000000 --engagements 100000000
  coengage synth --out /tmp/noisy --format csv --gzip --malformed-rate 0.01 --languages en,es,fr,de
"""


def register(sub) -> None:
    from graph.synth import FORMATS, MALFORMED_KINDS, SynthConfig

    d = SynthConfig()
    p = sub.add_parser("synth", help="write a synthetic engagement log with planted topics",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--users", type=int, default=d.users, help=f"number of users, bots included (default {d.users})")
    p.add_argument("--tweets", type=int, default=d.tweets, help=f"number of tweets, at least --topics (default {d.tweets})")
    p.add_argument("--engagements", type=int, default=d.engagements,
                   help="clean engagement rows, the one 'author' row per tweet included, so at least "
                        f"--tweets; duplicate and malformed rows come on top (default {d.engagements})")
    p.add_argument("--topics", type=int, default=d.topics, help=f"number of planted topics K (default {d.topics})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed; same seed, same files (default {d.seed})")
    p.add_argument("--format", choices=FORMATS, default=d.format, help=f"file format (default {d.format})")
    p.add_argument("--gzip", action="store_true", help="gzip the csv/tsv/jsonl files (names end in .gz)")
    p.add_argument("--bots", type=float, default=d.bots,
                   help=f"fraction of users that are bots engaging with random tweets (default {d.bots})")
    p.add_argument("--bot-activity", type=float, default=d.bot_activity,
                   help=f"a bot's activity as a multiple of the mean user's (default {d.bot_activity:g})")
    p.add_argument("--duplicate-rate", type=float, default=d.duplicate_rate,
                   help=f"exact duplicate rows per clean row (default {d.duplicate_rate:g})")
    p.add_argument("--malformed-rate", type=float, default=d.malformed_rate,
                   help="malformed rows per clean row, opt-in (default 0). Kinds, equally likely: "
                        + "; ".join(f"{k}: {v}" for k, v in MALFORMED_KINDS.items()))
    p.add_argument("--languages", default=",".join(d.languages), metavar="LANGS",
                   help="comma-separated languages (en, es, fr, de, pt, it); several give per-language "
                        "vocabularies and users who mostly engage in their own language (default en)")
    p.add_argument("--span-days", type=float, default=d.span_days,
                   help=f"time span of tweets and engagements in days (default {d.span_days:g})")
    p.add_argument("--start", type=int, default=d.start,
                   help=f"start of the time span, unix seconds (default {d.start} = 2023-01-01 UTC)")
    p.add_argument("--rates", default=None, metavar="TYPE=R,...",
                   help="relative rates of engagement types (default "
                        + ",".join(f"{k}={v:g}" for k, v in d.rates.items()) + ")")
    p.add_argument("--chunk-rows", type=int, default=d.chunk_rows,
                   help=f"rows per write / Parquet row group; bounds memory, not content (default {d.chunk_rows})")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import logging

    from graph.synth import SynthConfig, generate, parse_rates

    cfg = SynthConfig(
        users=args.users, tweets=args.tweets, engagements=args.engagements, topics=args.topics,
        seed=args.seed, format=args.format, gzip=args.gzip, bots=args.bots, bot_activity=args.bot_activity,
        duplicate_rate=args.duplicate_rate, malformed_rate=args.malformed_rate, languages=args.languages,
        span_days=args.span_days, start=args.start, chunk_rows=args.chunk_rows,
        **({"rates": parse_rates(args.rates)} if args.rates else {}),
    )
    manifest = generate(args.out, cfg, overwrite=args.overwrite)
    c = manifest["counts"]
    logging.getLogger(__name__).info("counts: %s", json.dumps(c))
    print(f"wrote {args.out}: {c['rows']} engagement rows ({c['duplicates']} duplicates, "
          f"{c['malformed_total']} malformed), {c['tweets']} tweets, {c['users']} users ({c['bots']} bots), "
          f"{c['topics']} topics")
    return 0
