"""Frozen text embeddings from a MODEL_DIR (or any Hugging Face encoder directory).

Poolings:

* ``cls``      -- the [CLS] hidden state, [N, H];
* ``mean``     -- the mean over non-special tokens, [N, H];
* ``cls_mean`` -- [CLS] ‖ mean of non-special tokens, [N, 2H] (TwHIN-BERT's evaluation);
* ``head``     -- the projection head applied to the pooling it was trained on (MODEL_DIRs from
  `coengage lm train`; ``head.input`` in coengage_config.json: cls or mean).

Texts are encoded in length-sorted batches (less padding) and returned in input order.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from coengage.errors import InputError

log = logging.getLogger(__name__)

POOLINGS = ("cls", "mean", "cls_mean", "head")


class Encoder:
    """A loaded encoder; reuse it to embed several text lists without reloading."""

    def __init__(self, model_dir: str | os.PathLike, device: str | None = None, max_length: int | None = None):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").exists():
            raise InputError(f"{model_dir}: not a model directory (no config.json)")
        hf_logging.set_verbosity_error()  # BertModel from a *ForMaskedLM checkpoint: unused MLM head, new pooler
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModel.from_pretrained(self.model_dir).to(self.device).eval()
        cfg_path = self.model_dir / "coengage_config.json"
        self.coengage_config = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        self.max_length = int(max_length or self.coengage_config.get("max_length") or
                              min(512, getattr(self.tokenizer, "model_max_length", 512) or 512))
        self._head = None
        self._special = torch.as_tensor(sorted(set(self.tokenizer.all_special_ids)), dtype=torch.long)

    @property
    def head(self):
        if self._head is None:
            from lm.model import load_head

            h = self.coengage_config.get("head")
            if not h:
                raise InputError(f"{self.model_dir}: no projection head (not written by `coengage lm train`); "
                                 "use pooling cls, mean or cls_mean")
            self._head = load_head(self.model_dir, h["hidden"], h["dims"]).to(self.device).eval()
        return self._head

    def dim(self, pooling: str) -> int:
        hidden = self.model.config.hidden_size
        return {"cls": hidden, "mean": hidden, "cls_mean": 2 * hidden}.get(pooling) or self.head[-1].out_features

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 64, pooling: str = "cls",
               progress: bool | None = None) -> np.ndarray:
        from tqdm.auto import tqdm

        if pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
        texts = ["" if t is None else str(t) for t in texts]
        out = np.zeros((len(texts), self.dim(pooling)), dtype=np.float32)
        if not texts:
            return out
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_attention_mask=False,
                             return_token_type_ids=False)["input_ids"]
        order = np.argsort([len(e) for e in enc], kind="stable")
        pad = self.tokenizer.pad_token_id or 0
        amp = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" and
               torch.cuda.is_bf16_supported() else nullcontext())
        for s in tqdm(range(0, len(order), batch_size), desc="encode", unit="batch",
                      disable=None if progress is None else not progress):
            idx = order[s:s + batch_size]
            L = max(len(enc[i]) for i in idx)
            ids = torch.full((len(idx), L), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), L), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, :len(enc[i])] = torch.as_tensor(enc[i])
                mask[r, :len(enc[i])] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            with amp:
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # [b, L, H]
            hidden = hidden.float()
            cls = hidden[:, 0]
            if pooling in ("mean", "cls_mean"):
                content = (mask.bool() & ~torch.isin(ids, self._special.to(self.device))).unsqueeze(-1)
                mean = (hidden * content).sum(1) / content.sum(1).clamp(min=1)
                vec = mean if pooling == "mean" else torch.cat([cls, mean], dim=-1)
            elif pooling == "head":
                from lm.model import pool

                vec = self.head(pool(hidden, mask, self.coengage_config["head"].get("input", "cls")))
            else:
                vec = cls
            out[idx] = vec.cpu().numpy()
        return out


def encode(model_dir: str | os.PathLike, texts: Sequence[str], batch_size: int = 64, pooling: str = "cls",
           device: str | None = None, progress: bool | None = None) -> np.ndarray:
    """Embed ``texts`` with the encoder in ``model_dir``: float32 [N, d] in input order (see module doc)."""
    return Encoder(model_dir, device=device).encode(texts, batch_size=batch_size, pooling=pooling, progress=progress)
