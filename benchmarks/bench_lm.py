"""Benchmark `coengage lm train`'s loop against a plain baseline loop, same data, same model, same run.

Ours: lm.train.Trainer (dynamic padding, length-grouped batches, MLM vocabulary projection
only at masked positions, bf16 autocast on GPU). Baseline: the straightforward loop
(every text padded to 128, fp32, random batches, the model's full-vocabulary MLM forward) with
the same InfoNCE + 0.05 * MLM objective, AdamW and clipping.

Figures: real (non-padding) tokens/s, sequences/s, peak memory (CPU: peak RSS sampled during
the loop; GPU: torch.cuda.max_memory_allocated), and on a GPU the model FLOPs utilisation
against the measured bf16 matmul peak of that GPU. CPU uses BERT-tiny (2x128); on a GPU the
model is BERT-base-shaped (12x768, vocabulary 30522).

    .venv/bin/python benchmarks/bench_lm.py            # CPU figures, plus GPU ones when CUDA is present
    .venv/bin/python benchmarks/bench_lm.py --quick    # a smoke run (few steps)

Writes benchmarks/results/lm.json. A section not measured in this run (``--no-cpu``; ``--no-gpu``
or no CUDA) is kept from the existing file, with its own ``created`` time, and marked "kept" in
the printed table; ``gpu`` is null only when no GPU run was ever recorded there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


class PeakRSS:
    """Sample this process's RSS every few ms while active; ``peak`` in bytes."""

    def __init__(self, interval: float = 0.005):
        import psutil

        self.proc, self.interval, self.peak, self._stop = psutil.Process(), interval, 0, threading.Event()

    def __enter__(self):
        self.start = self.peak = self.proc.memory_info().rss
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def make_data(directory: Path, n_tweets: int, n_pairs: int, seed: int = 0):
    from tests.lm.synthetic import make_pairs, make_texts

    ids, texts, topics = make_texts(n_tweets, seed, min_words=3, max_words=90)
    pairs = make_pairs(ids, topics, n_pairs, seed).assign(
        text_a=lambda d: d.tweet_a.map(dict(zip(ids, texts))), text_b=lambda d: d.tweet_b.map(dict(zip(ids, texts))))
    path = directory / "pairs.parquet"
    pairs.to_parquet(path, index=False)
    return path


def setup(args, device: str, size: str, overrides: dict, directory: Path):
    from lm.config import TrainConfig
    from lm.train import Trainer, build_model, open_workdir, prepare_corpus

    pairs = make_data(directory, args.tweets, args.pairs)
    cfg = TrainConfig(pairs=str(pairs), out=str(directory / f"m-{device}"), from_scratch=size,
                      scratch_overrides=overrides, vocab_size=4000, batch_size=args.batch_size,
                      max_steps=10_000, lr=1e-4, warmup_ratio=0.0, seed=0, device=device, progress=False,
                      log_every=10_000, save_every=10_000, precision="auto").validate()
    inputs = prepare_corpus(cfg)
    work, _ = open_workdir(cfg, True)
    model, tok, _ = build_model(cfg, inputs.corpus, work, True)
    init_state = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(cfg, model, tok, inputs.corpus, work)
    return cfg, trainer, init_state


