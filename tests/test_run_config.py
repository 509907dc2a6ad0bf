"""coengage run: config validation names the key's path and what is allowed; configs/*.yaml are valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coengage.errors import InputError
from coengage.pipeline_cli import DEMO_CONFIG
from coengage.run import load_config, validate
from tests.run_helpers import tiny

ROOT = Path(__file__).resolve().parents[1]


def error_of(raw) -> str:
    with pytest.raises(InputError) as e:
        validate(raw, "run.yaml")
    return str(e.value)


def test_demo_yaml_is_the_demo_config():
    assert yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text()) == DEMO_CONFIG


@pytest.mark.parametrize("name", ["demo.yaml", "reddit_college.yaml"])
def test_example_configs_validate(name):
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.build["holdout"] == 0.2
    assert set(cfg.models) == {"social", "mlm"}
    assert cfg.models["social"]["objective"] == "infonce" and cfg.models["mlm"]["objective"] == "mlm"


def test_defaults_applied_and_seed_propagates():
    cfg = validate(tiny(seed=7, embed={}, mine={}))
    assert cfg.embed["seed"] == 7 and cfg.mine["seed"] == 7 and cfg.data["synth"]["seed"] == 7
    assert cfg.models["social"]["seed"] == 7
    assert cfg.mine["method"] == "walk"
    # a stage's own seed wins
    assert validate(tiny(seed=7, embed={"seed": 3})).embed["seed"] == 3


@pytest.mark.parametrize("raw_patch, expected", [
    ({"embedd": {}}, "embedd: unknown key (did you mean 'embed'?)"),
    ({"embed": {"dimm": 3}}, "embed.dimm: unknown key (did you mean 'dim'?)"),
    ({"train": {"models": {"social": {"objective": "contrastive"}}}},
     "train.models.social.objective: 'contrastive' is not allowed; allowed: infonce, triplet, mlm"),
    ({"train": {"defaults": {"batch_size": "big"}}}, "train.defaults.batch_size: expected an integer, got 'big'"),
    ({"train": {"defaults": {"out": "x"}}}, "train.defaults.out: unknown key"),
    ({"mine": {"method": "pagerank"}}, "mine.method: 'pagerank' is not allowed; allowed: walk, coengage, knn"),
    ({"mine": {"method": "walk", "window_s": 60}}, "mine.window_s: not an option of method 'walk'"),
    ({"embed": {"epochs": 1.5}}, "embed.epochs: expected an integer, got 1.5"),
    ({"embed": {"dim": 0}}, "embed: embed config: dim must be >= 1"),
    ({"build": {"holdout": 0.0}}, "build.holdout: must be > 0 when eval runs"),
    ({"build": {"unknown_types": "ignore"}}, "build.unknown_types: 'ignore' is not allowed; allowed: error, keep, drop"),
    ({"eval": {"baselines": ["bm25"]}}, "eval.baselines: 'bm25' is not allowed; allowed: tfidf, random"),
    ({"eval": {"models": ["triplet"]}}, "eval.models: 'triplet' is not a model of train.models"),
    ({"eval": {"tasks": ["engagement", "speed"]}}, "eval: eval config: tasks must be a non-empty subset"),
    ({"report": {"samples": -1}}, "report.samples: must be >= 0"),
    ({"runtime": {"torch_threads": True}}, "runtime.torch_threads: expected an integer, got True"),
    ({"data": {"synth": {"userz": 10}}}, "data.synth.userz: unknown key (did you mean 'users'?)"),
    ({"data": {"synth": {}, "log": ["x.csv"]}}, "data: give either data.synth"),
    ({"train": {"models": {"bad name": {}}}}, "train.models.bad name: a model name is"),
])
def test_bad_config_names_key_path_and_allowed(raw_patch, expected):
    raw = tiny(eval={}) if "eval" not in raw_patch else tiny()
    raw.update(raw_patch)
    msg = error_of(raw)
    assert msg.startswith("run.yaml: "), msg
    assert expected in msg, msg


def test_unknown_key_lists_allowed_keys():
    msg = error_of(tiny(embed={"dimm": 3}))
    assert "allowed keys here:" in msg and "epochs" in msg and "negatives" in msg


def test_missing_data_and_not_a_mapping():
    assert "data: missing" in error_of({"embed": {}})
    assert "expected a mapping" in error_of(["a"])


def test_yaml_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("embed: {dim: [\n")
    with pytest.raises(InputError, match="bad.yaml: not valid YAML"):
        load_config(p)
    with pytest.raises(InputError, match="cannot read the run config"):
        load_config(tmp_path / "missing.yaml")


def test_set_overrides_parse_yaml_values(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(tiny()))
    cfg = load_config(p, overrides=["train.defaults.max_steps=11", "eval.enabled=true", "eval.tasks=[classify]",
                                    "data.synth.users=300"])
    assert cfg.models["mlm"]["max_steps"] == 11 and cfg.eval_enabled and cfg.eval["tasks"] == ["classify"]
    assert cfg.data["synth"]["users"] == 300
    with pytest.raises(InputError, match="--set expects KEY.PATH=VALUE"):
        load_config(p, overrides=["train.defaults.max_steps"])
    with pytest.raises(InputError, match="embed.dimm: unknown key"):
        load_config(p, overrides=["embed.dimm=3"])


def test_own_data_paths_are_relative_to_data_dir():
    from coengage.run.stages import data_files

    cfg = validate({"data": {"dir": "/d", "log": ["a.csv", "/abs/b.csv"], "texts": "t.jsonl"}})
    assert data_files(cfg) == (["/d/a.csv", "/abs/b.csv"], ["/d/t.jsonl"])
    assert not cfg.synthetic
