"""coengage run: fingerprint-based skipping, --from, re-running after a changed config or a damaged artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from coengage.cli import main
from coengage.run import run, validate
from coengage.run.runner import Runner
from tests.run_helpers import tiny

pytestmark = pytest.mark.slow


def statuses(results) -> dict:
    return {r.name: r.status for r in results}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "r"
    cfg = validate(tiny())
    results = run(cfg, run_dir)
    return cfg, run_dir, results


def test_first_run_runs_every_stage_and_writes_artifacts(first_run):
    cfg, run_dir, results = first_run
    assert [r.name for r in results] == ["synth", "build", "stats", "embed", "mine", "train.social", "train.mlm"]
    assert set(statuses(results).values()) == {"ran"}
    for rel in ("data/manifest.json", "graph/manifest.json", "graph/heldout", "stats/stats.json",
                "stats/degree_distribution.png", "emb/tweet.npy", "pairs.parquet", "pairs.parquet.manifest.json",
                "models/social/model.safetensors", "models/mlm/model.safetensors"):
        assert (run_dir / rel).exists(), rel
    rec = json.loads((run_dir / ".stages" / "embed.json").read_text())
    assert rec["inputs"]["build"] == json.loads((run_dir / ".stages" / "build.json").read_text())["output"]
    assert not list(run_dir.glob("*.tmp-*")) and not (run_dir / "models" / "social.work").exists()


def test_second_run_skips_everything(first_run):
    cfg, run_dir, _ = first_run
    again = run(cfg, run_dir)
    assert set(statuses(again).values()) == {"skipped"}
    assert all(row["state"] == "done" for row in Runner(cfg, run_dir).status())


def test_changed_config_reruns_that_stage_and_what_reads_it(first_run, tmp_path):
    _, run_dir, _ = first_run
    copy = tmp_path / "r"
    shutil.copytree(run_dir, copy)
    raw = tiny()
    raw["mine"]["walks_per_query"] = 60  # only mine and its consumers change
    got = statuses(run(validate(raw), copy))
    assert got == {"synth": "skipped", "build": "skipped", "stats": "skipped", "embed": "skipped", "mine": "ran",
                   "train.social": "ran", "train.mlm": "ran"}
    raw["train"]["models"]["mlm"]["lr"] = 2e-4  # one model's option: only that model
    got = statuses(run(validate(raw), copy))
    assert got["train.mlm"] == "ran" and got["train.social"] == "skipped" and got["mine"] == "skipped"


def test_from_stage_forces_a_rerun_from_there(first_run, tmp_path):
    cfg, run_dir, _ = first_run
    copy = tmp_path / "r"
    shutil.copytree(run_dir, copy)
    got = statuses(run(cfg, copy, from_stage="train"))
    assert got["mine"] == "skipped" and got["train.social"] == "ran" and got["train.mlm"] == "ran"
    got = statuses(run(cfg, copy, from_stage="train.mlm"))
    assert got["train.social"] == "skipped" and got["train.mlm"] == "ran"
    with pytest.raises(Exception, match="--from nope: not a stage of this run; stages: synth, build"):
        run(cfg, copy, from_stage="nope")


def test_damaged_or_missing_artifact_is_rebuilt(first_run, tmp_path):
    cfg, run_dir, _ = first_run
    copy = tmp_path / "r"
    shutil.copytree(run_dir, copy)
    tweet = copy / "emb" / "tweet.npy"
    tweet.write_bytes(tweet.read_bytes()[:-8])  # truncated
    shutil.rmtree(copy / "stats")
    got = statuses(run(cfg, copy))
    assert got["embed"] == "ran" and got["stats"] == "ran" and got["build"] == "skipped"
    # mine (method walk) reads the graph only, so it stays up to date
    assert got["mine"] == "skipped" and got["train.social"] == "skipped"


def test_changed_input_file_reruns_build(tmp_path):
    """Own data (data.log/data.texts): the files' content fingerprints enter the build fingerprint."""
    from graph.synth import SynthConfig, generate

    data = tmp_path / "data"
    generate(data, SynthConfig(users=100, tweets=200, engagements=2000, topics=2))
    raw = tiny(data={"dir": str(data), "log": ["engagements.parquet"], "texts": ["tweets.parquet"]})
    cfg = validate(raw)
    r = Runner(cfg, tmp_path / "run")
    got = statuses(r.run(until="build"))
    assert got == {"build": "ran"}
    assert statuses(Runner(cfg, tmp_path / "run").run(until="build")) == {"build": "skipped"}
    generate(data, SynthConfig(users=100, tweets=200, engagements=2000, topics=2, seed=1), overwrite=True)
    assert statuses(Runner(cfg, tmp_path / "run").run(until="build")) == {"build": "ran"}


def test_cli_run_prints_stage_table_and_refuses_bad_config(tmp_path, capsys):
    import yaml

    p = tmp_path / "run.yaml"
    raw = tiny()
    raw["embed"]["dimm"] = 2
    p.write_text(yaml.safe_dump(raw))
    assert main(["run", "--config", str(p), "--out", str(tmp_path / "r")]) == 2
    assert "embed.dimm: unknown key (did you mean 'dim'?)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing ran


def test_second_run_lock(first_run):
    from coengage.errors import ArtifactError
    from coengage.run.runner import run_lock

    _, run_dir, _ = first_run
    with run_lock(run_dir):
        # flock is per open file description: a second open in the same process conflicts too
        with pytest.raises(ArtifactError, match="in use by another `coengage run`"):
            with run_lock(run_dir):
                pass


def test_a_run_never_goes_into_a_foreign_directory(tmp_path, capsys):
    from coengage.errors import ArtifactError
    from coengage.run.runner import check_run_dir

    home = tmp_path / "project"
    (home / "data").mkdir(parents=True)
    (home / "data" / "my_logs.csv").write_text("user_id,tweet_id\n")
    with pytest.raises(ArtifactError, match="not a run directory"):
        run(validate(tiny()), home)
    assert (home / "data" / "my_logs.csv").exists() and sorted(p.name for p in home.iterdir()) == ["data"]
    (tmp_path / "f").write_text("x")
    with pytest.raises(ArtifactError, match="is a file"):
        check_run_dir(tmp_path / "f")
    for ok in ("new", "empty", "killed", "earlier"):
        (tmp_path / ok).mkdir(exist_ok=ok == "new")
    (tmp_path / "killed" / ".lock").write_text("")  # killed before it wrote run.json
    (tmp_path / "earlier" / "run.json").write_text("{}")
    for ok in ("new", "empty", "killed", "earlier"):
        check_run_dir(tmp_path / ok)


def test_a_pair_file_left_without_its_manifest_is_mined_again(first_run, tmp_path):
    """A run killed between writing pairs.parquet and its manifest: the next run replaces the
    file (its own output) instead of refusing it as a foreign file."""
    cfg, run_dir, _ = first_run
    rd = tmp_path / "r"
    shutil.copytree(run_dir, rd)
    (rd / "pairs.parquet.manifest.json").unlink()
    results = run(cfg, rd, until="mine")
    assert statuses(results)["mine"] == "ran" and (rd / "pairs.parquet.manifest.json").is_file()


def test_a_missing_input_file_is_an_error_before_the_run_directory_is_made(tmp_path):
    from coengage.errors import InputError

    cfg = validate({"data": {"log": [str(tmp_path / "nope.csv")]}})
    with pytest.raises(InputError, match="nope.csv .* does not exist"):
        run(cfg, tmp_path / "r")
    assert not (tmp_path / "r").exists()
