"""The training loop of `coengage lm train`.

Steps, each a small function: :func:`prepare_corpus` (pairs + texts -> corpus),
:func:`open_workdir` (fresh or resumed MODEL_DIR.work/), :func:`build_model`, then
:class:`Trainer` (AdamW, warmup + linear decay, clipping, accumulation, autocast, logging,
checkpoints) and :func:`publish` (MODEL_DIR, atomically).

Determinism and resume: micro-batch ``k`` and its MLM mask depend only on ``(seed, k,
rank)``; a checkpoint holds model, optimiser, scheduler and RNG states and the step, so a
run killed and resumed reaches the same weights as one never interrupted.

Work directory (``MODEL_DIR.work/``)::

    config.json            the TrainConfig of the run (a --resume must match it)
    tokenizer/             the tokenizer (trained once for --from-scratch)
    checkpoints/step-N/    model.pt, optimizer.pt, scheduler.pt, rng.pt, state.json
    train_log.jsonl
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from coengage.artifacts import atomic_dir, check_not_input, combine_fingerprints, file_fingerprint, now_iso, write_json
from coengage.errors import ArtifactError, InputError
from lm import distributed as D
from lm.config import TrainConfig
from lm.data import PairBatches, build_corpus, collate, load_pairs, load_texts, mask_tokens, pairs_fingerprint, \
    tokenize_texts
from lm.losses import make_social_loss
from lm.model import SocialEncoder, load_masked_lm, scratch_model

log = logging.getLogger(__name__)

MODEL_KIND = "coengage.model"
MODEL_SCHEMA_VERSION = 1


# --------------------------------------------------------------------------- inputs
@dataclass
class Inputs:
    corpus: object
    pairs_fingerprint: str
    texts_fingerprint: str | None


def prepare_corpus(config: TrainConfig) -> Inputs:
    pairs = load_pairs(config.pairs)
    texts, texts_fp = (load_texts(config.texts) if config.texts else ({}, None))
    if not config.texts and not {"text_a", "text_b"} <= set(pairs.columns):
        raise InputError(f"{config.pairs}: the pair file has no text_a/text_b columns; pass --texts GRAPH_DIR")
    corpus = build_corpus(pairs, texts, max_missing_fraction=config.max_missing_fraction, strict=config.strict,
                          where=str(config.pairs))
    log.info("corpus: %d pairs over %d texts (%s)", corpus.num_pairs, len(corpus.texts), corpus.stats)
    return Inputs(corpus, pairs_fingerprint(config.pairs), texts_fp)


# --------------------------------------------------------------------------- work dir
def work_dir_of(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".work")


def checkpoints(work: Path) -> list[Path]:
    d = work / "checkpoints"
    if not d.exists():
        return []
    found = [p for p in d.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / "state.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def open_workdir(config: TrainConfig, is_main: bool) -> tuple[Path, Path | None]:
    """``(work_dir, checkpoint to resume from or None)``; refuses to clobber without --overwrite."""
    out, work = Path(config.out), work_dir_of(config.out)
    model_dir = config.model if config.model and Path(config.model).exists() else None  # (else a hub id)
    for path in (out, work):  # both are replaced or removed later
        check_not_input(path, [config.pairs, config.texts, model_dir])
    if config.resume:
        if not work.exists() or not checkpoints(work):
            raise ArtifactError(f"--resume: no checkpoint in {work}; start the run without --resume")
        saved = TrainConfig.from_dict(json.loads((work / "config.json").read_text()))
        diff = {k: (v, config.result_affecting().get(k)) for k, v in saved.result_affecting().items()
                if config.result_affecting().get(k) != v}
        if diff:
            raise ArtifactError(f"--resume: {work} was started with different settings: " +
                                ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in sorted(diff.items())))
        return work, checkpoints(work)[-1]
    if out.exists() and not config.overwrite:
        raise ArtifactError(f"{out} exists; pass --overwrite to replace it or choose another --out")
    if work.exists():
        if not config.overwrite:
            raise ArtifactError(f"{work} holds an unfinished run; pass --resume to continue it or --overwrite "
                                "to start again")
        if is_main:
            shutil.rmtree(work)
    D.barrier()
    if is_main:
        (work / "checkpoints").mkdir(parents=True, exist_ok=True)
        write_json(work / "config.json", config.to_dict())
    D.barrier()
    return work, None


# --------------------------------------------------------------------------- model
def build_model(config: TrainConfig, corpus, work: Path, is_main: bool):
    """``(SocialEncoder, tokenizer, base description)``; the tokenizer is trained once and kept in the work dir."""
    from transformers import AutoTokenizer

    tok_dir = work / "tokenizer"
    torch.manual_seed(config.seed)
    if config.from_scratch:
        if is_main and not (tok_dir / "tokenizer_config.json").exists():
            from lm.tokenizer import train_tokenizer

            tok = train_tokenizer(corpus.texts, config.vocab_size, config.tokenizer_kind, config.max_length)
            with atomic_dir(tok_dir) as tmp:
                tok.save_pretrained(tmp)
        D.barrier()  # every rank, unconditionally: the others wait for rank 0's tokenizer
        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        torch.manual_seed(config.seed)
        mlm = scratch_model(config.from_scratch, tokenizer, config.max_length, config.scratch_overrides)
        base = f"scratch:{config.from_scratch}"
    else:
        mlm, tokenizer = load_masked_lm(config.model)
        if is_main and not tok_dir.exists():
            with atomic_dir(tok_dir) as tmp:
                tokenizer.save_pretrained(tmp)
        base = config.model
    tokenizer.model_max_length = config.max_length
    torch.manual_seed(config.seed + 1)
    model = SocialEncoder(mlm, config.head_dims, config.resolved_pooling())
    n = sum(p.numel() for p in mlm.parameters())
    log.info("model %s: %.1fM parameters, hidden %d, vocab %d", base, n / 1e6, mlm.config.hidden_size, len(tokenizer))
    return model, tokenizer, base


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device_type: str):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kw = {"fused": True} if device_type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999), eps=1e-8, **kw)


def linear_warmup_decay(optimizer, warmup: int, total: int):
    """LambdaLR: linear warmup from 0 over ``warmup`` steps, then linear decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _rng_state(device_type: str) -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device_type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, device_type: str) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if device_type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _mix(*xs: int) -> int:
    """A 63-bit seed from integers (stable across processes and runs)."""
    return int(np.random.SeedSequence([int(x) & 0xFFFFFFFF for x in xs]).generate_state(1, np.uint64)[0]) >> 1


