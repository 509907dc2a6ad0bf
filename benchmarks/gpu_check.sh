#!/bin/bash
# GPU check of lm/ on a CUDA machine whose Python has torch and transformers (any recent versions;
# dgl is not needed). It runs:
#   1. the lm/ test suite on that machine's stack (CPU tests; they must pass with transformers 5);
#   2. benchmarks/bench_lm.py --no-cpu (bf16 BERT-base vs the fp32 padded baseline, MFU);
#   3. `coengage lm train` (BERT-base from scratch, bf16) and `coengage lm eval` on a demo run's pairs;
#   4. GPU (bf16) vs CPU (fp32) embeddings of the trained model: cosine of each text's two vectors;
#   5. the same training under `torchrun --nproc-per-node 1`.
#
# Usage: make a demo run on a machine with the pinned stack first (its embed stage needs dgl, which
# a GPU image with a recent torch lacks):
#     .venv/bin/coengage demo --until mine --out RUN_DIR
# then, on the GPU machine, from the repository root:
#     OUT=DIR PYTHON=python3 bash benchmarks/gpu_check.sh RUN_DIR
# Results: DIR/gpu_check.log, DIR/lm.json (the repo's lm.json with the gpu section replaced),
# DIR/eval_base.json, DIR/train_manifest.json. BIG=0 skips the batch-256 bench run.
set -u
RUN=${1:?usage: bash benchmarks/gpu_check.sh RUN_DIR (a 'coengage demo --until mine' output)}
OUT=${OUT:-gpu_check_out}; PY=${PYTHON:-python3}; STEPS=${STEPS:-300}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} TOKENIZERS_PARALLELISM=false
exec > >(tee "$OUT/gpu_check.log") 2>&1
t0=$(date +%s); step() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }
step versions
nvidia-smi -L
$PY -c "import torch, transformers, numpy; print('torch', torch.__version__, 'transformers', transformers.__version__,
'numpy', numpy.__version__, torch.cuda.get_device_name())" || exit 1
step "pytest tests/lm"
# -o filterwarnings=: the project's warning filters name pyparsing classes other versions lack
timeout 240 $PY -m pytest -q -p no:cacheprovider -o filterwarnings= -n 8 tests/lm 2>&1 | tail -15
step "bench_lm on the GPU (batch 64 pairs, then 256)"
cp benchmarks/results/lm.json "$OUT/lm.json"
timeout 150 $PY benchmarks/bench_lm.py --no-cpu --out "$OUT/lm.json" 2>&1 | grep -v Warning | tail -6
[ "${BIG:-1}" = 1 ] && timeout 150 $PY benchmarks/bench_lm.py --no-cpu --gpu-batch-size 256 --gpu-steps 20 --out "$OUT/lm_b256.json" 2>&1 \
  | grep -v Warning | tail -4
step "lm train: BERT-base from scratch, $STEPS steps, precision auto (bf16)"
timeout 200 $PY -m coengage lm train --pairs "$RUN/pairs.parquet" --texts "$RUN/graph" --from-scratch base \
  --max-steps "$STEPS" --batch-size 64 --out /tmp/gpu_check_base --overwrite 2>&1 | grep -v "shards" | tail -5
cp /tmp/gpu_check_base/manifest.json "$OUT/train_manifest.json"
tail -1 /tmp/gpu_check_base/train_log.jsonl
step "GPU bf16 vs CPU fp32 embeddings of the trained model"
timeout 120 $PY - "$RUN" <<'PY'
import sys, numpy as np
from coengage.artifacts import read_parquet
from lm.encode import Encoder
texts = read_parquet(f"{sys.argv[1]}/graph/texts.parquet", ["text"])["text"].tolist()[:512]
for pooling in ("cls", "mean", "head"):
    g = Encoder("/tmp/gpu_check_base", device="cuda").encode(texts, pooling=pooling, progress=False)
    c = Encoder("/tmp/gpu_check_base", device="cpu").encode(texts, pooling=pooling, progress=False)
    cos = (g * c).sum(1) / np.linalg.norm(g, axis=1) / np.linalg.norm(c, axis=1)
    print(f"{pooling}: cosine(GPU bf16, CPU fp32) over {len(texts)} texts: min {cos.min():.4f} mean {cos.mean():.4f}")
PY
step "lm eval on the GPU"
timeout "${EVAL_TIMEOUT:-600}" $PY -m coengage lm eval --model /tmp/gpu_check_base --graph "$RUN/graph" --embeddings "$RUN/emb" \
  --seeds 1 --out "$OUT/eval_base.json" 2>&1 | grep -v "fewer than\|Loading weights" | tail -6
step "torchrun --nproc-per-node 1 (20 steps)"
timeout 120 torchrun --nproc-per-node 1 -m coengage -q lm train --pairs "$RUN/pairs.parquet" --texts "$RUN/graph" \
  --from-scratch tiny --max-steps 20 --out /tmp/gpu_check_ddp --overwrite 2>&1 | tail -3
$PY -c "import json; m = json.load(open('/tmp/gpu_check_ddp/manifest.json')); print(m['runtime'], m['final']['loss'])"
step done
