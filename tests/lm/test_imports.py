"""lm/ must run on stacks where dgl is absent: importing and training never loads it."""

import subprocess
import sys


def test_lm_modules_do_not_import_dgl(dataset, tmp_path):
    pairs, graph = dataset
    code = f"""
import sys
import lm.cli, lm.train_cli, lm.train, lm.encode, lm.data, lm.model, lm.losses, lm.distributed, lm.tokenizer
from lm.data import load_texts
load_texts({str(graph)!r})
assert "dgl" not in sys.modules, "dgl was imported"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
