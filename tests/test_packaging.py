"""Packaging: every part installs under gateproof.*, nothing generic lands at the top level."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def test_generic_folder_names_are_not_importable() -> None:
    for name in ("contract", "load", "reports", "mock_providers", "reference_gateway", "openapi", "cli"):
        assert importlib.util.find_spec(name) is None, f"bare `import {name}` must not work"


def test_every_package_folder_is_listed() -> None:
    """A folder with an __init__.py that is not listed works in dev but vanishes from the wheel."""
    mapped = {Path(path): name for name, path in SETUPTOOLS["package-dir"].items()}
    on_disk = {
        init.parent.relative_to(ROOT)
        for init in ROOT.glob("*/**/__init__.py")
        if not any(
            part.startswith(".") or part in ("tests", "benchmarks", "build")
            for part in init.parts[len(ROOT.parts) :]
        )
    }
    assert on_disk == set(mapped), (
        f"unlisted: {on_disk - set(mapped)}, listed but missing: {set(mapped) - on_disk}"
    )
    assert set(SETUPTOOLS["packages"]) == set(mapped.values())


def test_listed_packages_import() -> None:
    for name in SETUPTOOLS["packages"]:
        importlib.import_module(name)


def test_importing_load_does_not_import_locust() -> None:
    code = "import gateproof.load, gateproof.reports, gateproof.contract, sys; print('locust' in sys.modules, 'gevent' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_every_subcommand_has_help() -> None:
    from gateproof.cli import COMMANDS

    for command in COMMANDS:
        completed = subprocess.run(
            [sys.executable, "-m", "gateproof.cli", command, "--help"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        assert "--" in completed.stdout and len(completed.stdout.splitlines()) > 3
