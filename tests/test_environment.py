"""The pinned stack: environment.yml, requirements.in and requirements.lock agree, and what
is installed is what they pin."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
        assert m, f"not an exact pin: {line!r}"
        pins[_norm(m.group(1))] = m.group(2)
    return pins


def test_environment_yml_matches_requirements_in():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert _pins(pip_section) == _pins((ROOT / "requirements.in").read_text().splitlines())


def test_lock_contains_every_direct_pin_at_the_same_version():
    direct = _pins((ROOT / "requirements.in").read_text().splitlines())
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    mismatched = {k: (v, lock.get(k)) for k, v in direct.items() if lock.get(k) != v}
    assert not mismatched, f"requirements.in vs requirements.lock: {mismatched}"


def test_required_versions_of_the_stack():
    direct = _pins((ROOT / "requirements.in").read_text().splitlines())
    assert direct["torch"] == "2.2.1"
    assert direct["dgl"] == "2.1.0"
    assert int(direct["numpy"].split(".")[0]) < 2
    assert int(direct["pyarrow"].split(".")[0]) < 24
    assert direct["transformers"].startswith("4.57.")


def test_installed_versions_match_the_lock():
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    wrong = {}
    for name in ("torch", "dgl", "numpy", "pyarrow", "transformers", "numba"):
        installed = metadata.version(name).split("+")[0]
        if installed != lock[name]:
            wrong[name] = (installed, lock[name])
    assert not wrong, f"installed vs lock: {wrong}"
