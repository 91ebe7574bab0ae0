"""Locating and loading the reference spec (package data, no network)."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SPEC_FILE", "load_spec", "spec_path"]

SPEC_FILE = "gateway.openapi.yaml"


def spec_path() -> Path:
    """Filesystem path of the reference spec shipped in the package."""
    return Path(str(resources.files("gateproof.openapi").joinpath(SPEC_FILE)))


@functools.cache
def _load_cached() -> dict[str, Any]:
    with spec_path().open(encoding="utf-8") as fh:
        document = yaml.safe_load(fh)
    if not isinstance(document, dict):
        raise ValueError(f"{SPEC_FILE} is not a mapping")
    return document


def load_spec() -> dict[str, Any]:
    """The parsed spec. Cached: callers must treat it as read-only."""
    return _load_cached()
