"""The mock's JSON writers: the standard library's C encoder, built once instead of per call.

``json.JSONEncoder.encode`` builds a new C encoder object (and a float-formatting closure)
on every call, which costs more than encoding a short request or answer. The mock encodes
several values per request (the conversation's canonical form for its seed, answer bodies,
error envelopes), so it keeps one C encoder per configuration and calls it directly. The
bytes are exactly ``JSONEncoder(...).encode``'s: the same C function with the same options
(ASCII output, no circular check, NaN allowed as the stdlib allows it). ASCII output is
valid UTF-8 whatever strings a request brought in, lone surrogates included. Where the C encoder
is missing (another Python implementation) the encoders themselves are used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["canonical", "compact", "quote"]

#: JSON string literal of a str, non-ASCII escaped (the C fast path)
quote: Callable[[str], str] = json.encoder.encode_basestring_ascii

_COMPACT = json.JSONEncoder(separators=(",", ":"), check_circular=False)
#: key order and spacing do not change a conversation's identity
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)


def _writer(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    make: Callable[..., Callable[[Any, int], Sequence[str]]] | None = getattr(
        json.encoder, "c_make_encoder", None
    )
    if make is None:  # pragma: no cover - CPython always has it
        return encoder.encode
    write = make(
        None,  # markers: no circular check
        encoder.default,
        quote,
        None,  # indent
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(value: Any) -> str:
        return "".join(write(value, 0))

    return encode


#: compact JSON text of a value (``JSONEncoder(separators=(",", ":"), check_circular=False).encode``)
compact = _writer(_COMPACT)
#: the same with sorted keys: a value's canonical text
canonical = _writer(_CANONICAL)
