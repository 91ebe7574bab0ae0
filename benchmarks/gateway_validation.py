"""How long does the reference gateway take to validate one request body, old way and new?

Run with ``.venv/bin/python benchmarks/gateway_validation.py``.

- **old**: the spec's pure-Python validators (``jsonschema``), ``first_issue`` on every body,
  which is what the gateway ran before (each message tries five ``oneOf`` branches through
  ``$ref``, about 0.14 ms per message);
- **new**: ``RequestValidator`` as the gateway runs it now: the verdict from the same spec
  compiled by ``jsonschema_rs``, and the Python validators only to name the culprit of an
  invalid body, over its failing items alone.

Both see the same bodies: valid conversations of 10, 1 000 and 10 000 messages, and the same
with one bad message at the end (the slow path). The figure is the median time per request
over repeated runs; the ratio is old / new. Everything runs in this process, on the event
loop's thread in the gateway, so these milliseconds are also how long other requests waited.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from gateproof.openapi import SchemaKind, validators
from gateproof.reference_gateway import GatewayError
from gateproof.reference_gateway._validation import RequestValidator, shipped_request_schema

SIZES = (10, 1_000, 10_000)


def conversation(count: int, *, broken: bool) -> dict[str, Any]:
    """``count`` alternating user/assistant messages; ``broken`` drops the last one's content."""
    messages: list[dict[str, Any]] = [
        {"role": ("user", "assistant")[i % 2], "content": f"message {i}: a sentence of ordinary length"}
        for i in range(count)
    ]
    if broken:
        messages[-1] = {"role": "user"}
    return {"model": "openai/gpt-4o", "messages": messages, "max_tokens": 256, "stream": False}


def old_check(body: Any) -> str | None:
    issue = validators().first_issue(SchemaKind.REQUEST, body)
    return None if issue is None else issue.path


NEW = RequestValidator(validators(), shipped_request_schema(), max_messages=1_000_000)


def new_check(body: Any) -> str | None:
    try:
        NEW.check_body(body)
    except GatewayError as error:
        return error.param
    return None


def per_request_ms(check: Callable[[Any], str | None], body: Any, budget_s: float) -> float:
    """The median of as many runs as fit in ``budget_s`` (at least 3)."""
    times: list[float] = []
    spent_from = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - spent_from < budget_s:
        started = time.perf_counter()
        check(body)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement (default: 1)")
    args = parser.parse_args()
    # build and warm both (compiling the spec, the first $ref resolutions)
    new_check(conversation(2, broken=False))
    old_check(conversation(2, broken=False))

    print(f"{'body':<28}{'old ms':>12}{'new ms':>12}{'old/new':>10}")
    for broken in (False, True):
        for size in SIZES:
            body = conversation(size, broken=broken)
            old_verdict, new_verdict = old_check(body), new_check(body)
            if old_verdict != new_verdict:
                raise SystemExit(
                    f"verdicts differ at {size} messages: old {old_verdict!r}, new {new_verdict!r}"
                )
            old = per_request_ms(old_check, body, args.budget)
            new = per_request_ms(new_check, body, args.budget)
            label = f"{size:,} messages, {'invalid' if broken else 'valid'}"
            print(f"{label:<28}{old:>12.3f}{new:>12.3f}{old / new:>9.0f}x")


if __name__ == "__main__":
    main()