def pick_device(config: TrainConfig, dist_info: D.DistInfo) -> torch.device:
    if config.device:
        return torch.device(config.device)
    if torch.cuda.is_available():
        return torch.device("cuda", dist_info.local_rank)
    return torch.device("cpu")


def pick_precision(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32."""
    if config.precision == "fp32":
        return None
    if config.precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


# --------------------------------------------------------------------------- trainer
class Trainer:
    """Runs optimizer steps over the corpus; see the module docstring for the contract."""

    def __init__(self, config: TrainConfig, model: SocialEncoder, tokenizer, corpus, work: Path,
                 dist_info: D.DistInfo | None = None, device: torch.device | None = None):
        self.config, self.corpus, self.work = config, corpus, work
        self.dist = dist_info or D.DistInfo()
        self.device = device or pick_device(config, self.dist)
        self.autocast_dtype = pick_precision(config, self.device)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.tokens = tokenize_texts(tokenizer, corpus.texts, config.max_length)
        pair_len = np.maximum(self.tokens.lengths[corpus.a], self.tokens.lengths[corpus.b])
        self.batches = PairBatches(pair_len, config.batch_size * self.dist.world_size, config.seed,
                                   config.length_group_size)
        per_epoch_steps = max(1, self.batches.per_epoch // config.grad_accum)
        self.total_steps = int(config.max_steps if config.max_steps is not None
                               else max(1, math.ceil(config.epochs * per_epoch_steps)))
        if config.stages == "mlm,joint":
            self.mlm_steps = int(config.mlm_stage_steps if config.mlm_stage_steps is not None else self.total_steps // 2)
        else:
            self.mlm_steps = 0
        self.social = make_social_loss(config)
        self.special_ids = set(tokenizer.all_special_ids)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.vocab_size = model.mlm.get_input_embeddings().num_embeddings
        self.pad_multiple = 8 if self.device.type == "cuda" else 1
        needs_unused = config.objective == "mlm" or self.mlm_steps > 0
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                           find_unused_parameters=needs_unused)
        else:
            self.ddp = self.model
        self.optimizer = make_optimizer(self.model, config, self.device.type)
        warmup = int(round(config.warmup_ratio * self.total_steps))
        self.scheduler = linear_warmup_decay(self.optimizer, warmup, self.total_steps)
        self.step = 0
        self.log_path = work / "train_log.jsonl"
        self.last_record: dict = {}

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> None:
        if self.dist.is_main:
            target = self.work / "checkpoints" / f"step-{self.step:07d}"
            with atomic_dir(target) as tmp:
                torch.save(self.model.state_dict(), tmp / "model.pt")
                torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
                torch.save(self.scheduler.state_dict(), tmp / "scheduler.pt")
                torch.save(_rng_state(self.device.type), tmp / "rng.pt")
                write_json(tmp / "state.json", {"step": self.step, "micro_batches": self.step * self.config.grad_accum,
                                                "total_steps": self.total_steps, "world_size": self.dist.world_size,
                                                "created": now_iso()})
            for old in checkpoints(self.work)[:-self.config.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
            log.info("checkpoint %s", target)
        D.barrier()

    def load_checkpoint(self, path: Path) -> None:
        state = json.loads((path / "state.json").read_text())
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.dist.world_size:
            # the global batch (batch_size x processes) decides which pairs form micro-batch k
            raise ArtifactError(f"--resume: {path} was written by a run of {saved_world} process(es), this run has "
                                f"{self.dist.world_size}; resume with the same number (torchrun --nproc-per-node / "
                                "--nnodes) or start again with --overwrite")
        kw = {"map_location": self.device}
        self.model.load_state_dict(torch.load(path / "model.pt", **kw))
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", **kw))
        self.scheduler.load_state_dict(torch.load(path / "scheduler.pt", **kw))
        _set_rng_state(torch.load(path / "rng.pt", map_location="cpu", weights_only=False), self.device.type)
        self.step = int(state["step"])
        if self.dist.is_main and self.log_path.exists():  # drop log lines written after the checkpoint
            lines = [ln for ln in self.log_path.read_text().splitlines() if ln.strip()]
            keep = [ln for ln in lines if json.loads(ln).get("step", 0) <= self.step]
            self.log_path.write_text("".join(ln + "\n" for ln in keep))
        log.info("resumed from %s (step %d of %d)", path, self.step, self.total_steps)

    # ---------------------------------------------------------------- one micro-batch
    def micro_batch(self, k: int):
        """``(input_ids, attention_mask, labels, clean_ids, text_idx)`` of this rank's share of micro-batch ``k``."""
        B, r = self.config.batch_size, self.dist.rank
        pair_idx = self.batches.batch(k)[r * B:(r + 1) * B]
        text_idx = np.concatenate([self.corpus.a[pair_idx], self.corpus.b[pair_idx]])  # [2B]
        ids, attn = collate(self.tokens, text_idx, self.pad_id, self.pad_multiple)
        gen = torch.Generator().manual_seed(_mix(self.config.seed, k, r, 7))
        masked, labels = mask_tokens(ids, self.special_ids, self.tokenizer.mask_token_id, self.vocab_size,
                                     self.config.mlm_probability, gen)
        return masked, attn, labels, ids, torch.from_numpy(text_idx)

    def losses(self, k: int, stage: str):
        """Forward one micro-batch: ``(total, social or None, mlm, real tokens)``."""
        dev = self.device
        masked, attn, labels, clean, text_idx = self.micro_batch(k)
        tokens = int(attn.sum())  # counted on the host: no device sync
        mlm_index = (labels.reshape(-1) != -100).nonzero().squeeze(1)  # likewise
        host = (masked, attn, labels, mlm_index)
        if dev.type == "cuda":  # pinned host memory makes the copies asynchronous
            host = tuple(t.pin_memory() for t in host)
        masked, attn, labels, mlm_index = (t.to(dev, non_blocking=True) for t in host)
        social_on = stage != "mlm" and self.social is not None
        ctx = torch.autocast(dev.type, dtype=self.autocast_dtype) if self.autocast_dtype else nullcontext()
        with ctx:
            emb, mlm = self.ddp(masked, attn, labels, embed=social_on, mlm_index=mlm_index,
                                clean_input_ids=clean.to(dev) if (social_on and self.config.social_on_clean) else None)
        if not social_on:
            return mlm, None, mlm, tokens
        emb = emb.float()
        B = self.config.batch_size
        za, zb = emb[:B], emb[B:]
        ids_a, ids_b = text_idx[:B].to(dev), text_idx[B:].to(dev)
        rows = None
        if self.dist.enabled:
            za, zb = D.gather_with_grad(za), D.gather_with_grad(zb)
            ids_a, ids_b = D.gather_no_grad(ids_a), D.gather_no_grad(ids_b)
            rows = D.local_rows(self.dist.rank, self.dist.world_size, B).to(dev)
        social = self.social.compute_loss_from_embeddings(za, zb, ids=torch.cat([ids_a, ids_b]), rows=rows)
        return social + self.config.mlm_weight * mlm, social, mlm, tokens

    # ---------------------------------------------------------------- loop
    def train(self, max_steps_this_call: int | None = None, checkpoint_on_stop: bool = True) -> bool:
        """Run to ``total_steps`` (True) or stop early after ``max_steps_this_call`` steps (False).

        An early stop writes a checkpoint unless ``checkpoint_on_stop`` is False (benchmarks)."""
        from tqdm.auto import tqdm

        cfg = self.config
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=self.step, desc="lm train", unit="step",
                   disable=(not self.dist.is_main) or (None if cfg.progress is None else not cfg.progress))
        # Losses are summed on the device and read once per log window: a float() per step would
        # make the host wait for the GPU every step, so it could not prepare the next batch meanwhile.
        window = self._new_window()
        t_window = time.perf_counter()
        ran = 0
        while self.step < self.total_steps:
            if max_steps_this_call is not None and ran >= max_steps_this_call:
                break
            stage = "mlm" if self.step < self.mlm_steps else cfg.objective
            self.optimizer.zero_grad(set_to_none=True)
            for m in range(cfg.grad_accum):
                k = self.step * cfg.grad_accum + m
                sync = m == cfg.grad_accum - 1 or not self.dist.enabled
                with (nullcontext() if sync else self.ddp.no_sync()):
                    total, social, mlm, tokens = self.losses(k, stage)
                    (total / cfg.grad_accum).backward()
                window["loss"] += total.detach().float()
                window["mlm"] += mlm.detach().float()
                if social is not None:
                    window["social"] += social.detach().float()
                    window["social_n"] += 1
                window["n"] += 1
                window["tokens"] += tokens * self.dist.world_size
                window["seqs"] += 2 * cfg.batch_size * self.dist.world_size
            grad_norm = None
            if cfg.max_grad_norm > 0:
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)  # read at logging
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            ran += 1
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)  # the window's work is done before it is timed
                elapsed = time.perf_counter() - t_window
                rec = self._record(window, elapsed, stage, grad_norm)
                bar.set_postfix({k: rec[k] for k in ("loss", "social", "mlm", "tok/s") if rec.get(k) is not None})
                window = self._new_window()
                t_window = time.perf_counter()
            if (self.step % cfg.save_every == 0 or self.step == self.total_steps) and checkpoint_on_stop:
                self.save_checkpoint()
        bar.close()
        if checkpoint_on_stop and self.step < self.total_steps and (not checkpoints(self.work) or
                                             int(checkpoints(self.work)[-1].name.split("-")[1]) != self.step):
            self.save_checkpoint()
        return self.step >= self.total_steps

    def _new_window(self) -> dict:
        zero = lambda: torch.zeros((), device=self.device)  # noqa: E731
        return {"loss": zero(), "social": zero(), "mlm": zero(), "n": 0, "social_n": 0, "tokens": 0, "seqs": 0}

    def _record(self, w: dict, elapsed: float, stage: str, grad_norm) -> dict:
        n = max(1, w["n"])
        loss = D.all_reduce_mean(float(w["loss"]) / n, self.device)
        mlm = D.all_reduce_mean(float(w["mlm"]) / n, self.device)
        social = (D.all_reduce_mean(float(w["social"]) / w["social_n"], self.device)
                  if w["social_n"] else None)
        grad_norm = None if grad_norm is None else float(grad_norm)
        rec = {"step": self.step, "stage": stage, "epoch": round(self.step * self.config.grad_accum /
                                                                 self.batches.per_epoch, 4),
               "lr": self.scheduler.get_last_lr()[0], "loss": round(loss, 5), "mlm": round(mlm, 5),
               "social": None if social is None else round(social, 5),
               "grad_norm": None if grad_norm is None else round(grad_norm, 4),
               "tokens": w["tokens"], "tok/s": round(w["tokens"] / max(elapsed, 1e-9), 1),
               "seq/s": round(w["seqs"] / max(elapsed, 1e-9), 2), "elapsed_s": round(elapsed, 3)}
        self.last_record = rec
        if self.dist.is_main:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        log.debug("step %d: %s", self.step, rec)
        return rec


