"""The ``coengage`` command line.

``main()`` only builds the parser and dispatches: each package contributes its own
subcommands through ``register(subparsers)`` in its ``cli`` module, and heavy imports
(torch, dgl, numba) happen inside the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from coengage import __version__
from coengage.errors import CoengageError

# Modules whose register(subparsers) adds subcommands, in --help order.
COMMAND_MODULES = ("graph.cli", "mining.cli", "lm.cli", "coengage.pipeline_cli")

DESCRIPTION = """\
coengage turns engagement logs (who engaged with which tweet, how, when) into a
user-tweet graph, mines pairs of socially similar tweets from it, and trains a
language model on those pairs (TwHIN-BERT).

Stages talk through artifact directories, each with a manifest.json:
  synth        write a synthetic engagement log with planted topics
  graph build  logs + texts      -> GRAPH_DIR
  graph stats  GRAPH_DIR         -> counts, degree summaries, degree plot
  graph embed  GRAPH_DIR         -> EMB_DIR (TwHIN embeddings)
  mine         GRAPH_DIR         -> pairs file
  lm train     pairs + GRAPH_DIR -> MODEL_DIR
  lm eval      MODEL_DIR         -> metrics.json
Run `coengage <command> --help` for each command's options.
"""


def optional_module(name: str):
    """Import ``name``, or return None when that module itself does not exist (a stage not built)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coengage",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"coengage {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = optional_module(name)
        if module:
            module.register(sub)
    return parser


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("numba", "matplotlib", "PIL", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_GLOBAL_FLAGS = {"-q": ("quiet", 1), "--quiet": ("quiet", 1), "-v": ("verbose", 1), "--verbose": ("verbose", 1),
                 "-vv": ("verbose", 2)}


def _hoist_global_flags(argv: list[str]) -> list[str]:
    """Let -v/-q appear after the subcommand too (`coengage synth ... -q`): move them to the front."""
    head, rest = [], []
    for i, token in enumerate(argv):
        if token == "--":
            rest.extend(argv[i:])
            break
        (head if token in _GLOBAL_FLAGS else rest).append(token)
    return head + rest


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader of our output went away (`coengage graph stats G | head`): stop quietly, as
        # a tool killed by SIGPIPE does, instead of a traceback; stdout is pointed at /dev/null so
        # the interpreter's final flush of what is still buffered cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    argv = _hoist_global_flags(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        # `coengage` or `coengage graph` alone: show the relevant help.
        (getattr(args, "_parser", None) or parser).print_help()
        return 2
    setup_logging(args.verbose, args.quiet)
    try:
        result = args.func(args)
    except CoengageError as e:
        print(f"coengage: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coengage: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
