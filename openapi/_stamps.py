"""Chunk stamps: how the mock marks each streamed chunk so a client can see what a gateway did to it.

With the directive key ``stamp=1`` the mock starts the text of every content chunk it streams with
a stamp: the chunk's sequence number in its stream (from 0) and the wall-clock time it was written
to the socket, in microseconds since the epoch (``time.time_ns() // 1000``; the mock and the client
share one machine, so one clock). The stamp travels inside the content because content is the one
thing every gateway must pass on as the provider sent it (ids, fingerprints and chunk framing may
change). The client then knows, per chunk, when it was sent and when it arrived, and whether the
gateway merged chunks (one event, several stamps), split them (a stamp cut across events) or held
them back (a burst of stamps arriving together that were sent apart).

The stamp is printable ASCII and contains no JSON-escaped character, so it reads the same in the
raw SSE bytes and in the decoded content. Standard library only: the mock writes stamps and the
load user reads them, and neither may import the other.
"""

from __future__ import annotations

import re

__all__ = ["STAMP_DIRECTIVE_KEY", "STAMP_PATTERN", "STAMP_PREFIX", "format_stamp", "parse_stamps"]

#: the directive key that asks the mock for stamped chunks (``stamp=1``)
STAMP_DIRECTIVE_KEY = "stamp"
#: what every stamp starts with (a cut stamp shows as this prefix without its end)
STAMP_PREFIX = "~gp:"
#: a whole stamp: sequence and send time in microseconds
STAMP_PATTERN = re.compile(r"~gp:(\d+):(\d+)~")


def format_stamp(seq: int, sent_us: int) -> str:
    """The stamp of chunk ``seq`` written at ``sent_us`` microseconds since the epoch."""
    return f"{STAMP_PREFIX}{seq}:{sent_us}~"


def parse_stamps(text: str) -> list[tuple[int, int]]:
    """Every whole stamp in ``text``, in order, as (sequence, send time in microseconds)."""
    return [(int(m.group(1)), int(m.group(2))) for m in STAMP_PATTERN.finditer(text)]
