"""Reading the mock's chunk stamps on the client side: what a gateway did to each chunk on its way.

With ``stamp=1`` the mock starts the text of every content chunk with a stamp, its sequence number
and the wall-clock time it was written (``gateproof.openapi._stamps`` has the format and why it
rides in the content). The load user hands this module the content events of one stream as they
arrived (arrival ``perf_counter`` and the event's content text) and gets back, on the
:class:`~gateproof.load._measurement.Measurement`:

- ``chunk_delays``: per stamp, client arrival wall time minus the stamp's send time, in seconds,
  in stamp order. The arrival wall time is the request's wall clock at the origin of its timings
  plus the arrival's distance from that origin (one clock reading per request, so the per-chunk
  figures keep ``perf_counter``'s resolution). A stamp cut across events counts as arrived with
  the event that completed it: only then could a client read it.
- ``stamps``: whole stamps seen;
- ``coalesced``: events whose content began more than one stamp (chunks the gateway merged);
- ``split``: stamps whose text spans more than one event (a chunk the gateway cut in two; found
  in the content joined over the stream, so a cut anywhere in the stamp is seen, not only one
  that leaves the prefix behind);
- ``missing``: sequence numbers from 0 to the highest seen that never arrived (dropped chunks);
- ``buffered``: content arrived in a burst after a wait, by this rule: at least
  :data:`BURST_MIN_CHUNKS` stamps arriving within :data:`BURST_WINDOW_S` of the first of them,
  which the mock had sent over at least :data:`HELD_GAPS` times the stream's median send gap
  and at least :data:`HELD_MIN_S`. A gateway relaying chunk by chunk keeps arrivals as far
  apart as the sends, so it never trips this; one that holds content back and flushes it does.
  The floor keeps a provider that itself sends chunks back to back (``itl_ms=0``) from counting
  as buffering. A client too busy to read (a saturated load generator) bunches arrivals the
  same way, which is why a paired run compares the rate direct to the mock with the rate
  through the gateway.

A stream with no stamp leaves every field at its default. Pure functions, no clock, no I/O.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Sequence

from gateproof.load._measurement import Measurement
from gateproof.openapi import STAMP_PATTERN, STAMP_PREFIX

__all__ = ["BURST_MIN_CHUNKS", "BURST_WINDOW_S", "HELD_GAPS", "HELD_MIN_S", "is_buffered", "read_stamps"]

#: stamped chunks arriving within this long of the first of them form a burst
BURST_WINDOW_S = 0.001
#: the fewest chunks a burst has
BURST_MIN_CHUNKS = 3
#: a burst counts as buffering when its chunks were sent over at least this many median send gaps
HELD_GAPS = 2.0
#: ... and at least this long (seconds), so back-to-back sends never count
HELD_MIN_S = 0.002

_FIRST, _SECOND = operator.itemgetter(0), operator.itemgetter(1)
#: with the texts joined by NUL (which none holds), each text that begins with a stamp shows as this
_EVENT_STARTS_STAMPED = "\0" + STAMP_PREFIX
#: the sequence numbers of a stream that lost none, as the stamps spell them
_IN_ORDER = [str(number) for number in range(4096)]
_GP = [STAMP_PREFIX.strip("~:")] * 4096


def read_stamps(
    measurement: Measurement, arrivals: Sequence[float], texts: Sequence[str], *, sent_at: float
) -> None:
    """Fill the stamp fields of ``measurement`` from one stream's content events.

    ``arrivals`` (``perf_counter``) and ``texts`` (content text) are those of every event that
    carried content, in arrival order; ``sent_at`` is the ``perf_counter`` the request's timings
    count from, whose wall time is ``measurement.started_wall`` (less ``lag`` in an open loop).
    """
    joined = "".join(texts)
    if STAMP_PREFIX not in joined:
        return
    count = len(texts)
    stamps = _split_stamps(joined, count) if joined.count(STAMP_PREFIX) == count else None
    if stamps is not None and (
        "\0" in joined or ("\0" + "\0".join(texts)).count(_EVENT_STARTS_STAMPED) != count
    ):
        stamps = None
    if stamps is None:
        found = STAMP_PATTERN.findall(joined)
        if not found:
            return
        count = len(found)
        numbers, sent_texts = list(map(_FIRST, found)), list(map(_SECOND, found))
        arrivals = _place(measurement, arrivals, texts, joined)
    else:
        # the common case: every event begins with its own stamp and holds no other, so stamp k
        # is whole inside event k (the k-th prefix is event k's start, and stamp k ends before
        # stamp k+1 begins)
        numbers, sent_texts = stamps
    sent_us = list(map(int, sent_texts))
    origin_wall = measurement.started_wall - (measurement.lag or 0.0) - sent_at
    measurement.chunk_delays = [
        origin_wall + arrived - sent / 1_000_000 for arrived, sent in zip(arrivals, sent_us, strict=True)
    ]
    measurement.stamps = count
    if numbers != _IN_ORDER[:count]:
        sequence = set(map(int, numbers))
        measurement.missing = max(sequence) + 1 - len(sequence)
    # a stream sent within HELD_MIN_S cannot have been held back (see is_buffered)
    if max(sent_us) - min(sent_us) >= HELD_MIN_S * 1_000_000:
        measurement.buffered = is_buffered(arrivals, [sent / 1_000_000 for sent in sent_us])


def _split_stamps(joined: str, count: int) -> tuple[list[str], list[str]] | None:
    """(sequence numbers, send times) as text, when ``joined`` is ``count`` stamps each followed by
    text without ``~`` or ``:``, else None (then the pattern reads the stamps, at about twice the
    cost). ``~gp:7:123~ word`` splits on ``~`` and ``:`` into ``"", "gp", "7", "123", " word"``."""
    parts = joined.replace("~", ":").split(":")
    if len(parts) != 4 * count + 1 or parts[0] or parts[1::4] != _GP[:count]:
        return None
    numbers, sent = parts[2::4], parts[3::4]
    digits = "".join(numbers) + "".join(sent)
    if not (digits.isascii() and digits.isdigit() and all(numbers) and all(sent)):
        return None
    return numbers, sent


def _place(
    measurement: Measurement, arrivals: Sequence[float], texts: Sequence[str], joined: str
) -> list[float]:
    """The arrival of every stamp of ``joined``, counting coalesced events and split stamps."""
    ends = list(itertools.accumulate(map(len, texts)))
    placed: list[float] = []
    began: dict[int, int] = {}
    split = 0
    for match in STAMP_PATTERN.finditer(joined):
        first = bisect.bisect_right(ends, match.start())
        last = bisect.bisect_right(ends, match.end() - 1)
        began[first] = began.get(first, 0) + 1
        if last != first:
            split += 1
        placed.append(arrivals[last])
    measurement.split = split
    measurement.coalesced = sum(1 for stamps in began.values() if stamps > 1)
    return placed


def is_buffered(arrivals: Sequence[float], sends: Sequence[float]) -> bool:
    """Whether some burst of arrivals was sent over a much longer time (the module's rule).

    ``arrivals`` (``perf_counter``) and ``sends`` (any clock, seconds) are per stamp, in arrival
    order.
    """
    n = len(arrivals)
    if n < BURST_MIN_CHUNKS:
        return False
    ordered = sorted(sends)
    gaps = sorted(later - earlier for earlier, later in itertools.pairwise(ordered))
    middle = len(gaps) // 2
    median_gap = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
    # stamps are whole microseconds: half of one absorbs the rounding of the float arithmetic
    need = max(HELD_GAPS * median_gap, HELD_MIN_S) - 0.000_000_5
    if ordered[-1] - ordered[0] < need:
        return False  # no window can span more than the whole stream
    end = 0
    for start in range(n):
        end = max(end, start + 1)
        limit = arrivals[start] + BURST_WINDOW_S
        while end < n and arrivals[end] <= limit:
            end += 1
        if end - start >= BURST_MIN_CHUNKS:
            window = sends[start:end]
            if max(window) - min(window) >= need:
                return True
    return False
