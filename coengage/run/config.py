"""The run configuration (`coengage run --config run.yaml`): schema, defaults and validation.

A run config is one YAML mapping with a section per stage. The keys of the stage sections
are the options of the matching command (underscores for dashes), taken from that
command's own config dataclass, so a new option there is accepted here without edits:

=========  ===========================================  ==========================================
section    keys                                         command
=========  ===========================================  ==========================================
data       ``synth`` (a mapping of synth options) or    ``coengage synth``, or your own files
           ``log``/``texts`` files (+ optional ``dir``)
build      :class:`graph.build.BuildConfig`             ``coengage graph build``
embed      :class:`graph.embed.config.EmbedConfig`      ``coengage graph embed``
mine       ``method`` + the method's config +           ``coengage mine``
           :class:`mining.postprocess.PostprocessConfig`
train      ``defaults`` and ``models: {NAME: {...}}``,  ``coengage lm train`` (one per model)
           each :class:`lm.config.TrainConfig`
eval       :class:`lm.eval.config.EvalConfig` +         ``coengage lm eval`` (one per model)
           ``baselines``, ``models``
report     ``enabled``, ``samples``                     run_dir/report.html
runtime    ``torch_threads``, ``numba_threads``,        process settings (not part of any
           ``progress``                                 fingerprint)
=========  ===========================================  ==========================================

Top-level keys: ``run_dir`` (where every artifact goes; ``--out`` overrides it) and ``seed``
(the default seed of every stage that has one; a stage's own ``seed`` wins).

Every key is checked: an unknown key or a value of the wrong type or outside its allowed
values is an :class:`~coengage.errors.InputError` naming the key's path (``train.models.social
.objective``) and what is allowed. Paths in the file (``data.dir``, ``data.log``, ...) are
relative to the working directory, like paths on the command line.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coengage.errors import InputError

# Keys the runner sets itself; they may not appear in a stage section.
_RUNNER_OWNED = {
    "build": {"log", "texts", "out", "overwrite"},
    "embed": {"threads"},
    "train": {"pairs", "texts", "out", "resume", "overwrite", "progress", "max_steps_per_call", "keep_work"},
    "eval": {"threads"},
}
# Allowed values of string options whose dataclass does not list them in field metadata.
_CHOICES = {
    "build.unknown_types": ("error", "keep", "drop"),
    "build.format": ("auto", "csv", "tsv", "parquet", "jsonl"),
    "build.texts_format": ("auto", "csv", "tsv", "parquet", "jsonl"),
    "embed.negative_reduction": ("mean", "sum"),
    "mine.method": ("walk", "coengage", "knn"),
    "mine.degree_cap_mode": ("skip", "sample"),
    "mine.normalize": ("count", "cosine", "jaccard", "swing"),
    "mine.index": ("auto", "exact", "faiss-ivf", "faiss-hnsw"),
    "mine.format": ("parquet", "tsv", "jsonl"),
    "data.synth.format": ("parquet", "csv", "tsv", "jsonl"),
    "eval.pooling": ("cls", "cls_mean"),
    "eval.pairs_pooling": ("cls", "cls_mean"),
}
BASELINES = ("tfidf", "random")
STAGE_ORDER = ("synth", "build", "stats", "embed", "mine", "train", "eval", "report")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass
class RunConfig:
    """A validated run config. Sections are plain dicts of the stages' options (defaults applied)."""

    run_dir: str | None
    seed: int
    data: dict
    build: dict
    embed: dict
    mine: dict
    train_defaults: dict
    models: dict  # name -> TrainConfig options (defaults merged)
    eval: dict  # EvalConfig options
    eval_models: list  # trained models to evaluate
    baselines: list
    eval_enabled: bool
    report: dict
    runtime: dict
    source: str = "config"
    raw: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return self.data.get("synth") is not None


