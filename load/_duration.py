"""Run lengths written the way locust and people write them: ``30s``, ``2m``, ``1m30s``, ``90``.

The CLI accepts these and the runner hands locust whole seconds, so the parsing
lives in one small pure function that the tests can pin down.
"""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a bare number (seconds) or parts with ``h``/``m``/``s`` suffixes.

    Each unit may appear once, larger units first (``1h2m3s``, ``1.5s``). Anything
    else, and zero or negative lengths, raise ``ValueError`` with a message meant for
    the command line.
    """
    raw = text.strip().lower()
    if not raw:
        raise ValueError("empty duration")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = _parse_parts(raw, text)
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"duration must be positive and finite: {text!r}")
    return seconds


def _parse_parts(raw: str, original: str) -> float:
    position = 0
    seen: list[str] = []
    total = 0.0
    for match in _PART.finditer(raw):
        if match.start() != position:
            break
        unit = match.group(2)
        if seen and "hms".index(unit) <= "hms".index(seen[-1]):
            raise ValueError(f"units out of order in duration {original!r} (write e.g. 1m30s)")
        seen.append(unit)
        total += float(match.group(1)) * _UNIT_SECONDS[unit]
        position = match.end()
    if position != len(raw) or not seen:
        raise ValueError(f"not a duration: {original!r} (use e.g. 30s, 2m, 1m30s or a number of seconds)")
    return total


def format_duration(seconds: float) -> str:
    """The ``-t`` value for locust: whole seconds, rounded up so a run is never shorter than asked."""
    whole = int(seconds) if seconds == int(seconds) else int(seconds) + 1
    return f"{max(whole, 1)}s"
