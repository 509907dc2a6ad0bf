"""`coengage demo`: the whole pipeline on built-in synthetic data, ending in a results table.

The demo drives the same subcommands a user would type (so it exercises the real CLI),
in one process, into ``--out`` (default ``demo_out/``). Re-running reuses nothing: each
stage overwrites its artifact atomically.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def demo_steps(out: Path, quick: bool = False) -> list[tuple[str, list[str]]]:
    """The demo as (title, coengage argv) steps."""
    s, g = out / "synth", out / "graph"
    return [
        ("synthetic engagement log", ["synth", "--out", str(s), "--overwrite"]),
        ("graph build", ["graph", "build", "--log", str(s / "engagements.parquet"), "--texts",
                         str(s / "tweets.parquet"), "--out", str(g), "--overwrite"]),
        ("graph stats", ["graph", "stats", str(g)]),
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    from coengage.cli import main

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for title, argv in demo_steps(out, quick=args.quick):
        log.info("demo: %s: coengage %s", title, " ".join(argv))
        print(f"\n=== {title}: coengage {' '.join(argv)}", flush=True)
        t0 = time.perf_counter()
        rc = main(argv)
        timings[title] = round(time.perf_counter() - t0, 2)
        if rc:
            print(f"demo: step '{title}' failed with exit code {rc}")
            return rc
    print("\n=== demo finished; seconds per step:")
    print(json.dumps(timings, indent=2))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on built-in synthetic data and print the results",
        description="Run synth -> graph build -> graph stats (-> later stages as they exist) on the "
                    "default synthetic data, writing every artifact under --out, and print the results.",
    )
    p.add_argument("--out", default="demo_out", help="directory for every artifact of the demo (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="smaller settings, for a smoke test")
    p.set_defaults(func=cmd_demo)
