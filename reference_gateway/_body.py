"""Turning the bytes of a request body into a JSON value the rest of the gateway can trust.

``json.loads`` accepts more than the gateway can carry: a document nested a few hundred
levels deep parses, then crashes whatever walks it next (schema validation, the copy sent
upstream) with a ``RecursionError``; ``"\\ud800"`` parses into a string that cannot be
encoded as UTF-8 to forward it; ``1e999`` parses as infinity, which JSON cannot express on
the way out. Each of these used to be a 500. Here they are the client's 400 ``invalid_json``
(D6): the gateway accepts what I-JSON (RFC 7493) allows for strings and numbers, and
nesting up to ``limits.max_json_depth``.

The parsed value is checked in one iterative pass (no recursion, so the check itself cannot
overflow), which also yields the dotted path of the first offending value for the message.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from gateproof.reference_gateway import _errors

__all__ = ["parse_body"]

_CONTAINERS = (dict, list)
#: the longest field path quoted in a message (keys can be as long as the body)
_MAX_PATH = 200


def parse_body(raw: bytes, *, max_depth: int) -> Any:
    """The JSON value in ``raw``, or 400 ``invalid_json`` naming what makes it unusable."""
    try:
        value = _loads(raw)
    except json.JSONDecodeError as exc:
        raise _errors.invalid_json(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        # The C scanner gives up long before 4 MiB of brackets; that is still "too deep".
        raise _errors.invalid_json(f"nesting deeper than {max_depth} levels") from None
    except ValueError as exc:  # bytes that are not UTF-8, an integer with too many digits, ...
        detail = str(exc) or type(exc).__name__
        if "integer string conversion" in detail:
            detail = f"an integer has more than {sys.get_int_max_str_digits()} digits"
        raise _errors.invalid_json(detail) from None
    if not _carriable(value, max_depth):
        raise _errors.invalid_json(_first_problem(value, max_depth) or "it cannot be forwarded")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


#: ``json.loads(raw, parse_constant=...)`` builds a decoder on every call; this one is built once
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
#: and the carriability check's encoder likewise
_CHECK_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False)


def _loads(raw: bytes) -> Any:
    """``json.loads(raw, parse_constant=_reject_constant)``, step for step, with the shared decoder."""
    return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


def _carriable(value: Any, max_depth: int) -> bool:
    """The fast verdict: one walk over the containers only, then the C encoder over everything.

    Encoding with ``allow_nan=False`` refuses infinities, and encoding the text as UTF-8 refuses
    lone surrogates, both at C speed; only the depth needs Python, and only per container.
    """
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return False
        below: list[Any] = []
        for node in level:
            children = node.values() if type(node) is dict else node
            below.extend(child for child in children if type(child) in _CONTAINERS)
        level = below
    try:
        _CHECK_ENCODER.encode(value).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return True


def _first_problem(value: Any, max_depth: int) -> str | None:
    """Why ``value`` cannot be carried (too deep, a lone surrogate, a non-finite number), or None.

    The slow walk, run only once the fast one said no: it keeps each value's path to name it.
    """
    # (node, depth of the containers around it, path parts) — paths are built only on failure
    pending: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 0, ())]
    while pending:
        node, depth, path = pending.pop()
        if isinstance(node, str):
            if not node.isascii() and not _encodes(node):
                return f"a string at {_dotted(path)} holds a lone surrogate (not a Unicode character)"
        elif isinstance(node, float):
            if not math.isfinite(node):
                return f"the number at {_dotted(path)} is out of range (it would be {node})"
        elif isinstance(node, dict):
            if depth + 1 > max_depth:
                return f"nesting deeper than {max_depth} levels (at {_dotted(path)})"
            for key, child in node.items():
                if not key.isascii() and not _encodes(key):
                    return f"a key in {_dotted(path)} holds a lone surrogate (not a Unicode character)"
                if isinstance(child, dict | list | str | float):
                    pending.append((child, depth + 1, (*path, key)))
        elif isinstance(node, list):
            if depth + 1 > max_depth:
                return f"nesting deeper than {max_depth} levels (at {_dotted(path)})"
            pending.extend(
                (child, depth + 1, (*path, index))
                for index, child in enumerate(node)
                if isinstance(child, dict | list | str | float)
            )
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _dotted(path: tuple[str | int, ...]) -> str:
    """``messages[0].content`` style, as D6 names fields; keys are shown safely escaped."""
    if not path:
        return "<root>"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            safe = part.encode("utf-8", "backslashreplace").decode("utf-8")
            text += ("." if text else "") + safe
        if len(text) > _MAX_PATH:
            return text[: _MAX_PATH - 1] + "…"
    return text