# --------------------------------------------------------------------------- type checks
def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if tp in (list, tuple):
        return "a list"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _matches(value: Any, tp) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple) or tp in (list, tuple):
        # a comma-separated string is accepted where the command accepts one (e.g. text_cols)
        if isinstance(value, str):
            return True
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return not args or all(_matches(v, args[0]) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            return False
        args = typing.get_args(tp)
        return not args or all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    return True


def _hints(cls) -> dict:
    import sys

    module = sys.modules[cls.__module__]
    return typing.get_type_hints(cls, vars(module))


def _option_types(cls, drop: set = frozenset()) -> dict:
    """``{field name: (annotation, choices or None)}`` of a config dataclass."""
    hints = _hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in drop:
            continue
        out[f.name] = (hints.get(f.name, Any), tuple(f.metadata["choices"]) if "choices" in f.metadata else None)
    return out


def _unknown(path: str, key: str, allowed) -> InputError:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = f"{path}.{key}" if path else key
    return InputError(f"{where}: unknown key{hint}; allowed keys here: {', '.join(allowed)}")


def _check_section(src: str, path: str, section: Any, options: dict) -> dict:
    """Check a mapping against ``options`` ({key: (type, choices)}); returns a copy with '-' -> '_'."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise InputError(f"{src}: {path}: expected a mapping of option: value, got {type(section).__name__}")
    out = {}
    for key, value in section.items():
        k = str(key).replace("-", "_")
        if k not in options:
            raise InputError(f"{src}: {_unknown(path, str(key), options)}")
        tp, choices = options[k]
        where = f"{path}.{k}"
        if not _matches(value, tp):
            raise InputError(f"{src}: {where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")
        choices = choices or _CHOICES.get(where) or _CHOICES.get(f"{path.split('.')[0]}.{k}")
        if choices and value is not None and value not in choices:
            raise InputError(f"{src}: {where}: {value!r} is not allowed; allowed: {', '.join(map(str, choices))}")
        out[k] = value
    return out


def _validated(src: str, path: str, make) -> Any:
    """Run a command's own validation; its message gets the section's path in front."""
    try:
        return make()
    except InputError as e:
        raise InputError(f"{src}: {path}: {e}") from None
    except (TypeError, ValueError) as e:
        raise InputError(f"{src}: {path}: {e}") from None


# --------------------------------------------------------------------------- sections
def _data(src: str, d: Any, seed: int) -> dict:
    from graph.synth import SynthConfig

    opts = {"synth": (dict | None, None), "dir": (str | None, None), "log": (list[str] | str, None),
            "texts": (list[str] | str, None)}
    d = _check_section(src, "data", d, opts)
    if ("synth" in d) == ("log" in d):
        raise InputError(f"{src}: data: give either data.synth (synthetic data: a mapping of `coengage synth` "
                         "options, {} for the defaults) or data.log (engagement log files) [+ data.texts]")
    if "synth" in d:
        if "texts" in d or "dir" in d:
            raise InputError(f"{src}: data: data.texts/data.dir belong with data.log, not data.synth")
        s = _check_section(src, "data.synth", d["synth"] or {}, _option_types(SynthConfig))
        s.setdefault("seed", seed)
        _validated(src, "data.synth", lambda: SynthConfig(**s).validate())
        return {"synth": s}
    as_list = lambda v: [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else list(v or [])
    return {"synth": None, "dir": d.get("dir"), "log": as_list(d["log"]), "texts": as_list(d.get("texts"))}


def _build(src: str, b: Any, synthetic: bool) -> dict:
    from graph.build import BuildConfig

    b = _check_section(src, "build", b, _option_types(BuildConfig, _RUNNER_OWNED["build"]))
    b.setdefault("holdout", 0.2)
    if synthetic:  # the synthetic tweets table's label columns
        b.setdefault("label_cols", ["hashtag", "topic"])
    _validated(src, "build", lambda: BuildConfig(log=["x"], **b).validate())
    return b


def _embed(src: str, e: Any, seed: int) -> dict:
    from graph.embed.config import EmbedConfig

    e = _check_section(src, "embed", e, _option_types(EmbedConfig, _RUNNER_OWNED["embed"]))
    e.setdefault("seed", seed)
    _validated(src, "embed", lambda: EmbedConfig(**e))
    return e


def _mine(src: str, m: Any, seed: int) -> dict:
    from mining.mine import METHOD_CONFIGS
    from mining.postprocess import PostprocessConfig

    post = _option_types(PostprocessConfig)
    every = {"method": (str, None), "with_text": (bool, None), "format": (str, None), **post}
    for cls in METHOD_CONFIGS.values():
        every.update(_option_types(cls, {"embeddings"}))
    m = _check_section(src, "mine", m, every)
    method = m.setdefault("method", "walk")
    mine_opts = {"method", "with_text", "format", *post, *_option_types(METHOD_CONFIGS[method], {"embeddings"})}
    if method == "knn":
        mine_opts.add("top_k")  # alias of k
    for k in m:
        if k not in mine_opts:
            raise InputError(f"{src}: mine.{k}: not an option of method {method!r}; options of {method!r}: "
                             f"{', '.join(sorted(mine_opts))}")
    if "seed" in mine_opts:
        m.setdefault("seed", seed)

    def check():
        from mining.mine import _split_options

        _split_options(method, {k: v for k, v in m.items() if k not in ("method", "with_text", "format")})[1].validate()

    _validated(src, "mine", check)
    return m


def _train(src: str, t: Any, seed: int) -> tuple[dict, dict]:
    from lm.config import TrainConfig

    opts = _option_types(TrainConfig, _RUNNER_OWNED["train"])
    t = _check_section(src, "train", t, {"defaults": (dict, None), "models": (dict, None)})
    defaults = _check_section(src, "train.defaults", t.get("defaults") or {}, opts)
    defaults.setdefault("seed", seed)
    models_in = t.get("models")
    if models_in is None:
        models_in = {"social": {"objective": "infonce"}, "mlm": {"objective": "mlm"}}
    if not models_in:
        raise InputError(f"{src}: train.models: name at least one model, e.g. social: {{objective: infonce}}")
    models = {}
    for name, spec in models_in.items():
        if not _NAME.match(str(name)):
            raise InputError(f"{src}: train.models.{name}: a model name is letters, digits, '_' and '-'")
        mine = _check_section(src, f"train.models.{name}", spec or {}, opts)
        merged = {**defaults, **mine}
        if not merged.get("model") and not merged.get("from_scratch"):
            merged["from_scratch"] = "tiny"
        _validated(src, f"train.models.{name}",
                   lambda: TrainConfig(pairs="p", out="o", **merged).validate())
        models[str(name)] = merged
    return defaults, models


def _eval(src: str, e: Any, seed: int, models: dict, synthetic: bool) -> tuple[dict, list, list, bool]:
    from lm.eval.config import EvalConfig

    opts = _option_types(EvalConfig, _RUNNER_OWNED["eval"])
    opts.update({"enabled": (bool, None), "baselines": (list[str], None), "models": (list[str], None)})
    e = _check_section(src, "eval", e, opts)
    enabled = e.pop("enabled", True)
    baselines = e.pop("baselines", [])
    baselines = [b.strip() for b in baselines.split(",")] if isinstance(baselines, str) else list(baselines)
    for b in baselines:
        if b not in BASELINES:
            raise InputError(f"{src}: eval.baselines: {b!r} is not allowed; allowed: {', '.join(BASELINES)}")
    names = e.pop("models", None)
    names = list(models) if names is None else ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names))
    for n in names:
        if n not in models:
            raise InputError(f"{src}: eval.models: {n!r} is not a model of train.models; allowed: {', '.join(models)}")
    e.setdefault("seed", seed)
    if synthetic:
        e.setdefault("label_col", "hashtag")
    _validated(src, "eval", lambda: EvalConfig(**e))
    return e, names, baselines, bool(enabled)


def _simple(src: str, path: str, d: Any, spec: dict, defaults: dict) -> dict:
    d = _check_section(src, path, d, {k: (tp, None) for k, tp in spec.items()})
    out = {**defaults, **d}
    for k, v in out.items():
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            raise InputError(f"{src}: {path}.{k}: must be >= 0, got {v}")
    return out


TOP_LEVEL = ("run_dir", "seed", "data", "build", "embed", "mine", "train", "eval", "report", "runtime")


def validate(raw: Any, source: str = "config") -> RunConfig:
    """Check a parsed run config (a dict) and return a :class:`RunConfig` with defaults applied."""
    src = source
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"{src}: expected a mapping with sections {', '.join(TOP_LEVEL)}; got {type(raw).__name__}")
    for key in raw:
        if key not in TOP_LEVEL:
            raise InputError(f"{src}: {_unknown('', str(key), TOP_LEVEL)}")
    if "data" not in raw:
        raise InputError(f"{src}: data: missing; give data.synth: {{}} for synthetic data or data.log: [files]")
    seed = raw.get("seed", 0)
    if not _matches(seed, int):
        raise InputError(f"{src}: seed: expected an integer, got {seed!r}")
    run_dir = raw.get("run_dir")
    if run_dir is not None and not isinstance(run_dir, str):
        raise InputError(f"{src}: run_dir: expected a string (a directory), got {run_dir!r}")
    data = _data(src, raw["data"], seed)
    synthetic = data["synth"] is not None
    build = _build(src, raw.get("build"), synthetic)
    embed = _embed(src, raw.get("embed"), seed)
    mine = _mine(src, raw.get("mine"), seed)
    defaults, models = _train(src, raw.get("train"), seed)
    ev, eval_models, baselines, eval_enabled = _eval(src, raw.get("eval"), seed, models, synthetic)
    if eval_enabled and not build["holdout"] > 0:
        raise InputError(f"{src}: build.holdout: must be > 0 when eval runs (the evaluation uses the held-out "
                         "tweets); set e.g. 0.2, or eval.enabled: false")
    report = _simple(src, "report", raw.get("report"), {"enabled": bool, "samples": int}, {"enabled": True, "samples": 8})
    runtime = _simple(src, "runtime", raw.get("runtime"), {"torch_threads": int, "numba_threads": int, "progress": bool | None},
                      {"torch_threads": 1, "numba_threads": 0, "progress": None})
    return RunConfig(run_dir=run_dir, seed=seed, data=data, build=build, embed=embed, mine=mine,
                     train_defaults=defaults, models=models, eval=ev, eval_models=eval_models, baselines=baselines,
                     eval_enabled=eval_enabled, report=report, runtime=runtime, source=src, raw=copy.deepcopy(raw))


def parse_set(items: list[str] | None) -> list[tuple[list[str], Any]]:
    """``--set a.b=VALUE`` items -> ``[(["a", "b"], parsed VALUE)]``; VALUE is read as YAML."""
    import yaml

    out = []
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--set expects KEY.PATH=VALUE (e.g. train.defaults.max_steps=50); got {item!r}")
        key, value = item.split("=", 1)
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        out.append(([p for p in key.strip().split(".") if p], parsed))
    return out


def apply_set(raw: dict, items: list[tuple[list[str], Any]]) -> dict:
    raw = copy.deepcopy(raw or {})
    for keys, value in items:
        node = raw
        for i, k in enumerate(keys[:-1]):
            if node.get(k) is None:
                node[k] = {}
            if not isinstance(node[k], dict):
                raise InputError(f"--set {'.'.join(keys)}: {'.'.join(keys[:i + 1])} is not a section")
            node = node[k]
        node[keys[-1]] = value
    return raw


def load(path: str | os.PathLike | None = None, *, overrides: list[str] | None = None, raw: dict | None = None) -> RunConfig:
    """Read and validate a run config from a YAML file (or ``raw``), with ``--set`` overrides applied."""
    import yaml

    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(f"{p}: cannot read the run config ({e.strerror or e})") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InputError(f"{p}: not valid YAML ({e})") from None
        source = str(p)
    else:
        source = "config"
    raw = apply_set(raw if isinstance(raw, dict) else (raw or {}), parse_set(overrides)) if overrides else raw
    return validate(raw, source)
