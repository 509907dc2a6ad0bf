"""Pairs + texts -> tokenised corpus -> deterministic, resumable, length-grouped micro-batches.

* :func:`load_pairs` reads a pair file (parquet / tsv / jsonl, optionally .gz) and checks
  its columns; :func:`pairs_fingerprint` is the fingerprint in its manifest (or of the file).
* :func:`load_texts` reads texts from a GRAPH_DIR or a plain table with tweet_id, text.
* :func:`build_corpus` keeps the texts that appear in pairs (each once), maps pairs to
  text indices, and counts pairs whose tweet has no text (fatal past a threshold).
* :class:`PairBatches` orders pairs per epoch from ``(seed, epoch)`` only, so micro-batch
  ``k`` is a pure function of ``k``: resuming needs just the count of consumed batches.
* :func:`collate` pads a batch to its longest text (dynamic padding); :func:`mask_tokens`
  applies BERT's 15% rule (80% [MASK], 10% random token, 10% unchanged).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coengage.artifacts import file_fingerprint, parts_fingerprint, read_parquet
from coengage.errors import InputError

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("tweet_a", "tweet_b")


def _format(path: Path) -> str:
    if path.is_dir():  # a directory of Parquet part files (`coengage mine --engine spark --spark-output partitioned`)
        return "parquet"
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, fmt in ((".parquet", "parquet"), (".pq", "parquet"), (".tsv", "tsv"), (".csv", "csv"),
                     (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl")):
        if name.endswith(ext):
            return fmt
    raise InputError(f"{path}: unknown table format; expected .parquet, .tsv, .csv or .jsonl (optionally .gz)")


def read_table(path: str | os.PathLike, columns=None):
    """A table file as a DataFrame, every listed column read as string."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    fmt = _format(path)
    try:
        if fmt == "parquet":
            df = read_parquet(path)
        elif fmt in ("tsv", "csv"):
            df = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False)
        else:
            df = pd.read_json(path, lines=True, dtype=False)
    except ValueError as e:
        if "empty" in str(e).lower() or "No columns" in str(e):
            return pd.DataFrame()
        raise InputError(f"{path}: cannot read as {fmt} ({e})") from e
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as e:  # pyarrow / parser errors name no file
        raise InputError(f"{path}: cannot read as {fmt} ({type(e).__name__}: {e})") from e
    return df


def load_pairs(path: str | os.PathLike):
    """The pair table (tweet ids as strings); InputError when empty or lacking columns."""
    df = read_table(path)
    missing = [c for c in PAIR_COLUMNS if c not in df.columns]
    if len(df) == 0:
        raise InputError(f"{path}: the pair file is empty (no pairs to train on); run `coengage mine` "
                         "with settings that produce pairs")
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; a pair file has columns "
                         f"tweet_a, tweet_b, score, method (found {', '.join(map(str, df.columns))})")
    for c in PAIR_COLUMNS:
        null = df[c].isna()
        if null.any():
            raise InputError(f"{path}: row {int(np.flatnonzero(null.to_numpy())[0])}: empty {c}")
        df[c] = df[c].astype(str)
    return df.reset_index(drop=True)


def pairs_fingerprint(path: str | os.PathLike) -> str:
    """The ``fingerprint`` of ``<pairs>.manifest.json`` when present, else a fingerprint of the file."""
    import json

    manifest = Path(f"{path}.manifest.json")
    if manifest.exists():
        try:
            fp = json.loads(manifest.read_text()).get("fingerprint")
        except json.JSONDecodeError as e:
            raise InputError(f"{manifest}: corrupt pair manifest ({e})") from e
        if fp:
            return str(fp)
    return parts_fingerprint(path) if Path(path).is_dir() else file_fingerprint(path)