# --------------------------------------------------------------------------- output
def runtime_info(trainer: Trainer) -> dict:
    """Where and how the model was trained (not part of the fingerprint)."""
    import transformers

    dtype = trainer.autocast_dtype
    return {"device": trainer.device.type,
            "device_name": torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else None,
            "precision": "fp32" if dtype is None else str(dtype).removeprefix("torch."),
            "world_size": trainer.dist.world_size, "torch": torch.__version__,
            "transformers": transformers.__version__}


def publish(config: TrainConfig, trainer: Trainer, inputs: Inputs, base: str, started: float) -> Path:
    """Write MODEL_DIR atomically: save_pretrained model + tokenizer, head, config, log, manifest."""
    out = Path(config.out)
    model = trainer.model
    with atomic_dir(out, overwrite=True) as tmp:
        model.mlm.save_pretrained(tmp)  # safetensors by default
        trainer.tokenizer.save_pretrained(tmp)
        model.save_head(tmp)
        hidden = model.mlm.config.hidden_size
        write_json(tmp / "coengage_config.json", {
            "train": config.to_dict(), "base_model": base,
            "head": {"file": "head.safetensors", "input": model.pooling, "hidden": hidden, "dims": model.head_dims,
                     "activation": "gelu"},
            "max_length": config.max_length, "total_steps": trainer.total_steps, "mlm_stage_steps": trainer.mlm_steps,
        })
        if trainer.log_path.exists():
            shutil.copyfile(trainer.log_path, tmp / "train_log.jsonl")
        weights = file_fingerprint(tmp / "model.safetensors", full=True) if (tmp / "model.safetensors").exists() else ""
        manifest = {
            "kind": MODEL_KIND, "schema_version": MODEL_SCHEMA_VERSION, "created": now_iso(),
            "pairs": str(config.pairs), "pairs_fingerprint": inputs.pairs_fingerprint,
            "texts": config.texts, "texts_fingerprint": inputs.texts_fingerprint,
            "base_model": base, "objective": config.objective, "stages": config.stages,
            "steps": trainer.step, "counts": inputs.corpus.stats, "final": trainer.last_record,
            "timing": {"seconds": round(time.time() - started, 2)},
            "runtime": runtime_info(trainer),
            "fingerprint": combine_fingerprints(config.result_affecting(), inputs.pairs_fingerprint,
                                                inputs.texts_fingerprint, weights),
        }
        write_json(tmp / "manifest.json", manifest)
    return out


