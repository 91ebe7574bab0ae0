"""The names of the gateway's own headers, read from the spec.

The reference gateway reads these switches and sets the provider header, the suite sends and
judges them, the load users send the compression switch: all of them take the names from here,
and here takes them from the spec's ``components.parameters`` (the request headers) and the
chat response's ``headers`` (``X-Edgee-Provider``), so a header is renamed in one place.
"""

from __future__ import annotations

from typing import Any

from gateproof.openapi._spec import load_spec

__all__ = [
    "BOOLEAN_HEADERS",
    "COMPRESSION_HEADER",
    "DEBUG_HEADER",
    "FALLBACK_HEADER",
    "FALLBACK_USED_VALUES",
    "PROVIDER_HEADER",
    "TAGS_HEADER",
]


def _parameter(spec: dict[str, Any], name: str) -> str:
    return str(spec["components"]["parameters"][name]["name"])


def _provider_header(spec: dict[str, Any], component: str = "XEdgeeProviderRequired") -> str:
    """The response header whose schema is the spec's header component ``component``."""
    wanted = f"#/components/headers/{component}"
    for item in spec["paths"].values():
        for operation in item.values():
            for response in (
                (operation.get("responses") or {}).values() if isinstance(operation, dict) else ()
            ):
                for header, value in (response.get("headers") or {}).items():
                    if isinstance(value, dict) and value.get("$ref") == wanted:
                        return str(header)
    raise LookupError(f"the spec names no response header {component}")


_SPEC = load_spec()
#: turns token compression on for a request (D3, D30)
COMPRESSION_HEADER = _parameter(_SPEC, "EnableCompressionHeader")
#: turns debug on (D7, D8)
DEBUG_HEADER = _parameter(_SPEC, "DebugHeader")
#: comma-separated tags, merged with body ``tags`` (D7)
TAGS_HEADER = _parameter(_SPEC, "TagsHeader")
#: names the provider that served the request (D20)
PROVIDER_HEADER = _provider_header(_SPEC)
#: says a fallback route answered (D44)
FALLBACK_HEADER = _provider_header(_SPEC, "XEdgeeFallbackUsed")
#: the values of ``FALLBACK_HEADER`` that mean "a fallback answered" (the public spec and docs differ)
FALLBACK_USED_VALUES = ("true", "1")
#: the switch headers with the boolean spellings of D7
BOOLEAN_HEADERS = (DEBUG_HEADER, COMPRESSION_HEADER)
del _SPEC
