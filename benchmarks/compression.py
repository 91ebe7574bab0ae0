"""How much does the reference gateway's compression save on agent transcripts, and how fast?

Run with ``.venv/bin/python benchmarks/compression.py``.

For each transcript of the corpus (``gateproof.openapi.transcripts()``: a coding agent's
session of about 1k, 8k, 32k and 128k prompt tokens, mostly tool output) it reports:

- **tokens**: the uncompressed prompt under openapi's convention (what the mock bills);
- **saved** and **reduction**: ``Compression.saved_tokens`` and saved / tokens;
- **time_ms p50 / p99**: ``Compression.time_ms`` (transform plus token counting) over
  ``--runs`` calls, each on the transcript as loaded (nothing is cached between calls);
- **count p50**: the baseline, measured in the same run (interleaved with the compressions, so
  both see the same load): counting the uncompressed prompt's tokens once with
  ``count_chat_prompt`` (what the gateway would spend just to know the prompt's size);
  **ratio** is compression p50 / count p50;
- **needles**: how many of the transcript's needles are still verbatim in the forwarded prompt.

A second table gives what each strategy adds when they are switched on one after the other
in registry order (later strategies see earlier ones' output: passing-test lines are only
recognised once their colour codes are gone), so the rows add up to the total reduction.

Public figures to compare with: Edgee's docs give about -19 % input tokens for tool-result
trimming, and an example response with ``time_ms`` 12 for 450 saved tokens.
"""

from __future__ import annotations

import argparse
import statistics
import time

from gateproof.openapi import Transcript, count_chat_prompt, transcripts
from gateproof.reference_gateway.compression import REPEATED_RESULT, STRATEGIES, compress_messages


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _timed(transcript: Transcript, runs: int) -> tuple[list[float], list[float]]:
    """``runs`` compressions and, interleaved with them, ``runs`` counts of the prompt (the baseline).

    Interleaving puts both under the same load when the machine is shared.
    """
    compress_times, count_times = [], []
    messages, tools = list(transcript.messages), list(transcript.tools)
    for _ in range(runs):
        compress_times.append(compress_messages(transcript.messages).time_ms)
        started = time.perf_counter()
        count_chat_prompt(messages, tools)
        count_times.append((time.perf_counter() - started) * 1000)
    return compress_times, count_times


def _needles_kept(transcript: Transcript) -> int:
    result = compress_messages(transcript.messages)
    texts = "\n".join(m["content"] for m in result.messages if isinstance(m.get("content"), str))
    return sum(needle in texts for needle in transcript.needles)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="compressions per transcript (default 200)")
    args = parser.parse_args()
    corpus = transcripts()
    compress_messages(corpus[0].messages)  # load the tokenizer before timing anything
    print(f"compression of agent transcripts; time_ms over {args.runs} runs each")
    print(
        f"{'transcript':>11} {'tokens':>7} {'saved':>7} {'reduction':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'count p50':>9} {'ratio':>6} {'needles':>8}"
    )
    for transcript in corpus:
        times, counts = _timed(transcript, args.runs)
        result = compress_messages(transcript.messages)
        base = statistics.median(counts)
        p50 = statistics.median(times)
        kept = _needles_kept(transcript)
        print(
            f"{transcript.name:>11} {transcript.tokens:>7} {result.saved_tokens:>7} "
            f"{100 * result.saved_tokens / transcript.tokens:>8.1f}% {p50:>7.2f} {_percentile(times, 0.99):>7.2f} "
            f"{base:>8.2f}  {p50 / base:>5.2f}x {kept:>4}/{len(transcript.needles)}"
        )
    print()
    print(
        "what each strategy adds, in registry order (% of the prompt's tokens; the rows add up to the total)"
    )
    print(f"{'strategy':>29} " + " ".join(f"{t.name:>11}" for t in corpus))
    names = list(STRATEGIES)
    previous = [0] * len(corpus)
    for upto in range(1, len(names) + 2):
        subset = {name: STRATEGIES[name] for name in names[:upto]}
        repeats = upto > len(names)
        saved = [
            compress_messages(t.messages, strategies=subset, repeated_results=repeats).saved_tokens
            for t in corpus
        ]
        label = REPEATED_RESULT if repeats else names[upto - 1]
        print(
            f"{label:>29} "
            + " ".join(
                f"{100 * (now - before) / t.tokens:>10.1f}%"
                for now, before, t in zip(saved, previous, corpus, strict=True)
            )
        )
        previous = saved
    print()
    print(
        "public figures: Edgee docs, tool-result trimming about -19 % input tokens; example time_ms 12 for 450 saved"
    )


if __name__ == "__main__":
    main()