def train(config: TrainConfig) -> Path | None:
    """Run ``coengage lm train``; returns MODEL_DIR, or None when stopped early by ``max_steps_per_call``."""
    config.validate()
    started = time.time()
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    dist_info = D.init_from_env("cuda" if torch.cuda.is_available() and not config.device == "cpu" else "cpu")
    inputs = prepare_corpus(config)
    work, resume_from = open_workdir(config, dist_info.is_main)
    try:
        model, tokenizer, base = build_model(config, inputs.corpus, work, dist_info.is_main)
        trainer = Trainer(config, model, tokenizer, inputs.corpus, work, dist_info)
        log.info("training %d steps (%s; MLM-only stage: %d steps) on %s, %s", trainer.total_steps,
                 config.objective, trainer.mlm_steps, trainer.device, trainer.autocast_dtype or "fp32")
        if resume_from is not None:
            trainer.load_checkpoint(resume_from)
        finished = trainer.train(config.max_steps_per_call)
    except BaseException:
        # A fresh run that failed before its first checkpoint leaves nothing worth resuming.
        if resume_from is None and dist_info.is_main and not checkpoints(work):
            shutil.rmtree(work, ignore_errors=True)
        raise
    if not finished:
        log.info("stopped at step %d of %d; continue with --resume", trainer.step, trainer.total_steps)
        return None
    if dist_info.is_main:
        publish(config, trainer, inputs, base, started)
        if not config.keep_work:
            shutil.rmtree(work, ignore_errors=True)
        log.info("wrote %s", config.out)
    D.barrier()
    return Path(config.out)
