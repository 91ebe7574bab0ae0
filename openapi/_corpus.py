"""The golden corpus: payloads with the verdict the spec must give them.

The corpus is data (``corpus/*.yaml`` beside the spec) so that every validator
gateproof uses — the jsonschema validators here, schemathesis' response checks,
the reference gateway's request validation — can be held to the same verdicts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from gateproof.openapi._validators import SchemaKind

__all__ = ["CORPUS_FILES", "CorpusEntry", "load_corpus"]

#: one file per payload kind
CORPUS_FILES: dict[SchemaKind, str] = {
    SchemaKind.REQUEST: "requests.yaml",
    SchemaKind.RESPONSE: "responses.yaml",
    SchemaKind.CHUNK: "chunks.yaml",
    SchemaKind.ERROR: "errors.yaml",
    SchemaKind.MODELS: "models.yaml",
}


@dataclass(frozen=True)
class CorpusEntry:
    """One payload and its expected verdict; ``status`` is the HTTP status an error body goes with."""

    name: str
    kind: SchemaKind
    valid: bool
    payload: Any
    why: str
    status: int | None = None

    @property
    def id(self) -> str:
        """A stable test id: ``kind/name/valid|invalid``."""
        return f"{self.kind.value}/{self.name}/{'valid' if self.valid else 'invalid'}"


def _entry(raw: Any, kind: SchemaKind, source: str) -> CorpusEntry:
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: every entry must be a mapping, got {raw!r}")
    missing = {"name", "kind", "valid", "payload", "why"} - raw.keys()
    if missing:
        raise ValueError(f"{source}: entry {raw.get('name')!r} lacks {sorted(missing)}")
    if raw["kind"] != kind.value:
        raise ValueError(f"{source}: entry {raw['name']!r} has kind {raw['kind']!r}, expected {kind.value!r}")
    if not isinstance(raw["valid"], bool):
        raise ValueError(f"{source}: entry {raw['name']!r} needs a boolean `valid`")
    status = raw.get("status")
    if status is not None and not isinstance(status, int):
        raise ValueError(f"{source}: entry {raw['name']!r} has a non-integer status")
    return CorpusEntry(
        name=str(raw["name"]),
        kind=kind,
        valid=raw["valid"],
        payload=raw["payload"],
        why=str(raw["why"]),
        status=status,
    )


@functools.cache
def _load_all() -> tuple[CorpusEntry, ...]:
    folder = resources.files("gateproof.openapi").joinpath("corpus")
    entries: list[CorpusEntry] = []
    for kind, filename in CORPUS_FILES.items():
        document = yaml.safe_load(folder.joinpath(filename).read_text(encoding="utf-8"))
        if not isinstance(document, list):
            raise ValueError(f"corpus/{filename} must hold a list of entries")
        entries.extend(_entry(raw, kind, f"corpus/{filename}") for raw in document)
    names = [entry.id for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate corpus entries: {duplicates}")
    return tuple(entries)


def load_corpus(kind: SchemaKind | None = None) -> list[CorpusEntry]:
    """Every corpus entry, or those of one kind, in file order."""
    return [entry for entry in _load_all() if kind is None or entry.kind is kind]