def load_texts(source: str | os.PathLike) -> tuple[dict, str]:
    """``({tweet_id: text}, fingerprint)`` from a GRAPH_DIR or a table file with tweet_id, text."""
    source = Path(source)
    if source.is_dir():
        from graph.artifact import load

        graph = load(source)
        df = graph.texts(columns=["tweet_id", "text"])
        fp = graph.fingerprint
        where = f"{source}/texts.parquet"
    else:
        df = read_table(source)
        fp = file_fingerprint(source)
        where = str(source)
        missing = [c for c in ("tweet_id", "text") if c not in df.columns]
        if missing:
            raise InputError(f"{source}: missing column(s) {', '.join(missing)}; a texts table has columns "
                             f"tweet_id, text (found {', '.join(map(str, df.columns))})")
    ids = df["tweet_id"].astype(str).to_numpy()
    text = df["text"].fillna("").astype(str).to_numpy()
    keep = np.char.str_len(text.astype(str)) > 0 if len(text) else np.zeros(0, bool)
    mapping = dict(zip(ids[keep], text[keep]))
    log.info("texts: %d tweets with text from %s", len(mapping), where)
    return mapping, fp


@dataclass
class PairCorpus:
    """Unique texts and pairs as indices into them."""

    tweet_ids: list[str]  # [T] the tweet each text belongs to
    texts: list[str]  # [T]
    a: np.ndarray  # int64 [P] text index of each pair's first tweet
    b: np.ndarray  # int64 [P]
    stats: dict = field(default_factory=dict)

    @property
    def num_pairs(self) -> int:
        return len(self.a)


def build_corpus(pairs, texts: dict | None, *, max_missing_fraction: float = 0.05, strict: bool = False,
                 where: str = "pairs") -> PairCorpus:
    """Join pairs with texts (the texts table first, then the pair file's text_a/text_b columns)."""
    texts = dict(texts or {})
    for side in ("a", "b"):
        col = f"text_{side}"
        if col in pairs.columns:
            for tid, t in zip(pairs[f"tweet_{side}"], pairs[col]):
                if isinstance(t, str) and t and tid not in texts:
                    texts[tid] = t
    ta, tb = pairs["tweet_a"].to_numpy(), pairs["tweet_b"].to_numpy()
    has_a = np.fromiter((t in texts for t in ta), bool, len(ta))
    has_b = np.fromiter((t in texts for t in tb), bool, len(tb))
    self_pair = ta == tb
    ok = has_a & has_b & ~self_pair
    n = len(pairs)
    missing = int((~(has_a & has_b)).sum())
    missing_ids = len(set(ta[~has_a]) | set(tb[~has_b]))
    stats = {"pairs_read": n, "pairs_missing_text": missing, "tweets_missing_text": missing_ids,
             "self_pairs": int((self_pair & has_a & has_b).sum()), "pairs_used": int(ok.sum())}
    if missing:
        first = int(np.flatnonzero(~(has_a & has_b))[0])
        example = ta[first] if not has_a[first] else tb[first]
        msg = (f"{where}: {missing} of {n} pairs ({missing / n:.1%}) name a tweet without text "
               f"({missing_ids} distinct tweets, e.g. {example!r} in row {first})")
        if strict or missing / n > max_missing_fraction:
            raise InputError(msg + ("; --strict makes any fatal" if strict else
                                    f"; more than --max-missing-fraction {max_missing_fraction}. Are --texts "
                                    "and --pairs from the same graph?"))
        log.warning(msg + "; dropped")
    if stats["self_pairs"]:
        log.warning("%s: %d pairs of a tweet with itself dropped", where, stats["self_pairs"])
    if not ok.any():
        raise InputError(f"{where}: no usable pairs (every pair lacks a text or pairs a tweet with itself)")
    used = np.concatenate([ta[ok], tb[ok]])
    uniq, inverse = np.unique(used, return_inverse=True)
    m = int(ok.sum())
    stats["texts"] = int(len(uniq))
    return PairCorpus(tweet_ids=[str(u) for u in uniq], texts=[texts[u] for u in uniq],
                      a=inverse[:m].astype(np.int64), b=inverse[m:].astype(np.int64), stats=stats)


@dataclass
class TokenizedTexts:
    """Token ids of every text, flat: text i is ``ids[offsets[i]:offsets[i+1]]``."""

    ids: np.ndarray  # int32 [total tokens]
    offsets: np.ndarray  # int64 [T + 1]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def get(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]


