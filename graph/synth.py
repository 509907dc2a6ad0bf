"""Synthetic engagement logs with planted ground truth (``coengage synth``).

The generator plants a known structure that every later stage should recover:

* ``K`` topics. Every non-bot user has a Dirichlet interest mixture concentrated on one
  primary topic and, for some users, one secondary topic; every tweet has exactly one topic.
* Users engage with tweets of a topic drawn from their mixture, picking a tweet inside the
  topic by a power-law (Zipf) popularity; how often a user engages follows a power law too
  (Zipf over a random activity rank, the rank-size law of a Pareto tail). With several languages a user mostly engages in their own language.
* Engagement types fav / retweet / reply / quote with different rates; every tweet also has
  an ``author`` row at its creation time (the author is a user interested in its topic).
  Other engagements follow creation after an exponential delay, truncated to the time span.
* Noise: hyperactive bot users that engage with uniformly random tweets, exact duplicate
  rows, and (opt-in) a small fraction of malformed rows (see :data:`MALFORMED_KINDS`).
* Tweet texts are short and noisy: topic words (pronounceable pseudo-words generated per
  topic and language from the seed), shared filler/stop words, general words, topic
  hashtags, @mentions, t.co URLs, emoji and character-level typos.

Outputs (one directory, written atomically)::

    OUT/
      engagements.<ext>   user_id, tweet_id, engagement, timestamp
      tweets.<ext>        tweet_id, author_id, text, topic, hashtag, lang, created
      users.<ext>         user_id, is_bot, lang, activity, top_topic, interests (JSON list of K floats)
      manifest.json       kind "coengage.synth", schema_version 1, config, counts, columns, files, topics

Engagement rows are generated in fixed blocks of ``block_rows`` events, each block with
its own ``SeedSequence(seed, spawn_key=(stream, block))``, and streamed to disk in chunks of
``chunk_rows`` rows, so memory stays flat in the number of engagements and the file
*content* depends on the seed and the sizes but not on ``chunk_rows`` (Parquet row-group
boundaries, and therefore Parquet bytes, do follow ``chunk_rows``).

numpy + pyarrow only: no dgl, no torch.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from coengage.artifacts import atomic_dir, combine_fingerprints, file_fingerprint, write_json
from coengage.errors import ArtifactError, InputError

log = logging.getLogger(__name__)

KIND = "coengage.synth"
SCHEMA_VERSION = 1

FORMATS = ("parquet", "csv", "tsv", "jsonl")
ENGAGEMENT_TYPES = ("fav", "retweet", "reply", "quote")  # sampled types; "author" is added per tweet
AUTHOR = "author"
ALL_TYPES = ENGAGEMENT_TYPES + (AUTHOR,)
DEFAULT_RATES = {"fav": 0.6, "retweet": 0.2, "reply": 0.12, "quote": 0.08}
BOT_RATES = {"fav": 0.7, "retweet": 0.3, "reply": 0.0, "quote": 0.0}

#: What a malformed row looks like, per kind. Malformed rows are *extra* rows (corrupted
#: copies of generated rows); the clean rows are all still there.
MALFORMED_KINDS = {
    "empty_user": "user_id is the empty string",
    "empty_tweet": "tweet_id is the empty string",
    "bad_timestamp": "timestamp is not a number: a string such as 'not-a-time' in csv/tsv/jsonl, "
    "null in parquet (the column is int64 there)",
    "bad_engagement": "engagement is not a known type ('boost', 'unknown' or '???')",
}
_BAD_TIMESTAMPS = ("not-a-time", "2023-13-45 25:61:00", "NaN", "")
_BAD_ENGAGEMENTS = ("boost", "unknown", "???")

COLUMNS = {
    "engagements": ["user_id", "tweet_id", "engagement", "timestamp"],
    "tweets": ["tweet_id", "author_id", "text", "topic", "hashtag", "lang", "created"],
    "users": ["user_id", "is_bot", "lang", "activity", "top_topic", "interests"],
}

# Streams of the seed: each table / step draws from its own SeedSequence child.
_S_TOPICS, _S_USERS, _S_TWEETS, _S_VOCAB, _S_TEXT, _S_EVENTS, _S_IDS = range(7)


# ----------------------------------------------------------------------------- config


@dataclass
class SynthConfig:
    """What to generate. Validates itself on construction (raises InputError)."""

    users: int = field(default=2000, metadata={"help": "number of users (bots included)"})
    tweets: int = field(default=5000, metadata={"help": "number of tweets (at least --topics)"})
    engagements: int = field(default=100_000, metadata={
        "help": "number of clean engagement rows, the one 'author' row per tweet included "
                "(so at least --tweets); duplicate and malformed rows come on top"})
    topics: int = field(default=8, metadata={"help": "number of planted topics K"})
    seed: int = field(default=0, metadata={"help": "random seed; the same seed gives the same files"})
    format: str = field(default="parquet", metadata={"help": "output format: " + " | ".join(FORMATS)})
    gzip: bool = field(default=False, metadata={"help": "gzip csv/tsv/jsonl outputs (.gz suffix)"})
    bots: float = field(default=0.005, metadata={"help": "fraction of users that are bots"})
    bot_activity: float = field(default=10.0, metadata={
        "help": "a bot's activity as a multiple of the mean non-bot user's activity"})
    duplicate_rate: float = field(default=0.01, metadata={
        "help": "expected exact duplicate rows per clean row"})
    malformed_rate: float = field(default=0.0, metadata={
        "help": "expected malformed rows per clean row (opt-in; kinds: " + ", ".join(MALFORMED_KINDS) + ")"})
    languages: tuple = field(default=("en",), metadata={
        "help": "tweet languages; several give per-language vocabularies (first is most common)"})
    span_days: float = field(default=30.0, metadata={"help": "time span of tweets and engagements, days"})
    start: int = field(default=1_672_531_200, metadata={"help": "start of the span, unix seconds"})
    rates: dict = field(default_factory=lambda: dict(DEFAULT_RATES), metadata={
        "help": "relative rates of the engagement types fav, retweet, reply, quote"})
    secondary_topic_prob: float = field(default=0.25, metadata={
        "help": "probability that a user has a secondary topic of interest"})
    background: float = field(default=0.02, metadata={
        "help": "Dirichlet concentration of every topic in a user's mixture (off-topic noise)"})
    activity_exponent: float = field(default=1.5, metadata={
        "help": "Pareto tail exponent of user activity (smaller = heavier tail)"})
    popularity_exponent: float = field(default=0.8, metadata={
        "help": "Zipf exponent of tweet popularity inside a topic"})
    cross_language: float = field(default=0.1, metadata={
        "help": "probability that an engagement ignores the user's language"})
    mean_delay_hours: float = field(default=12.0, metadata={
        "help": "mean delay between a tweet's creation and an engagement, hours"})
    chunk_rows: int = field(default=1_000_000, metadata={
        "help": "rows per write (Parquet row group); bounds memory, does not change content"})
    block_rows: int = field(default=65_536, metadata={
        "help": "events per random block (part of the seed layout: changing it changes content)"})

    def __post_init__(self) -> None:
        if isinstance(self.languages, str):
            self.languages = tuple(x.strip() for x in self.languages.split(",") if x.strip())
        self.languages = tuple(self.languages)
        self.rates = dict(self.rates)
        self.validate()

    def validate(self) -> None:
        def bad(option: str, msg: str) -> None:
            raise InputError(f"synth: --{option.replace('_', '-')} {msg}")

        for name in ("users", "tweets", "engagements", "topics", "chunk_rows", "block_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                bad(name, f"must be a positive integer, got {v!r}")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            bad("seed", f"must be a non-negative integer, got {self.seed!r}")
        if self.tweets < self.topics:
            bad("tweets", f"must be at least --topics ({self.topics}) so every topic has a tweet, got {self.tweets}")
        if self.engagements < self.tweets:
            bad("engagements", f"must be at least --tweets ({self.tweets}): every tweet has an "
                f"'author' row, got {self.engagements}")
        if self.format not in FORMATS:
            bad("format", f"must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.gzip and self.format == "parquet":
            bad("gzip", "applies to csv, tsv and jsonl; parquet is compressed internally (zstd)")
        if not (0.0 <= self.bots < 1.0):
            bad("bots", f"must be a fraction in [0, 1), got {self.bots!r}")
        if self.users - self.n_bots < 1:
            bad("bots", f"leaves no non-bot user among {self.users} users")
        for name in ("duplicate_rate", "malformed_rate"):
            v = getattr(self, name)
            if not (0.0 <= v < 1.0):
                bad(name, f"must be in [0, 1), got {v!r}")
        for name in ("secondary_topic_prob", "cross_language"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                bad(name, f"must be in [0, 1], got {v!r}")
        for name in ("bot_activity", "background", "activity_exponent", "span_days", "mean_delay_hours"):
            v = getattr(self, name)
            if not (v > 0 and np.isfinite(v)):
                bad(name, f"must be a positive number, got {v!r}")
        if not (self.popularity_exponent >= 0 and np.isfinite(self.popularity_exponent)):
            bad("popularity_exponent", f"must be >= 0, got {self.popularity_exponent!r}")
        if not isinstance(self.start, (int, np.integer)) or self.start < 0:
            bad("start", f"must be a non-negative integer (unix seconds), got {self.start!r}")
        if self.span_seconds < 1:
            bad("span_days", f"must cover at least one second, got {self.span_days!r}")
        if not self.languages:
            bad("languages", "must name at least one language")
        unknown = [x for x in self.languages if x not in LANGUAGES]
        if unknown:
            bad("languages", f"has unknown language(s) {', '.join(unknown)}; known: {', '.join(LANGUAGES)}")
        if len(set(self.languages)) != len(self.languages):
            bad("languages", f"lists a language twice: {','.join(self.languages)}")
        extra = set(self.rates) - set(ENGAGEMENT_TYPES)
        if extra:
            bad("rates", f"has unknown engagement type(s) {', '.join(sorted(extra))}; known: {', '.join(ENGAGEMENT_TYPES)}")
        if any(not (float(v) >= 0) for v in self.rates.values()) or sum(float(v) for v in self.rates.values()) <= 0:
            bad("rates", f"must be non-negative with a positive sum, got {self.rates}")

    @property
    def n_bots(self) -> int:
        return int(round(self.bots * self.users))

    @property
    def span_seconds(self) -> int:
        return int(round(self.span_days * 86400))

    @property
    def extension(self) -> str:
        return self.format + (".gz" if self.gzip else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["languages"] = list(self.languages)
        return d

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}


def parse_rates(text: str) -> dict:
    """``"fav=0.6,retweet=0.2,reply=0.12,quote=0.08"`` -> dict (missing types get rate 0)."""
    rates = {t: 0.0 for t in ENGAGEMENT_TYPES}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in rates:
            raise InputError(f"synth: --rates expects TYPE=RATE pairs with TYPE in {', '.join(ENGAGEMENT_TYPES)}, got {part!r}")
        try:
            rates[name] = float(value)
        except ValueError:
            raise InputError(f"synth: --rates: {name}={value!r} is not a number") from None
    return rates


# ----------------------------------------------------------------------------- seeding


def _rng(seed: int, stream: int, block: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, block)))


# ----------------------------------------------------------------------------- language

# Syllable inventories per language: onsets, vowels, codas, word endings.
LANGUAGES = {
    "en": (["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
            "br", "cr", "dr", "fl", "gr", "pl", "st", "tr", "sh", "ch", "th", "sl", "sn", "sp"],
           ["a", "e", "i", "o", "u", "ea", "oo", "ai", "ou"],
           ["", "", "n", "r", "s", "t", "l", "m", "ck", "nd", "st", "ng", "x"],
           ["", "", "ing", "er", "ly", "tion", "ness", "s", "y"]),
    "es": (["b", "c", "d", "f", "g", "j", "l", "m", "n", "p", "r", "s", "t", "v", "ll", "ch", "br",
            "tr", "pl", "gr", "qu", "ñ"],
           ["a", "e", "i", "o", "u", "ia", "ue", "io"],
           ["", "", "", "n", "s", "r", "l"],
           ["o", "a", "os", "as", "ar", "ción", "dad", "ito"]),
    "fr": (["b", "c", "d", "f", "g", "j", "l", "m", "n", "p", "r", "s", "t", "v", "ch", "br", "tr",
            "pl", "gr", "qu", "gn"],
           ["a", "e", "i", "o", "u", "ou", "ai", "é", "è", "eu", "oi"],
           ["", "", "", "n", "r", "s", "l", "x"],
           ["", "eau", "ette", "ique", "eur", "ais", "ent", "oir", "é"]),
    "de": (["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "w", "z", "sch", "kr",
            "st", "sp", "pf", "br", "gr", "tr"],
           ["a", "e", "i", "o", "u", "ei", "au", "ie", "ü", "ö", "ä"],
           ["", "n", "r", "s", "t", "l", "ch", "ck", "tz", "nd"],
           ["", "ung", "heit", "en", "er", "lich", "keit", "schaft"]),
    "pt": (["b", "c", "d", "f", "g", "j", "l", "m", "n", "p", "r", "s", "t", "v", "lh", "nh", "br",
            "tr", "pr", "gr"],
           ["a", "e", "i", "o", "u", "ão", "ei", "ou"],
           ["", "", "", "s", "r", "l", "m"],
           ["o", "a", "os", "inho", "ção", "mente", "eiro"]),
    "it": (["b", "c", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t", "v", "z", "gl", "gn", "sc",
            "tr", "pr", "br", "st"],
           ["a", "e", "i", "o", "u", "ia", "io"],
           ["", "", "", "n", "r", "l"],
           ["o", "a", "i", "e", "ino", "etto", "zione"]),
}

STOP_WORDS = {
    "en": "the a to and of is in it for this on my so just that with be at you i we not but was "
          "are have all me what like when now lol omg really about".split(),
    "es": "el la de que y en los un por con no una su para es lo como más pero sus le ya o este "
          "sí porque muy sin sobre también jaja".split(),
    "fr": "le la de et un une est pas je en les des du que qui dans pour sur il elle on avec mais "
          "ce très tout bien mdr".split(),
    "de": "der die und das ist nicht ich ein eine zu mit den von auf es sie wir aber so auch noch "
          "wie nur schon sehr haha".split(),
    "pt": "o a de que e do da em um para é com não uma os no se na por mais as dos como mas foi "
          "ao kkk".split(),
    "it": "il la di che e un una è per non in con del si le da come ma anche più sono questo "
          "molto tutto ahah".split(),
}

EMOJI = ["😂", "❤️", "🔥", "😍", "👍", "🙏", "😭", "✨", "🎉", "💯", "🤔", "👀", "😎", "🥳", "😅",
         "🙌", "💪", "⚽", "🎮", "🎵", "📈", "🍕", "🌍", "🚀", "📚", "🎬", "🏀", "💻", "🗳️", "☕",
         "🌧️", "🐶", "💸", "🧪", "🎨", "🤖", "🍷", "🚗", "🏆", "🌱"]

_TYPO_KEYS = "qwertyuiopasdfghjklzxcvbnm"
TOPIC_WORDS = 160  # pseudo-words per (topic, language)
GENERAL_WORDS = 400  # pseudo-words per language shared by all topics
HASHTAGS_PER_TOPIC = 4
_HASHTAG_WEIGHTS = np.array([0.55, 0.2, 0.15, 0.1])


def _pseudo_words(rng: np.random.Generator, lang: str, n: int, taken: set) -> list[str]:
    """``n`` distinct pronounceable pseudo-words in ``lang``'s phonology, not in ``taken``."""
    onsets, vowels, codas, endings = LANGUAGES[lang]
    out: list[str] = []
    while len(out) < n:
        m = 2 * (n - len(out)) + 8
        n_syl = rng.choice([1, 2, 2, 3], size=m)
        o = rng.integers(0, len(onsets), size=(m, 3))
        v = rng.integers(0, len(vowels), size=(m, 3))
        c = rng.integers(0, len(codas), size=(m, 3))
        e = rng.integers(0, len(endings), size=m)
        for i in range(m):
            s = n_syl[i]
            word = "".join(onsets[o[i, j]] + vowels[v[i, j]] + (codas[c[i, j]] if j == s - 1 else "")
                           for j in range(s))
            word += endings[e[i]]
            if 3 <= len(word) <= 12 and word not in taken:
                taken.add(word)
                out.append(word)
                if len(out) == n:
                    break
    return out


