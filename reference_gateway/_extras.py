"""The Edgee per-request fields of one answer, gathered while the request runs (D1).

``compression``, ``edgee_pending_id``, ``edgee_tools_executed`` and ``debug`` are facts
about the whole request, decided by different steps of the pipeline (compression before
the upstream call, Edge Tools around it, debug at the very end). Each step puts its field
here, on the :class:`~gateproof.reference_gateway._call.ChatCall`, and one place emits
them all: merged into a complete response body, or on the last chunk before
``data: [DONE]`` of a stream (the relay owns that rule).

Some values can only be known at the end: ``compression.reduction`` divides by the prompt
tokens the provider billed, and debug timings measure the whole request. Those are put in
as a builder (:meth:`ResponseExtras.defer`) that is called once, with the final usage, when
the answer is rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateproof.reference_gateway._usage import Usage

__all__ = ["EXTRA_FIELDS", "ResponseExtras"]

#: the Edgee per-request response fields (D1), in the order they are emitted
EXTRA_FIELDS = ("compression", "edgee_pending_id", "edgee_tools_executed", "debug")

#: builds a field's value from the usage the provider reported (the final usage of a stream)
Builder = Callable[[Usage], Any]


class ResponseExtras:
    """Per-request Edgee fields, set by any pipeline step, rendered once at the end.

    A field is either a value (:meth:`set`) or a builder called at render time with the
    final usage (:meth:`defer`); setting a field again replaces it. Only the names in
    :data:`EXTRA_FIELDS` are accepted, so a typo fails loudly in tests instead of leaking
    an unknown field to clients.
    """

    def __init__(self) -> None:
        self._fields: dict[str, tuple[bool, Any]] = {}

    def set(self, name: str, value: Any) -> None:
        """Emit ``name`` with this value."""
        self._fields[_known(name)] = (False, value)

    def defer(self, name: str, build: Builder) -> None:
        """Emit ``name`` with ``build(final usage)``, computed when the answer is rendered."""
        self._fields[_known(name)] = (True, build)

    def discard(self, name: str) -> None:
        """Emit nothing for ``name`` after all."""
        self._fields.pop(_known(name), None)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __bool__(self) -> bool:
        return bool(self._fields)

    def render(self, usage: Usage) -> dict[str, Any]:
        """The fields to send, in :data:`EXTRA_FIELDS` order (empty when no step set one)."""
        rendered: dict[str, Any] = {}
        for name in EXTRA_FIELDS:
            if name in self._fields:
                deferred, value = self._fields[name]
                rendered[name] = value(usage) if deferred else value
        return rendered


def _known(name: str) -> str:
    if name not in EXTRA_FIELDS:
        raise KeyError(f"{name!r} is not an Edgee per-request field ({', '.join(EXTRA_FIELDS)})")
    return name