def batch_tokens(trainer, k0: int, k1: int) -> tuple[int, int, int]:
    """(real tokens, padded tokens as computed by ours, sequences) of micro-batches k0..k1-1."""
    real = padded = seqs = 0
    mult = trainer.pad_multiple
    for k in range(k0, k1):
        idx = trainer.batches.batch(k)
        lens = np.concatenate([trainer.tokens.lengths[trainer.corpus.a[idx]], trainer.tokens.lengths[trainer.corpus.b[idx]]])
        L = -(-int(lens.max()) // mult) * mult
        real += int(lens.sum())
        padded += L * len(lens)
        seqs += len(lens)
    return real, padded, seqs


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_ours(trainer, warmup: int, steps: int) -> dict:
    dev = trainer.device
    trainer.train(max_steps_this_call=warmup, checkpoint_on_stop=False)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    k0 = trainer.step
    sync(dev)
    with PeakRSS() as rss:
        t = time.perf_counter()
        trainer.train(max_steps_this_call=steps, checkpoint_on_stop=False)
        sync(dev)
        wall = time.perf_counter() - t
    real, padded, seqs = batch_tokens(trainer, k0, trainer.step)
    return {"wall_s": wall, "steps": steps, "real_tokens": real, "computed_tokens": padded, "sequences": seqs,
            "peak_bytes": torch.cuda.max_memory_allocated() if dev.type == "cuda" else rss.peak,
            "peak_growth_bytes": None if dev.type == "cuda" else rss.peak - rss.start}


def run_baseline(trainer, init_state: dict, warmup: int, steps: int, max_length: int = 128) -> dict:
    """The plain loop: fixed padding to max_length, fp32, random batches, full-vocabulary MLM logits."""
    from lm.data import PairBatches, collate, mask_tokens
    from lm.losses import infonce_loss
    from lm.model import SocialEncoder

    cfg, dev = trainer.config, trainer.device
    mlm = type(trainer.model.mlm)(trainer.model.mlm.config)
    model = SocialEncoder(mlm, cfg.head_dims)
    model.load_state_dict(init_state)
    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    batches = PairBatches(np.ones(trainer.corpus.num_pairs), cfg.batch_size, cfg.seed, group_size=1)
    B = cfg.batch_size

    def step(k):
        idx = batches.batch(k)
        text_idx = np.concatenate([trainer.corpus.a[idx], trainer.corpus.b[idx]])
        ids, attn = collate(trainer.tokens, text_idx, trainer.pad_id, fixed_length=max_length)
        g = torch.Generator().manual_seed(k)
        masked, labels = mask_tokens(ids, trainer.special_ids, trainer.tokenizer.mask_token_id, trainer.vocab_size,
                                     0.15, g)
        masked, attn, labels = masked.to(dev), attn.to(dev), labels.to(dev)
        out = model.mlm(input_ids=masked, attention_mask=attn, labels=labels, output_hidden_states=True)
        emb = model.head(out.hidden_states[-1][:, 0])
        loss = infonce_loss(emb[:B], emb[B:], cfg.temperature) + cfg.mlm_weight * out.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return int(attn.sum()), ids.numel(), ids.shape[0]

    for k in range(warmup):
        step(k)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(dev)
    real = padded = seqs = 0
    with PeakRSS() as rss:
        t = time.perf_counter()
        for k in range(warmup, warmup + steps):
            r, p, s = step(k)
            real, padded, seqs = real + r, padded + p, seqs + s
        sync(dev)
        wall = time.perf_counter() - t
    del model, opt
    return {"wall_s": wall, "steps": steps, "real_tokens": real, "computed_tokens": padded, "sequences": seqs,
            "peak_bytes": torch.cuda.max_memory_allocated() if dev.type == "cuda" else rss.peak,
            "peak_growth_bytes": None if dev.type == "cuda" else rss.peak - rss.start}


def rates(r: dict) -> dict:
    return {**r, "tokens_per_s": r["real_tokens"] / r["wall_s"], "sequences_per_s": r["sequences"] / r["wall_s"],
            "computed_tokens_per_s": r["computed_tokens"] / r["wall_s"]}


def matmul_peak_tflops(n: int = 8192, iters: int = 20) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        a @ b
    torch.cuda.synchronize()
    return 2 * n ** 3 * iters / (time.perf_counter() - t) / 1e12


def model_flops_per_token(config, seq_len: float) -> float:
    """Training FLOPs per real token (forward + backward = 3x forward): dense layers + attention scores.

    Embedding lookups and the MLM vocabulary projection are left out (the projection runs only at
    masked positions in our loop), so MFU is slightly understated.
    """
    h, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    dense = layers * (4 * h * h + 2 * h * inter)  # QKV + output projection, FFN in and out
    return 6 * dense + 12 * layers * h * seq_len


def measure(args, device: str, size: str, overrides: dict) -> dict:
    with tempfile.TemporaryDirectory() as d:
        cfg, trainer, init_state = setup(args, device, size, overrides, Path(d))
        ours = rates(run_ours(trainer, args.warmup, args.steps))
        base = rates(run_baseline(trainer, init_state, args.warmup, args.steps))
        mc = trainer.model.mlm.config
        res = {"device": device, "model": size, "overrides": overrides, "batch_pairs": cfg.batch_size,
               "precision_ours": str(trainer.autocast_dtype or "fp32"), "precision_baseline": "fp32",
               "params_m": sum(p.numel() for p in trainer.model.mlm.parameters()) / 1e6,
               "hidden": mc.hidden_size, "layers": mc.num_hidden_layers, "vocab": mc.vocab_size,
               "ours": ours, "baseline": base,
               "speedup_tokens_per_s": ours["tokens_per_s"] / base["tokens_per_s"],
               "mean_real_length": ours["real_tokens"] / ours["sequences"]}
        if device == "cuda":
            peak = matmul_peak_tflops()
            mean_len = ours["real_tokens"] / ours["sequences"]
            fl = model_flops_per_token(mc, mean_len)
            res["gpu_name"] = torch.cuda.get_device_name()
            res["bf16_matmul_peak_tflops"] = peak
            res["mfu"] = ours["tokens_per_s"] * fl / (peak * 1e12)
            res["baseline_mfu"] = base["tokens_per_s"] * model_flops_per_token(mc, 128) / (peak * 1e12)
        return res


def table(rows: list[tuple]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few steps, small data (smoke run)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per loop")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per loop first")
    p.add_argument("--batch-size", type=int, default=32, help="pairs per step (2x sequences)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared 2-core box)")
    p.add_argument("--gpu-batch-size", type=int, default=64, help="pairs per step on the GPU")
    p.add_argument("--gpu-steps", type=int, default=30)
    p.add_argument("--tweets", type=int, default=2000)
    p.add_argument("--pairs", type=int, default=4000)
    p.add_argument("--no-gpu", action="store_true",
                   help="skip the GPU measurement even when CUDA is present (without a GPU, or with this flag, "
                        "the gpu section of an existing --out file is kept)")
    p.add_argument("--no-cpu", action="store_true",
                   help="skip the CPU measurement; the cpu section of an existing --out file is kept")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lm.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.tweets, args.pairs, args.gpu_steps = 4, 1, 300, 600, 5
    torch.set_num_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.WARNING)
    if args.no_cpu and args.no_gpu:
        p.error("--no-cpu and --no-gpu leave nothing to measure")
    if args.no_cpu and not torch.cuda.is_available():
        p.error("--no-cpu needs a CUDA device (torch.cuda.is_available() is False)")
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    gpu_measured = torch.cuda.is_available() and not args.no_gpu
    cpu = previous.get("cpu") if args.no_cpu else measure(args, "cpu", "tiny", {})
    if gpu_measured:
        gargs = argparse.Namespace(**{**vars(args), "batch_size": args.gpu_batch_size, "steps": args.gpu_steps})
        gpu = measure(gargs, "cuda", "base", {"vocab_size": 30522})
        gpu.update(torch=torch.__version__, transformers=__import__("transformers").__version__, created=created)
    else:  # not measured in this run (--no-gpu, or no CUDA here): keep an earlier run's figures
        gpu = previous.get("gpu")
    if args.no_cpu:  # keep the CPU run's own metadata beside its figures
        meta = {k: previous.get(k) for k in ("quick", "threads", "created", "torch", "load_avg_1m")}
    else:
        meta = {"quick": args.quick, "threads": args.threads, "created": created, "torch": torch.__version__,
                "load_avg_1m": os.getloadavg()[0]}
    result = {"benchmark": "lm", **meta, "cpu": cpu,
              "tokens_per_s": cpu["ours"]["tokens_per_s"] if cpu else None,
              "baseline_tokens_per_s": cpu["baseline"]["tokens_per_s"] if cpu else None,
              "gpu": gpu}
    rows = [("device", "loop", "tokens/s (real)", "seq/s", "computed tok/s", "peak MiB (CPU: RSS)", "MFU")]
    kept = ({"cpu"} if args.no_cpu else set()) | (set() if gpu_measured else {"gpu"})
    for name, r in (("cpu", cpu), ("gpu", gpu)):
        if r is None or "ours" not in r:
            what = "kept from the earlier file" if r is not None else "not measured"
            rows.append((name, "ours / baseline", what, "", "", "", ""))
            continue
        if name in kept:
            name += " (earlier run, kept)"
        for loop in ("ours", "baseline"):
            x = r[loop]
            mfu = r.get("mfu" if loop == "ours" else "baseline_mfu")
            rows.append((f"{name} ({r['model']}, {r['precision_' + loop]})", loop, f"{x['tokens_per_s']:,.0f}",
                         f"{x['sequences_per_s']:,.1f}", f"{x['computed_tokens_per_s']:,.0f}",
                         f"{x['peak_bytes'] / 2**20:,.0f}", "-" if mfu is None else f"{mfu:.1%}"))
        rows.append((name, "ours/baseline", f"{r['speedup_tokens_per_s']:.2f}x", "", "", "", ""))
    print(table(rows))
    from coengage.artifacts import write_json

    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
