"""What belongs to the gateway and never reaches a provider (decision D11), from the spec.

The reference gateway strips these before forwarding, the journal check looks for them at the
provider, and the suite leaves them out of requests to an openai-core target: all three read
this one definition, so a field added to the spec's ``x-gateproof-gateway-fields`` list is
stripped, checked and left out everywhere at once.
"""

from __future__ import annotations

import functools

from gateproof.openapi._spec import load_spec

__all__ = [
    "EDGEE_FIELD_PREFIX",
    "EDGEE_HEADER_PREFIX",
    "gateway_body_fields",
    "is_edgee_header",
    "is_gateway_field",
]

#: every body field with this prefix steers the gateway (edgee_tool_ids, edgee_pending_id, ...)
EDGEE_FIELD_PREFIX = "edgee_"
#: every request header with this prefix (lower case) is for the gateway (X-Edgee-Tags, ...)
EDGEE_HEADER_PREFIX = "x-edgee-"
_LIST_KEY = "x-gateproof-gateway-fields"


@functools.cache
def gateway_body_fields() -> frozenset[str]:
    """The named gateway fields of ChatCompletionRequest (besides the ``edgee_`` prefix)."""
    request = load_spec()["components"]["schemas"]["ChatCompletionRequest"]
    return frozenset(str(name) for name in request.get(_LIST_KEY, ()))


def is_gateway_field(name: str) -> bool:
    """Whether a chat request body field is the gateway's own (never forwarded to a provider)."""
    return name.startswith(EDGEE_FIELD_PREFIX) or name in gateway_body_fields()


def is_edgee_header(name: str) -> bool:
    """Whether a request header is the gateway's own (``X-Edgee-*``)."""
    return name.lower().startswith(EDGEE_HEADER_PREFIX)