def tokenize_texts(tokenizer, texts: list[str], max_length: int, chunk: int = 8192) -> TokenizedTexts:
    parts, lengths = [], []
    for s in range(0, len(texts), chunk):
        enc = tokenizer(texts[s:s + chunk], truncation=True, max_length=max_length, add_special_tokens=True,
                        return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        for e in enc:
            parts.append(np.asarray(e, dtype=np.int32))
            lengths.append(len(e))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    return TokenizedTexts(ids, offsets)


class PairBatches:
    """Global micro-batches of pair indices; batch ``k`` depends only on ``(seed, k)``.

    Each epoch permutes the pairs with ``default_rng([seed, epoch])``; with length grouping,
    windows of ``group_size`` batches are sorted by pair length (longer text of the pair) and
    cut into batches, and the batch order is shuffled, so a batch holds texts of similar
    length (less padding) while the order stays random. The last incomplete batch of an
    epoch is dropped so every batch (and every rank's share) has the same size.
    """

    def __init__(self, pair_lengths: np.ndarray, batch_pairs: int, seed: int, group_size: int = 50):
        self.lengths = np.asarray(pair_lengths)
        self.batch_pairs = int(batch_pairs)
        self.seed = int(seed)
        self.group_size = max(1, int(group_size))
        self.per_epoch = len(self.lengths) // self.batch_pairs
        if self.per_epoch == 0:
            raise InputError(f"only {len(self.lengths)} usable pairs, fewer than one batch of {self.batch_pairs} "
                             "(--batch-size x processes); lower --batch-size")
        self._epoch, self._order = None, None

    def epoch_order(self, epoch: int) -> np.ndarray:
        """[per_epoch, batch_pairs] pair indices of every batch of ``epoch``."""
        if self._epoch != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            perm = rng.permutation(len(self.lengths))[: self.per_epoch * self.batch_pairs]
            if self.group_size > 1:
                w = self.group_size * self.batch_pairs
                for s in range(0, len(perm), w):
                    win = perm[s:s + w]
                    perm[s:s + w] = win[np.argsort(-self.lengths[win], kind="stable")]
            batches = perm.reshape(self.per_epoch, self.batch_pairs)
            if self.group_size > 1:
                batches = batches[rng.permutation(self.per_epoch)]
            self._epoch, self._order = epoch, batches
        return self._order

    def batch(self, k: int) -> np.ndarray:
        return self.epoch_order(k // self.per_epoch)[k % self.per_epoch]


def collate(tokens: TokenizedTexts, text_idx: np.ndarray, pad_id: int, pad_to_multiple: int = 1,
            fixed_length: int | None = None):
    """Pad the texts ``text_idx`` to the longest (or ``fixed_length``): ``(input_ids, attention_mask)`` int64 [N, L]."""
    import torch

    lens = tokens.lengths[text_idx]
    L = int(fixed_length or lens.max())
    if pad_to_multiple > 1:
        L = -(-L // pad_to_multiple) * pad_to_multiple
    ids = np.full((len(text_idx), L), pad_id, dtype=np.int64)
    mask = np.zeros((len(text_idx), L), dtype=np.int64)
    for r, i in enumerate(text_idx):
        t = tokens.get(int(i))[:L]
        ids[r, :len(t)] = t
        mask[r, :len(t)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def mask_tokens(input_ids, special_ids, mask_id: int, vocab_size: int, probability: float, generator):
    """BERT masking: ``(masked_input_ids, labels)``; labels are -100 except at the selected positions.

    Of the selected tokens (``probability`` of the non-special ones) 80% become [MASK], 10% a
    random token and 10% stay. Special tokens ([CLS], [SEP], [PAD]) are never selected.
    At least one token per batch is selected so the MLM loss is always defined.
    """
    import torch

    special = torch.isin(input_ids, torch.as_tensor(sorted(special_ids), dtype=input_ids.dtype))
    p = torch.full(input_ids.shape, probability)
    p[special] = 0.0
    selected = torch.bernoulli(p, generator=generator).bool()
    if not selected.any():
        cand = torch.nonzero(~special)
        if len(cand):
            j = cand[torch.randint(len(cand), (1,), generator=generator)][0]
            selected[j[0], j[1]] = True
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    u = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    to_mask = selected & (u < 0.8)
    to_random = selected & (u >= 0.8) & (u < 0.9)
    masked[to_mask] = mask_id
    rand = torch.randint(vocab_size, input_ids.shape, generator=generator, dtype=input_ids.dtype)
    masked[to_random] = rand[to_random]
    return masked, labels
