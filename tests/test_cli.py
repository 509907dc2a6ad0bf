"""The coengage command line explains itself and fails cleanly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coengage.cli import build_parser, main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "coengage", *args], capture_output=True, text=True)


def test_top_level_help_lists_stages():
    out = _run("--help")
    assert out.returncode == 0
    for word in ("graph build", "mine", "lm train"):
        assert word in out.stdout


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    seen = 0
    for name, subparser in sub.choices.items():
        text = subparser.format_help()
        assert subparser.description or subparser.format_usage(), name
        assert len(text) > 50, name
        seen += 1
    assert seen >= 1


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_importing_the_cli_does_not_import_dgl_or_torch():
    code = "import sys; import coengage.cli as c; c.build_parser(); print('dgl' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("package", ["mining", "lm"])
def test_mining_and_lm_never_import_dgl(package):
    """Importing every module of mining/ and lm/ leaves dgl unloaded (they must run without it)."""
    code = f"""
import importlib, pkgutil, sys
import {package}
for m in pkgutil.walk_packages({package}.__path__, '{package}.'):
    importlib.import_module(m.name)
print('dgl' in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_mine_walk_and_coengage_defaults_match_the_library():
    """`coengage mine` flags default to the library's WalkConfig / CoengageConfig values."""
    from dataclasses import fields

    from mining.mine import CoengageConfig, WalkConfig

    args = build_parser().parse_args(["mine", "G", "--method", "walk", "--out", "p.parquet"])
    for cfg in (WalkConfig(), CoengageConfig()):
        for f in fields(cfg):
            if hasattr(args, f.name) and f.name != "top_k":  # top_k: one flag shared by the methods
                assert getattr(args, f.name) == getattr(cfg, f.name), (type(cfg).__name__, f.name)
    assert args.walkers_in_flight == 64


def test_graph_build_help_states_the_real_chunk_default():
    from graph.build import BuildConfig

    out = _run("graph", "build", "--help").stdout
    assert f"(default {BuildConfig.chunk_rows})" in " ".join(out.split())
