"""Subcommands of lm/: the `coengage lm` group.

This module adds the group; each command lives in its own ``*_cli`` module with
``register(subparsers)`` (``lm.train_cli`` here, ``lm.eval_cli`` when present), loaded with
the same optional-import pattern as graph/cli.py. Nothing here imports torch.
"""

from __future__ import annotations

from coengage.cli import optional_module as _optional

LM_GROUP = ("lm.train_cli", "lm.eval_cli")  # `coengage lm train|eval`




def register(sub) -> None:
    group = sub.add_parser("lm", help="train and evaluate the language model on mined pairs",
                           description="Train (and evaluate) a BERT-style encoder on socially similar tweet pairs.")
    group.set_defaults(_parser=group)
    lm_sub = group.add_subparsers(dest="lm_command", metavar="COMMAND")
    for name in LM_GROUP:
        module = _optional(name)
        if module:
            module.register(lm_sub)
