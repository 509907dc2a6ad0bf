"""Train a corpus tokenizer with `tokenizers` for `--from-scratch` models.

Two multilingual-safe models: byte-level BPE (every string encodes, no [UNK] ever) and
Unigram over a Metaspace pre-tokenizer. Either way the result is a
``PreTrainedTokenizerFast`` with BERT's special tokens and template
(``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``), saved with ``save_pretrained`` so
``AutoTokenizer.from_pretrained(MODEL_DIR)`` loads it.
"""

from __future__ import annotations

import logging
from typing import Iterable

log = logging.getLogger(__name__)

SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                  "sep_token": "[SEP]", "mask_token": "[MASK]"}


def train_tokenizer(texts: Iterable[str], vocab_size: int = 16000, kind: str = "bytelevel-bpe",
                    max_length: int = 128):
    """Train a tokenizer on ``texts``; returns a ``transformers.PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [SPECIAL_TOKENS[k] for k in ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")]
    if kind == "bytelevel-bpe":
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="[UNK]",
                                          show_progress=False)
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length, **SPECIAL_TOKENS)
    log.info("trained a %s tokenizer: %d tokens", kind, len(fast))
    return fast
