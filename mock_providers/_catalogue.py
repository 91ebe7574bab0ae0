"""The models the mock serves, with the limits the real provider enforces on each.

A gateway that relays its provider faithfully must see the provider refuse what
the provider refuses: an unknown model id (404), a prompt that does not fit the
context window, an output budget above the model's ceiling (400). So each model
carries its published context window and output ceiling; the figures of the
shipped ``DEFAULT_CATALOGUE`` are OpenAI's, from its model pages (see
``mock_providers/PROVIDER_RULES.md``).

The catalogue can be replaced or extended from a YAML/JSON file (``gateproof mock
--models FILE``); a ``fallback`` spec, when set, serves model ids the catalogue
does not list (``--any-model``: an explicit opt-in for tests that send arbitrary
ids straight to the mock, never the default).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ANTHROPIC_CATALOGUE",
    "DEFAULT_CATALOGUE",
    "GEMINI_CATALOGUE",
    "Catalogue",
    "CatalogueError",
    "ModelSpec",
    "load_catalogue",
]


class CatalogueError(ValueError):
    """A catalogue file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model: its id, listing date and limits (in tokens)."""

    id: str
    #: Unix time the provider lists as the model's creation (``GET /v1/models``)
    created: int
    #: prompt plus completion must fit in this many tokens
    context_window: int
    #: the most completion tokens one request may ask for (``max_tokens``)
    max_output_tokens: int


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Models by id, in listing order, plus an optional spec for ids it does not list."""

    models: tuple[ModelSpec, ...]
    fallback: ModelSpec | None = None

    def __post_init__(self) -> None:
        ids = [m.id for m in self.models]
        if len(set(ids)) != len(ids):
            raise CatalogueError("the catalogue lists a model id twice")

    def get(self, model_id: str) -> ModelSpec | None:
        """The spec serving ``model_id``, or ``None`` when the provider would answer 404."""
        for spec in self.models:
            if spec.id == model_id:
                return spec
        if self.fallback is not None:
            return replace(self.fallback, id=model_id)
        return None

    def listed(self, model_id: str) -> ModelSpec | None:
        """The spec of a model the catalogue lists by name (what ``GET /v1/models/{id}`` finds)."""
        return next((spec for spec in self.models if spec.id == model_id), None)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.models)

    def merged(self, extra: Iterable[ModelSpec]) -> Catalogue:
        """A copy where ``extra`` replaces same-id entries and adds new ones at the end."""
        extra = tuple(extra)
        by_id = {spec.id: spec for spec in extra}
        kept = tuple(by_id.pop(spec.id, spec) for spec in self.models)
        return Catalogue(kept + tuple(spec for spec in extra if spec.id in by_id), self.fallback)

    def with_fallback(self, spec: ModelSpec | None) -> Catalogue:
        return Catalogue(self.models, spec)


# OpenAI's published limits (platform.openai.com/docs/models/<id>): context window, max output tokens.
DEFAULT_CATALOGUE = Catalogue(
    (
        ModelSpec("gpt-4o", 1715367049, 128_000, 16_384),
        ModelSpec("gpt-4o-mini", 1721172741, 128_000, 16_384),
        ModelSpec("gpt-4.1", 1744316542, 1_047_576, 32_768),
        ModelSpec("gpt-4.1-mini", 1744318173, 1_047_576, 32_768),
        ModelSpec("gpt-4.1-nano", 1744321707, 1_047_576, 32_768),
        ModelSpec("o3-mini", 1737146383, 200_000, 100_000),
        ModelSpec("o4-mini", 1744225351, 200_000, 100_000),
        ModelSpec("gpt-3.5-turbo", 1677610602, 16_385, 4_096),
    )
)

# Anthropic's published limits (docs.claude.com, models overview): context window, max output
# tokens; ``created`` is the release date. Served by the Anthropic dialect (``dialects/anthropic.py``).
ANTHROPIC_CATALOGUE = Catalogue(
    (
        ModelSpec("claude-sonnet-4-5", 1759104000, 200_000, 64_000),
        ModelSpec("claude-haiku-4-5", 1760486400, 200_000, 64_000),
        ModelSpec("claude-opus-4-1", 1754352000, 200_000, 32_000),
    )
)

# Google's published limits (ai.google.dev/gemini-api/docs/models): ``context_window`` is the
# model's input token limit (Gemini judges the prompt alone against it), ``max_output_tokens``
# its output token limit; ``created`` is the stable release date. Served by the Gemini dialect
# (``dialects/gemini.py``).
GEMINI_CATALOGUE = Catalogue(
    (
        ModelSpec("gemini-2.5-pro", 1750118400, 1_048_576, 65_536),
        ModelSpec("gemini-2.5-flash", 1750118400, 1_048_576, 65_536),
        ModelSpec("gemini-2.5-flash-lite", 1753142400, 1_048_576, 65_536),
        ModelSpec("gemini-2.0-flash", 1738713600, 1_048_576, 8_192),
    )
)

_FIELDS = {"id", "created", "context_window", "max_output_tokens"}


def _positive(value: Any, where: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CatalogueError(f"{where}: must be an integer >= {minimum}")
    return value


def _spec(raw: Any, where: str) -> ModelSpec:
    if not isinstance(raw, Mapping):
        raise CatalogueError(f"{where}: must be a mapping")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise CatalogueError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    model_id = raw.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise CatalogueError(f"{where}.id: must be a non-empty string")
    spec = ModelSpec(
        id=model_id,
        created=_positive(raw.get("created", 0), f"{where}.created", minimum=0),
        context_window=_positive(raw.get("context_window"), f"{where}.context_window"),
        max_output_tokens=_positive(raw.get("max_output_tokens"), f"{where}.max_output_tokens"),
    )
    if spec.max_output_tokens > spec.context_window:
        raise CatalogueError(f"{where}: max_output_tokens is larger than context_window")
    return spec


def load_catalogue(path: str | Path, base: Catalogue = DEFAULT_CATALOGUE) -> Catalogue:
    """Read ``{models: [...], replace: bool}`` from a YAML/JSON file.

    Entries replace the same ids of ``base`` and add the others; with ``replace:
    true`` the file's list is the whole catalogue.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except yaml.YAMLError:
        raise CatalogueError(f"{path.name}: not valid YAML or JSON") from None
    if not isinstance(document, Mapping) or set(document) - {"models", "replace"}:
        raise CatalogueError(f"{path.name}: expected a mapping with 'models' (and optionally 'replace')")
    entries = document.get("models")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{path.name}: models: must be a non-empty list")
    specs = [_spec(entry, f"{path.name}: models[{i}]") for i, entry in enumerate(entries)]
    whole = document.get("replace", False)
    if not isinstance(whole, bool):
        raise CatalogueError(f"{path.name}: replace: must be true or false")
    try:
        return Catalogue(tuple(specs), base.fallback) if whole else base.merged(specs)
    except CatalogueError as exc:
        raise CatalogueError(f"{path.name}: {exc}") from None
