"""How fast does gateproof replay a failing answer through the openai SDK, and what does judging add?

Run with ``.venv/bin/python benchmarks/impact_replay.py``.

- **sdk**: the baseline, the bare SDK calls a replay makes (``create`` or ``create(stream=True)``
  iterated, plus ``chat.completions.stream().get_final_completion()`` for streams) on the same
  in-memory transport, nothing compared;
- **replay**: ``replay()`` as ``assess`` runs it: the same calls, each chunk compared with its
  ``data:`` on the wire and checked against the SDK's declared types, the helper's accumulation
  checked against the wire's.

Bodies: a 20-chunk stream (a short answer with usage), an 8 MiB non-stream completion, and an
8 MiB stream of 8 KiB deltas. Figures are replays per second (median of repeated runs); the
ratio is replay / sdk time, i.e. what gateproof's judging costs on top of the client itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from gateproof.contract import _impact
from gateproof.contract.results import RawResponse

ROUTE = "POST /v1/chat/completions"
REQUEST: dict[str, Any] = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "openai/gpt-4o"}
USAGE = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def delta(content: str, finish: str | None = None) -> dict[str, Any]:
    return {**CHUNK, "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}


def bodies() -> dict[str, RawResponse]:
    stream_headers = (("content-type", "text/event-stream"),)
    short = sse(
        [delta(f"word{i} ") for i in range(18)]
        + [delta("", "stop"), {**CHUNK, "choices": [], "usage": USAGE}]
    )
    big_text = "x" * (8 * 1024 * 1024 - 400)
    completion = {
        **{k: v for k, v in CHUNK.items() if k != "object"},
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": big_text}, "finish_reason": "stop"}
        ],
        "usage": USAGE,
    }
    piece = delta("y" * 8192)
    count = 8 * 1024 * 1024 // len(sse([piece]))
    big_stream = sse([piece] * count + [delta("", "stop")])
    return {
        "20-chunk stream": RawResponse(200, stream_headers, short, True, {**REQUEST, "stream": True}),
        "8 MiB completion": RawResponse(
            200, (("content-type", "application/json"),), json.dumps(completion).encode(), False, REQUEST
        ),
        f"8 MiB stream ({count} chunks)": RawResponse(
            200, stream_headers, big_stream, True, {**REQUEST, "stream": True}
        ),
    }


def bare_sdk(raw: RawResponse) -> None:
    """The SDK calls of a replay, judged by nothing."""
    kwargs = _impact._chat_kwargs(raw.request)
    with _impact._quiet(), _impact._replay_client(raw, _impact.REPLAY_SECONDS) as client:
        if not raw.stream:
            client.chat.completions.create(**kwargs)
            return
        for _chunk in client.chat.completions.create(stream=True, **kwargs):
            pass
        with client.chat.completions.stream(**kwargs) as stream:
            for _event in stream:
                pass
            stream.get_final_completion()


def median_seconds(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (default: %(default)s)")
    args = parser.parse_args()
    print(f"{_impact.SDK}; median of {args.runs} runs")
    print(f"{'body':<28} {'sdk /s':>10} {'replay /s':>10} {'ratio':>7}  verdicts")
    for name, raw in bodies().items():
        impacts = _impact.replay(raw, ROUTE)
        sdk = median_seconds(lambda raw=raw: bare_sdk(raw), args.runs)
        judged = median_seconds(lambda raw=raw: _impact.replay(raw, ROUTE), args.runs)
        verdicts = ",".join(impact.verdict.value for impact in impacts)
        print(f"{name:<28} {1 / sdk:>10.1f} {1 / judged:>10.1f} {judged / sdk:>6.2f}x  {verdicts}")


if __name__ == "__main__":
    main()