def _zipf_cum(n: int, exponent: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    c = np.cumsum(w)
    return c / c[-1]


@dataclass
class _Vocab:
    topic_names: list[str]
    hashtags: list[list[str]]  # [K][H]
    topic_words: dict  # (topic, lang) -> list[str]
    general: dict  # lang -> list[str]
    stop: dict  # lang -> list[str]
    emoji_fav: np.ndarray  # [K, 3] indices into EMOJI

    def __post_init__(self) -> None:
        """A flat word table so tweet texts index it with numpy, not per-token dict look-ups."""
        langs = list(self.general)
        table: list[str] = []
        K = len(self.topic_names)
        self.topic_off = np.zeros((K, len(langs)), dtype=np.int64)
        self.general_off = np.zeros(len(langs), dtype=np.int64)
        self.stop_off = np.zeros(len(langs), dtype=np.int64)
        self.stop_len = np.zeros(len(langs), dtype=np.int64)
        for li, lang in enumerate(langs):
            for k in range(K):
                self.topic_off[k, li] = len(table)
                table += self.topic_words[(k, lang)]
            self.general_off[li] = len(table)
            table += self.general[lang]
            self.stop_off[li], self.stop_len[li] = len(table), len(self.stop[lang])
            table += self.stop[lang]
        self.table = np.array(table, dtype=object)
        self.hashtag_table = np.array(self.hashtags, dtype=object)  # [K, H]


def _build_vocab(cfg: SynthConfig) -> _Vocab:
    rng = _rng(cfg.seed, _S_VOCAB)
    taken: set = set()
    names = _pseudo_words(rng, "en", cfg.topics, taken)
    hashtags = []
    suffixes = ["news", "life", "talk", "fans", "daily", "2023", "time", "world", "club", "live"]
    for k, name in enumerate(names):
        extra = _pseudo_words(rng, "en", 2, taken)
        suf = suffixes[int(rng.integers(len(suffixes)))]
        tags = [f"#{name}", f"#{name}{suf}", f"#{extra[0]}", f"#{extra[1]}{name[:3]}"]
        hashtags.append(tags)
    topic_words, general = {}, {}
    for lang in cfg.languages:
        general[lang] = _pseudo_words(rng, lang, GENERAL_WORDS, taken)
        for k in range(cfg.topics):
            topic_words[(k, lang)] = _pseudo_words(rng, lang, TOPIC_WORDS, taken)
    emoji_fav = np.stack([rng.choice(len(EMOJI), size=3, replace=False) for _ in range(cfg.topics)])
    return _Vocab(names, hashtags, topic_words, general, {l: STOP_WORDS[l] for l in cfg.languages}, emoji_fav)


# ----------------------------------------------------------------------------- the world


@dataclass
class _World:
    """The planted truth: users, tweets and the samplers the engagement blocks use."""

    user_ids: pa.Array  # string [U]
    is_bot: np.ndarray  # bool [U]
    user_lang: np.ndarray  # int8 [U]
    activity: np.ndarray  # float64 [U], sums to 1 (expected share of sampled engagements)
    interests: np.ndarray  # float64 [U, K]
    top_topic: np.ndarray  # int32 [U], -1 for bots
    tweet_ids: pa.Array  # string [T]
    topic: np.ndarray  # int32 [T]
    author: np.ndarray  # int64 [T] user index
    tweet_lang: np.ndarray  # int8 [T]
    created: np.ndarray  # int64 [T]
    # samplers (all O(1) per draw: inverse CDFs of rank-based power laws, no binary search)
    bot_share: float  # probability that a sampled engagement is a bot's
    bots: np.ndarray  # int64 [n_bots] user indices
    human_by_rank: np.ndarray  # int64 [n_humans]: user index of activity rank r
    interest_cum: np.ndarray  # float32 [U, K]
    order: np.ndarray  # int64 [T]: tweets sorted by (topic, lang, popularity rank)
    seg: np.ndarray  # int64 [K * L, 2]: [start, end) of each (topic, lang) segment in ``order``
    lang_cum: np.ndarray  # float64 [K, L]: cumulative share of topic k's tweets in each language
    author_flat: np.ndarray  # float64 [K * U]: row k = k + cumulative author weight of topic k


def _unique_ids(rng: np.random.Generator, n: int, base: int, max_gap: int) -> np.ndarray:
    """n distinct increasing integers starting near ``base`` with random gaps (like real ids)."""
    return base + np.cumsum(rng.integers(1, max_gap, size=n, dtype=np.int64))


def _power_law_cdf(x: np.ndarray, n, s: float) -> np.ndarray:
    """CDF on [1, n+1] of the continuous density proportional to x^-s."""
    if abs(1.0 - s) < 1e-9:
        return np.log(x) / np.log(n + 1.0)
    return (np.power(x, 1.0 - s) - 1.0) / (np.power(n + 1.0, 1.0 - s) - 1.0)


def power_law_rank(u: np.ndarray, n, s: float) -> np.ndarray:
    """Ranks in [0, n) with P(rank r) = CDF(r + 2) - CDF(r + 1) (Zipf-like, exponent ``s``).

    ``u`` uniform in [0, 1); ``n`` a scalar or an array like ``u``. Inverse CDF, O(1) per draw.
    """
    n = np.asarray(n, dtype=np.float64)
    if s == 0:
        x = 1.0 + u * n
    elif abs(1.0 - s) < 1e-9:
        x = np.power(n + 1.0, u)
    else:
        x = np.power(1.0 + u * (np.power(n + 1.0, 1.0 - s) - 1.0), 1.0 / (1.0 - s))
    return np.clip(np.floor(x).astype(np.int64) - 1, 0, np.maximum(n.astype(np.int64) - 1, 0))


def power_law_mass(n: int, s: float) -> np.ndarray:
    """P(rank r) for r in [0, n): the exact probabilities :func:`power_law_rank` draws with."""
    if s == 0:
        return np.full(n, 1.0 / n)
    edges = _power_law_cdf(np.arange(1, n + 2, dtype=np.float64), n, s)
    return np.diff(edges)


def _build_world(cfg: SynthConfig) -> _World:
    K, U, T, L = cfg.topics, cfg.users, cfg.tweets, len(cfg.languages)
    # Topic sizes: mildly uneven.
    topic_w = _rng(cfg.seed, _S_TOPICS).dirichlet(np.full(K, 5.0))

    # --- users
    rng = _rng(cfg.seed, _S_USERS)
    is_bot = np.zeros(U, dtype=bool)
    is_bot[rng.choice(U, size=cfg.n_bots, replace=False)] = True
    lang_w = 1.0 / np.arange(1, L + 1)
    user_lang = rng.choice(L, size=U, p=lang_w / lang_w.sum()).astype(np.int8)
    primary = rng.choice(K, size=U, p=topic_w)
    alpha = np.full((U, K), cfg.background)
    alpha[np.arange(U), primary] += 6.0
    if K > 1:
        has_second = rng.random(U) < cfg.secondary_topic_prob
        second = (primary + rng.integers(1, K, size=U)) % K
        alpha[np.flatnonzero(has_second), second[has_second]] += 2.0
    g = rng.gamma(alpha)
    interests = g / g.sum(axis=1, keepdims=True)
    interests[is_bot] = 1.0 / K
    top_topic = interests.argmax(axis=1).astype(np.int32)
    top_topic[is_bot] = -1
    # Activity: Zipf over a random rank with exponent 1/a, the rank-size law of a Pareto(a)
    # tail. Each bot has bot_activity times the mean human's activity.
    humans, bots = np.flatnonzero(~is_bot), np.flatnonzero(is_bot)
    human_by_rank = rng.permutation(humans)
    n_h = len(humans)
    bot_mass = len(bots) * cfg.bot_activity / n_h
    bot_share = bot_mass / (1.0 + bot_mass)
    activity = np.empty(U)
    activity[human_by_rank] = power_law_mass(n_h, 1.0 / cfg.activity_exponent) * (1.0 - bot_share)
    activity[bots] = bot_share / max(1, len(bots))
    uid_ints = _unique_ids(_rng(cfg.seed, _S_IDS, 0), U, 10_000_000, 2000)
    uid_ints = uid_ints[_rng(cfg.seed, _S_IDS, 1).permutation(U)]
    user_ids = pa.array([f"u{x}" for x in uid_ints.tolist()], type=pa.string())

    # --- tweets
    rng = _rng(cfg.seed, _S_TWEETS)
    topic = rng.choice(K, size=T, p=topic_w).astype(np.int32)
    topic[rng.choice(T, size=K, replace=False)] = np.arange(K, dtype=np.int32)  # every topic has a tweet
    # Author of a topic-k tweet: a non-bot user, weight activity * interest in k.
    author_w = activity[:, None] * interests
    author_w[is_bot] = 0.0
    author_cum = np.cumsum(author_w, axis=0).T.copy()  # [K, U]
    author_cum /= author_cum[:, -1:]
    u = rng.random(T)
    flat = (author_cum + np.arange(K)[:, None]).ravel()  # K increasing CDFs laid end to end
    del author_cum
    author = np.clip(np.searchsorted(flat, topic + u * (1 - 1e-12), "right") - topic.astype(np.int64) * U, 0, U - 1)
    tweet_lang = user_lang[author]
    created = cfg.start + rng.integers(0, cfg.span_seconds, size=T, dtype=np.int64)
    # Popularity: a random rank inside the tweet's (topic, lang) segment; engagements pick
    # rank r with the power-law mass of r (see power_law_rank).
    key = topic.astype(np.int64) * L + tweet_lang
    order = np.lexsort((rng.random(T), key))
    sorted_key = key[order]
    seg = np.stack([np.searchsorted(sorted_key, np.arange(K * L), "left"),
                    np.searchsorted(sorted_key, np.arange(K * L), "right")], axis=1)
    counts = (seg[:, 1] - seg[:, 0]).reshape(K, L).astype(np.float64)
    lang_cum = np.cumsum(counts, axis=1) / counts.sum(axis=1, keepdims=True)
    # Snowflake-like ids: increasing with creation time, file order shuffled.
    tid_sorted = _unique_ids(_rng(cfg.seed, _S_IDS, 2), T, 1_600_000_000_000_000_000, 1 << 22)
    tid = np.empty(T, dtype=np.int64)
    tid[np.argsort(created, kind="stable")] = tid_sorted
    tweet_ids = pa.array([f"t{x}" for x in tid.tolist()], type=pa.string())

    interest_cum = np.cumsum(interests, axis=1).astype(np.float32)
    interest_cum[:, -1] = 1.0
    return _World(user_ids, is_bot, user_lang, activity, interests, top_topic, tweet_ids, topic, author,
                  tweet_lang, created, bot_share, bots, human_by_rank, interest_cum, order, seg, lang_cum,
                  flat)


def _sample_tweets(w: _World, cfg: SynthConfig, rng: np.random.Generator, k: np.ndarray,
                   lang: np.ndarray) -> np.ndarray:
    """One tweet of topic ``k`` per draw, by popularity; in language ``lang`` where it has
    tweets of that topic, except a ``cross_language`` share that picks the language at random."""
    m, L = len(k), len(cfg.languages)
    if L > 1:
        s = k * L + lang
        own = (rng.random(m) >= cfg.cross_language) & (w.seg[s, 1] > w.seg[s, 0])
        any_lang = np.minimum((rng.random(m)[:, None] >= w.lang_cum[k]).sum(axis=1), L - 1)
        s = np.where(own, s, k * L + any_lang)
    else:
        s = k
    a, n = w.seg[s, 0], w.seg[s, 1] - w.seg[s, 0]
    return w.order[a + power_law_rank(rng.random(m), n, cfg.popularity_exponent)]


# ----------------------------------------------------------------------------- engagements


@dataclass
class _Block:
    user: np.ndarray  # int64
    tweet: np.ndarray  # int64
    etype: np.ndarray  # int8 index into ALL_TYPES
    time: np.ndarray  # int64
    n_clean: int
    dup: int
    malformed: dict  # kind -> count
    table: pa.Table


def _engagement_block(w: _World, cfg: SynthConfig, b: int, fmt: str) -> _Block:
    """Events [b * block_rows, min(N, (b+1) * block_rows)) of the log, plus noise rows."""
    rng = _rng(cfg.seed, _S_EVENTS, b)
    text_format = fmt != "parquet"
    N, T, U, K, L = cfg.engagements, cfg.tweets, cfg.users, cfg.topics, len(cfg.languages)
    lo, hi = b * cfg.block_rows, min(N, (b + 1) * cfg.block_rows)
    n = hi - lo
    n_auth = max(0, min(hi, T) - lo)  # events < T are the tweets' author rows
    m = n - n_auth
    user = np.empty(n, dtype=np.int64)
    tweet = np.empty(n, dtype=np.int64)
    etype = np.empty(n, dtype=np.int8)
    time = np.empty(n, dtype=np.int64)
    if n_auth:
        t = np.arange(lo, lo + n_auth)
        user[:n_auth], tweet[:n_auth] = w.author[t], t
        etype[:n_auth] = ALL_TYPES.index(AUTHOR)
        time[:n_auth] = w.created[t]
    if m:
        bot = rng.random(m) < w.bot_share
        n_h = len(w.human_by_rank)
        u = w.human_by_rank[power_law_rank(rng.random(m), n_h, 1.0 / cfg.activity_exponent)]
        if len(w.bots):
            u = np.where(bot, w.bots[rng.integers(0, len(w.bots), size=m)], u)
        k = (rng.random(m)[:, None] >= w.interest_cum[u]).sum(axis=1)
        k = np.minimum(k, K - 1)
        tw = _sample_tweets(w, cfg, rng, k, w.user_lang[u].astype(np.int64))
        tw = np.where(bot, rng.integers(0, T, size=m), tw)
        p_h = np.array([cfg.rates.get(x, 0.0) for x in ENGAGEMENT_TYPES], dtype=np.float64)
        p_b = np.array([BOT_RATES[x] for x in ENGAGEMENT_TYPES], dtype=np.float64)
        cum_h, cum_b = np.cumsum(p_h / p_h.sum()), np.cumsum(p_b / p_b.sum())
        r = rng.random(m)
        et = np.where(bot, np.searchsorted(cum_b, r, side="right"), np.searchsorted(cum_h, r, side="right"))
        et = np.minimum(et, len(ENGAGEMENT_TYPES) - 1)
        # Truncated exponential delay: always inside [created, end of span].
        scale = cfg.mean_delay_hours * 3600.0
        remaining = (cfg.start + cfg.span_seconds - 1 - w.created[tw]).astype(np.float64)
        delay = -scale * np.log1p(-rng.random(m) * -np.expm1(-remaining / scale))
        ts = w.created[tw] + np.minimum(np.floor(delay), remaining).astype(np.int64)
        user[n_auth:], tweet[n_auth:], etype[n_auth:], time[n_auth:] = u, tw, et, ts
    # Noise: exact duplicates, then (opt-in) malformed copies; then shuffle the block.
    n_dup = int(rng.binomial(n, cfg.duplicate_rate)) if cfg.duplicate_rate > 0 else 0
    n_bad = int(rng.binomial(n, cfg.malformed_rate)) if cfg.malformed_rate > 0 else 0
    src = np.concatenate([np.arange(n), rng.integers(0, n, size=n_dup), rng.integers(0, n, size=n_bad)])
    kinds = rng.integers(0, len(MALFORMED_KINDS), size=n_bad)
    perm = rng.permutation(len(src))
    bad_pos = np.full(len(src), -1, dtype=np.int64)
    bad_pos[n + n_dup:] = kinds
    src, bad_pos = src[perm], bad_pos[perm]

    uid = w.user_ids.take(pa.array(user[src]))
    tid = w.tweet_ids.take(pa.array(tweet[src]))
    etn = pa.array(ALL_TYPES, type=pa.string()).take(pa.array(etype[src]))
    ts_col = time[src]
    malformed = {kname: 0 for kname in MALFORMED_KINDS}
    ts_arr = pa.array(ts_col, type=pa.int64())
    if n_bad:
        import pyarrow.compute as pc

        for ki, kname in enumerate(MALFORMED_KINDS):
            malformed[kname] = int((bad_pos == ki).sum())
        pick = rng.integers(0, 12, size=len(src))  # which bad value, for kinds with several
        empty = pa.scalar("", pa.string())
        uid = pc.if_else(pa.array(bad_pos == 0), empty, uid)
        tid = pc.if_else(pa.array(bad_pos == 1), empty, tid)
        bad_et = pa.array(_BAD_ENGAGEMENTS, pa.string()).take(pa.array(pick % len(_BAD_ENGAGEMENTS)))
        etn = pc.if_else(pa.array(bad_pos == 3), bad_et, etn)
        bad_t = bad_pos == 2
        if text_format:
            bad = [json.dumps(x) for x in _BAD_TIMESTAMPS] if fmt == "jsonl" else list(_BAD_TIMESTAMPS)
            bad_ts = pa.array(bad, pa.string()).take(pa.array(pick % len(_BAD_TIMESTAMPS)))
            ts_arr = pc.if_else(pa.array(bad_t), bad_ts, pa.array(ts_col.astype(str), pa.string()))
        else:
            ts_arr = pa.array(ts_col, type=pa.int64(), mask=bad_t)
    elif text_format and cfg.malformed_rate > 0:
        ts_arr = pa.array(ts_col.astype(str), type=pa.string())
    table = pa.table({"user_id": uid, "tweet_id": tid, "engagement": etn, "timestamp": ts_arr})
    if fmt == "jsonl" and pa.types.is_string(ts_arr.type):  # numbers stay JSON numbers
        table = table.replace_schema_metadata(None)
        schema = table.schema.set(3, table.schema.field(3).with_metadata({_RAW_JSON: b"1"}))
        table = table.cast(schema)
    return _Block(user, tweet, etype, time, n, n_dup, malformed, table)


# ----------------------------------------------------------------------------- texts


def _typo(word: str, r: np.ndarray) -> str:
    """One character-level typo in ``word``; ``r`` holds 3 uniform draws."""
    if len(word) < 3:
        return word
    i = int(r[0] * (len(word) - 1))
    op = int(r[1] * 4)
    if op == 0:  # swap neighbours
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == 1:  # drop a character
        return word[:i] + word[i + 1:]
    if op == 2:  # double a character
        return word[:i] + word[i] + word[i:]
    return word[:i] + _TYPO_KEYS[int(r[2] * len(_TYPO_KEYS))] + word[i + 1:]


_URL_CHARS = np.array(list("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"), dtype=object)
_EMOJI_REPEATS = np.array([[e * c for c in (1, 2, 3)] for e in EMOJI], dtype=object)
TEXT_BLOCK_DIVISOR = 16  # text rows per random block = block_rows // 16 (texts cost more per row)


def _tweet_block(w: _World, cfg: SynthConfig, vocab: _Vocab, b: int) -> pa.Table:
    """Rows [b * block, (b+1) * block) of the tweets table, texts included.

    Vectorised: every token (words and extras) gets a sort key (tweet, position); one
    argsort puts them in order and each text is one ``" ".join`` of a slice.
    """
    rng = _rng(cfg.seed, _S_TEXT, b)
    block = max(1, cfg.block_rows // TEXT_BLOCK_DIVISOR)
    lo, hi = b * block, min(cfg.tweets, (b + 1) * block)
    n, U = hi - lo, cfg.users
    topic, lang = w.topic[lo:hi].astype(np.int64), w.tweet_lang[lo:hi].astype(np.int64)
    # Word tokens: topic word, stop word or general word, each Zipf over its word list.
    lengths = rng.integers(8, 31, size=n)
    total = int(lengths.sum())
    tok_tweet = np.repeat(np.arange(n), lengths)
    tok_pos = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    tok_topic, tok_lang = topic[tok_tweet], lang[tok_tweet]
    cls = rng.choice(3, size=total, p=[0.45, 0.4, 0.15])
    u = rng.random(total)
    idx = np.where(
        cls == 0, vocab.topic_off[tok_topic, tok_lang] + power_law_rank(u, TOPIC_WORDS, 0.8),
        np.where(cls == 1, vocab.stop_off[tok_lang] + power_law_rank(u, vocab.stop_len[tok_lang], 1.0),
                 vocab.general_off[tok_lang] + power_law_rank(u, GENERAL_WORDS, 1.0)))
    words = vocab.table[idx]
    noise = rng.random(total)
    typo_r = rng.random((total, 3))
    for j in np.flatnonzero(noise < 0.03):
        words[j] = _typo(words[j], typo_r[j])
    for j in np.flatnonzero(noise > 0.99):
        words[j] = words[j].upper()
    # Per-tweet extras, all drawn up front: R[:, c] is one uniform per tweet for decision c.
    R = rng.random((n, 16))
    first = np.flatnonzero((tok_pos == 0) & (R[tok_tweet, 0] < 0.3))
    words[first] = [x.capitalize() for x in words[first]]
    tag_idx = np.minimum(np.searchsorted(np.cumsum(_HASHTAG_WEIGHTS), R[:, 1], "right"), HASHTAGS_PER_TOPIC - 1)
    tags = vocab.hashtag_table[topic, tag_idx]
    tags2 = vocab.hashtag_table[topic, (R[:, 5] * 1e6).astype(np.int64) % HASHTAGS_PER_TOPIC]
    ln = lengths.astype(np.float64)
    extras = []  # (tweet rows, positions, strings)
    has = R[:, 2] < 0.8  # the tweet's hashtag appears in its text most of the time ...
    pos = np.where(R[:, 3] < 0.25, np.floor(R[:, 4] * ln) - 0.5, ln + 0.1)  # ... inline or at the end
    extras.append((has, pos, tags))
    extras.append((R[:, 5] < 0.2, ln + 0.2, tags2))  # a second topic hashtag
    has = R[:, 6] < 0.25  # a mention of someone likely to author this topic, reply-style or inline
    who = np.searchsorted(w.author_flat, topic[has] + R[has, 7] * (1 - 1e-12), "right") - topic[has] * U
    mention = np.empty(n, dtype=object)
    mention[has] = ["@" + x for x in w.user_ids.take(pa.array(np.clip(who, 0, U - 1))).to_pylist()]
    extras.append((has, np.where(R[:, 8] < 0.5, -1.0, np.floor(R[:, 9] * ln) - 0.5), mention))
    emoji_i = np.where(R[:, 10] < 0.6, vocab.emoji_fav[topic, (R[:, 11] * 3).astype(np.int64)],
                       (R[:, 11] * len(EMOJI)).astype(np.int64))
    emoji = _EMOJI_REPEATS[emoji_i, (R[:, 12] * 3).astype(np.int64)]
    extras.append((R[:, 13] < 0.3, np.floor(R[:, 14] * (ln + 1)) - 0.5, emoji))
    has = R[:, 15] < 0.15
    url = np.empty(n, dtype=object)
    url_chars = _URL_CHARS[rng.integers(0, len(_URL_CHARS), size=(int(has.sum()), 10))]
    url[has] = ["https://t.co/" + "".join(row) for row in url_chars.tolist()]
    extras.append((has, ln + 0.3, url))
    rows = [tok_tweet] + [np.flatnonzero(h) for h, _, _ in extras]
    keys = [tok_pos.astype(np.float64)] + [p[r] for r, (_, p, _) in zip(rows[1:], extras)]
    strings = [words] + [x[r] for r, (_, _, x) in zip(rows[1:], extras)]
    rows, keys, strings = np.concatenate(rows), np.concatenate(keys), np.concatenate(strings)
    order = np.lexsort((keys, rows))
    toks = strings[order].tolist()
    ends = np.cumsum(np.bincount(rows, minlength=n)).tolist()
    texts = [" ".join(toks[a:e]) for a, e in zip([0] + ends[:-1], ends)]
    langs = np.array(cfg.languages, dtype=object)
    return pa.table({
        "tweet_id": w.tweet_ids.slice(lo, n),
        "author_id": w.user_ids.take(pa.array(w.author[lo:hi])),
        "text": pa.array(texts, pa.string()),
        "topic": pa.array(w.topic[lo:hi], pa.int32()),
        "hashtag": pa.array(tags.tolist(), pa.string()),
        "lang": pa.array(langs[lang].tolist(), pa.string()),
        "created": pa.array(w.created[lo:hi], pa.int64()),
    })


def _tweet_blocks(w: _World, cfg: SynthConfig, vocab: _Vocab) -> Iterator[pa.Table]:
    block = max(1, cfg.block_rows // TEXT_BLOCK_DIVISOR)
    for b in range(-(-cfg.tweets // block)):
        yield _tweet_block(w, cfg, vocab, b)


def _user_blocks(w: _World, cfg: SynthConfig) -> Iterator[pa.Table]:
    langs = np.array(cfg.languages, dtype=object)
    for lo in range(0, cfg.users, cfg.block_rows):
        hi = min(cfg.users, lo + cfg.block_rows)
        inter = np.round(w.interests[lo:hi], 6)
        yield pa.table({
            "user_id": w.user_ids.slice(lo, hi - lo),
            "is_bot": pa.array(w.is_bot[lo:hi]),
            "lang": pa.array(langs[w.user_lang[lo:hi]].tolist(), pa.string()),
            "activity": pa.array(w.activity[lo:hi], pa.float64()),
            "top_topic": pa.array(w.top_topic[lo:hi], pa.int32()),
            "interests": pa.array(["[" + ", ".join(f"{x:.6g}" for x in row) + "]" for row in inter.tolist()],
                                  pa.string()),
        })


# ----------------------------------------------------------------------------- writers


class TableWriter:
    """Streams pyarrow tables into one parquet / csv / tsv / jsonl file (optionally gzipped).

    Rows are re-batched into writes of exactly ``chunk_rows`` (the last one shorter), so the
    file's content does not depend on how the caller slices its tables.
    """

    def __init__(self, path: Path, fmt: str, gzip: bool, chunk_rows: int, quote_strings: bool = False):
        self.path, self.fmt, self.gzip, self.chunk_rows = Path(path), fmt, gzip, chunk_rows
        self.quote_strings = quote_strings
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer = None
        self._sink = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= self.chunk_rows:
            merged = pa.concat_tables(self._pending)
            self._flush(merged.slice(0, self.chunk_rows))
            rest = merged.slice(self.chunk_rows)
            self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> None:
        if self._pending_rows:
            self._flush(pa.concat_tables(self._pending))
        self._pending, self._pending_rows = [], 0
        if self._writer is None and self.fmt == "parquet":
            raise RuntimeError(f"{self.path}: nothing written")
        if self.fmt == "parquet":
            self._writer.close()
        else:
            if self._writer is not None:
                self._writer.close()
            if self._sink is not None:
                self._sink.close()

    def _open_sink(self):
        if self.gzip:
            return pa.CompressedOutputStream(str(self.path), "gzip")
        return pa.OSFile(str(self.path), "wb")

    def _flush(self, table: pa.Table) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self.rows += table.num_rows
        if self.fmt == "parquet":
            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self.path), table.schema, compression="zstd")
            self._writer.write_table(table, row_group_size=max(1, table.num_rows))
            return
        if self._sink is None:
            self._sink = self._open_sink()
            if self.fmt in ("csv", "tsv"):
                delim = "," if self.fmt == "csv" else "\t"
                self._sink.write((delim.join(table.column_names) + "\n").encode())
                opts = pacsv.WriteOptions(include_header=False, delimiter=delim,
                                          quoting_style="needed" if self.quote_strings else "none")
                self._writer = pacsv.CSVWriter(self._sink, table.schema, write_options=opts)
        if self.fmt in ("csv", "tsv"):
            self._writer.write_table(table)
        else:
            self._sink.write(_jsonl(table))


_RAW_JSON = b"coengage.raw_json"
_NEEDS_ESCAPE = r'["\\\x00-\x1f\x7f]'


def _json_column(col: pa.ChunkedArray, raw: bool = False) -> list[str]:
    """Each value of ``col`` as JSON text; plain strings skip json.dumps (fast path).

    ``raw``: the strings already are JSON literals (written as they are).
    """
    import pyarrow.compute as pc

    values = col.to_pylist()
    if raw:
        return values
    if pa.types.is_string(col.type):
        if col.null_count == 0 and not pc.any(pc.match_substring_regex(col, _NEEDS_ESCAPE)).as_py():
            return ['"' + v + '"' for v in values]
        return [json.dumps(v, ensure_ascii=False) for v in values]
    if pa.types.is_integer(col.type):
        return ["null" if v is None else str(v) for v in values]
    return [json.dumps(v) for v in values]


def _jsonl(table: pa.Table) -> bytes:
    cols = [_json_column(table.column(i), raw=(f.metadata or {}).get(_RAW_JSON) == b"1")
            for i, f in enumerate(table.schema)]
    keys = ['{"' + table.column_names[0] + '": '] + [', "' + c + '": ' for c in table.column_names[1:]]
    parts = [[k + v for v in col] for k, col in zip(keys, cols)]
    return ("".join("".join(row) + "}\n" for row in zip(*parts))).encode()


# ----------------------------------------------------------------------------- entry point


def generate(out: str | os.PathLike, config: SynthConfig | None = None, *, overwrite: bool = False,
             progress: bool | None = None) -> dict:
    """Generate the synthetic dataset into directory ``out`` (atomically); return its manifest."""
    from tqdm.auto import tqdm

    cfg = config or SynthConfig()
    cfg.validate()
    out = Path(out)
    if out.exists() and not overwrite:  # fail before the work, not after
        raise ArtifactError(f"{out} exists; pass --overwrite or choose another --out")
    log.info("synth: %d users (%d bots), %d tweets, %d topics, %d engagements, seed %d -> %s",
             cfg.users, cfg.n_bots, cfg.tweets, cfg.topics, cfg.engagements, cfg.seed, out)
    world = _build_world(cfg)
    vocab = _build_vocab(cfg)
    ext = cfg.extension
    files = {name: f"{name}.{ext}" for name in COLUMNS}
    counts = {"users": cfg.users, "bots": int(world.is_bot.sum()), "tweets": cfg.tweets, "topics": cfg.topics,
              "engagements": 0, "author_rows": 0, "bot_rows": 0, "duplicates": 0,
              "malformed": {k: 0 for k in MALFORMED_KINDS}, "malformed_total": 0, "rows": 0,
              "by_engagement": {t: 0 for t in ALL_TYPES}}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        quote = cfg.format == "csv"
        w = TableWriter(tmp / files["users"], cfg.format, cfg.gzip, cfg.chunk_rows, quote_strings=quote)
        for t in _user_blocks(world, cfg):
            w.write(t)
        w.close()
        w = TableWriter(tmp / files["tweets"], cfg.format, cfg.gzip, cfg.chunk_rows, quote_strings=quote)
        for t in tqdm(_tweet_blocks(world, cfg, vocab), desc="synth tweets", unit="block",
                      total=-(-cfg.tweets // max(1, cfg.block_rows // TEXT_BLOCK_DIVISOR)), disable=None if progress is None else not progress):
            w.write(t)
        w.close()
        w = TableWriter(tmp / files["engagements"], cfg.format, cfg.gzip, cfg.chunk_rows)
        n_blocks = -(-cfg.engagements // cfg.block_rows)
        bar = tqdm(total=cfg.engagements, desc="synth engagements", unit="row", unit_scale=True,
                   disable=None if progress is None else not progress)
        with bar:
            for b in range(n_blocks):
                blk = _engagement_block(world, cfg, b, cfg.format)
                w.write(blk.table)
                counts["engagements"] += blk.n_clean
                counts["duplicates"] += blk.dup
                for k, v in blk.malformed.items():
                    counts["malformed"][k] += v
                bc = np.bincount(blk.etype, minlength=len(ALL_TYPES))
                for i, t in enumerate(ALL_TYPES):
                    counts["by_engagement"][t] += int(bc[i])
                counts["bot_rows"] += int(world.is_bot[blk.user].sum())
                bar.update(blk.n_clean)
        w.close()
        counts["author_rows"] = counts["by_engagement"][AUTHOR]
        counts["malformed_total"] = sum(counts["malformed"].values())
        counts["rows"] = w.rows
        assert counts["rows"] == counts["engagements"] + counts["duplicates"] + counts["malformed_total"]
        topics = [{"topic": k, "name": vocab.topic_names[k], "hashtags": vocab.hashtags[k],
                   "tweets": int((world.topic == k).sum()),
                   "users_top": int((world.top_topic == k).sum())} for k in range(cfg.topics)]
        fingerprints = {name: file_fingerprint(tmp / f) for name, f in files.items()}
        manifest = {
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "config": cfg.to_dict(),
            "format": cfg.format,
            "compression": "gzip" if cfg.gzip else ("zstd" if cfg.format == "parquet" else None),
            "files": files,
            "columns": COLUMNS,
            "engagement_types": list(ALL_TYPES),
            "malformed_kinds": MALFORMED_KINDS,
            "counts": counts,
            "topics": topics,
            "file_fingerprints": fingerprints,
            "fingerprint": combine_fingerprints(KIND, cfg.to_dict(), fingerprints),
        }
        write_json(tmp / "manifest.json", manifest)
    log.info("synth: wrote %d engagement rows (%d duplicates, %d malformed), %d tweets, %d users to %s",
             counts["rows"], counts["duplicates"], counts["malformed_total"], cfg.tweets, cfg.users, out)
    return manifest
