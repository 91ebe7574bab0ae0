"""Every name a failed load request can carry, in one place, each with the sentence that explains it.

A load run counts failures by name (``load.json``'s ``failure_reasons``, locust's failure CSV,
the printed summary), so the names are an interface: a CI job greps for them and a report groups
by them. They come from four families, and nothing else may produce one:

- the transport (:class:`gateproof.contract.TransportFailure`): the same names ``gateproof
  contract`` uses for the same misbehaviour (``redirect``, ``timeout``, ``deadline``,
  ``body_too_large``, ``headers_too_large``, ``connection_*``, ``protocol_error``);
- the HTTP status: ``http_<code>`` for a 1xx final answer or any 4xx/5xx (a 3xx is ``redirect``);
- the answer's head: ``content_type_matches_mode``, the contract check of the same name (a streamed
  answer is ``text/event-stream``, a plain one ``application/json``);
- the body: a stream-grammar rule of :data:`gateproof.contract.stream.RULES` (``no_error_event``,
  ``done_terminates_stream``, ...) plus ``no_content`` for a stream, or one of the completion names
  below for a non-streamed answer; the compression scenario adds ``compression_missing``,
  ``compression_time_exceeds_latency`` and ``not_compressed_body`` (``gateproof.load._compression``);
- and ``load_internal_error`` when gateproof's own user code raised (a bug to report, not a verdict
  on the target).

:func:`describe` gives the sentence for any name; the tests assert that every name a hostile run
produces is one of these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from gateproof.contract import MAX_JSON_DEPTH, TransportFailure
from gateproof.contract.stream import RULES

__all__ = [
    "COMPRESSION_MISSING",
    "COMPRESSION_TIME_EXCEEDS_LATENCY",
    "CONTENT_TYPE",
    "FAILURES",
    "INTERNAL_ERROR",
    "IN_FLIGHT_AT_END",
    "NOT_COMPRESSED_BODY",
    "describe",
    "is_known",
    "media_type_failure",
    "status_failure",
]

#: the contract check whose rule the load users apply to the answer's media type
CONTENT_TYPE: Final = "content_type_matches_mode"
#: a request the run ended while it was still in flight: it outlived the run's own deadline
#: (run time + stop timeout), so it counts under the transport's ``deadline``
IN_FLIGHT_AT_END: Final = TransportFailure.DEADLINE.value
#: gateproof's own load user raised on an answer: a gateproof bug, never the target's fault, so it
#: gets a name of its own instead of hiding under a transport name (the traceback is in locust.log)
INTERNAL_ERROR: Final = "load_internal_error"
#: the compression scenario's own names (judged in ``gateproof.load._compression``)
COMPRESSION_MISSING: Final = "compression_missing"
COMPRESSION_TIME_EXCEEDS_LATENCY: Final = "compression_time_exceeds_latency"
NOT_COMPRESSED_BODY: Final = "not_compressed_body"

_LOAD_NAMES: Final = {
    CONTENT_TYPE: "a streamed answer is text/event-stream, a non-streamed one application/json",
    "no_content": "the stream carried no event with content",
    "invalid_json": "the non-streamed body is not a JSON object",
    "too_deep": f"the non-streamed body nests JSON deeper than {MAX_JSON_DEPTH} levels",
    "error_body": "the non-streamed 2xx body is an error object",
    "not_chat_completion": "the non-streamed body is not a chat.completion with a message",
    "no_usage": "the non-streamed body has no usage.completion_tokens count",
    INTERNAL_ERROR: "gateproof's load user failed on this answer (a gateproof bug; see locust.log)",
    COMPRESSION_MISSING: (
        "compression was asked for (X-Edgee-Enable-Compression: true, or POST /v1/compress) and the "
        "answer carries no compression object with a time and token counts"
    ),
    COMPRESSION_TIME_EXCEEDS_LATENCY: (
        "the compression time the gateway reported is longer than the whole request took as the client saw it"
    ),
    NOT_COMPRESSED_BODY: "the /v1/compress body is not the request echoed with a messages list",
}

#: every fixed failure name -> what it means (``http_<code>`` is the one family not listed by value)
FAILURES: Mapping[str, str] = MappingProxyType(
    {
        **{failure.value: failure.sentence for failure in TransportFailure},
        TransportFailure.DEADLINE.value: (
            "the request outlived its overall deadline (the request timeout, or the end of the run "
            "plus the stop timeout) while the answer was still coming"
        ),
        TransportFailure.TIMEOUT.value: "not one byte of the answer arrived within the request timeout",
        **_LOAD_NAMES,
        **RULES,
    }
)

_HTTP_STATUS = re.compile(r"http_(\d{3})")


def is_known(name: str) -> bool:
    """Whether ``name`` is one of the documented failure names."""
    return name in FAILURES or _HTTP_STATUS.fullmatch(name) is not None


def describe(name: str) -> str:
    """The sentence for a failure name (unknown names are said to be unknown, never hidden)."""
    if name in FAILURES:
        return FAILURES[name]
    match = _HTTP_STATUS.fullmatch(name)
    if match:
        return f"the target answered HTTP {match.group(1)}"
    return "not a gateproof load failure name"


def status_failure(status: int) -> str | None:
    """The failure a final status code is, or None for a 2xx (whose body is then judged)."""
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return TransportFailure.REDIRECT.value
    return f"http_{status}"


def media_type_failure(content_type: str, *, stream: bool) -> str | None:
    """``content_type_matches_mode`` when the media type does not fit the mode, else None.

    Parameters (``; charset=utf-8``) and case are ignored, as the contract check ignores them.
    """
    media_type = content_type.split(";")[0].strip().lower()
    expected = "text/event-stream" if stream else "application/json"
    return None if media_type == expected else CONTENT_TYPE
