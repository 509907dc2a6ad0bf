"""Subcommands of graph/: `coengage synth` and `coengage graph build|stats|embed`.

Each command lives in its own ``*_cli`` module with ``register(subparsers)``; this module
only wires them in. Nothing here imports dgl, numba or torch at import time.
"""

from __future__ import annotations

from coengage.cli import optional_module as _optional

TOP_LEVEL = ("graph.synth_cli",)  # `coengage synth`
GRAPH_GROUP = ("graph.build_cli", "graph.stats_cli", "graph.embed_cli")  # `coengage graph ...`




def register(sub) -> None:
    for name in TOP_LEVEL:
        module = _optional(name)
        if module:
            module.register(sub)
    group = sub.add_parser("graph", help="build, inspect and embed the engagement graph",
                           description="Build, inspect and embed the user-tweet engagement graph.")
    group.set_defaults(_parser=group)
    graph_sub = group.add_subparsers(dest="graph_command", metavar="COMMAND")
    for name in GRAPH_GROUP:
        module = _optional(name)
        if module:
            module.register(graph_sub)
