"""How does the SSE decoder's cost grow with the length of one line, next to a plain byte split?

Run with ``.venv/bin/python benchmarks/sse_decoder.py``.

A target may send one enormous ``data:`` line. The decoder used to append every network piece
to one string, which copies the whole line per piece: 4/8/16/32 MiB lines took 0.9/2.7/11.6/44.7 s,
quadratic. It now keeps the pieces of an unfinished line in a list and joins them once.

For each line length the same bytes (``data: xxx...\\n\\n`` in 64 KiB pieces, as a socket
delivers them) go through:

- **decoder**: ``SSEDecoder`` with its line limit raised above the line, so the line is decoded
  and dispatched as one event (the cost of keeping it);
- **decoder, default limit**: ``SSEDecoder()`` as gateproof runs it, which drops a line past
  ``MAX_LINE_CHARS`` (1 MiB) and reports it as a framing issue;
- **baseline**: the least any decoder must do, measured in the same run: collect the pieces,
  ``b"".join`` them and ``bytes.split`` on LF.

Each figure is the best of ``--repeat`` runs; the ratios are decoder / baseline. Linear cost
shows as seconds that double with the length and a ratio that stays flat.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from gateproof.contract.stream import MAX_LINE_CHARS, SSEDecoder

PIECE = b"x" * 65536
SIZES_MB = (4, 8, 16, 32)


def _pieces(megabytes: int) -> list[bytes]:
    return [b"data: ", *([PIECE] * (megabytes * 16)), b"\n\n"]


def _decoder(limit: int) -> Callable[[list[bytes]], int]:
    def run(pieces: list[bytes]) -> int:
        decoder = SSEDecoder(max_line_chars=limit)
        events = 0
        for piece in pieces:
            events += len(decoder.feed(piece))
        decoder.close()
        return events

    return run


def _baseline(pieces: list[bytes]) -> int:
    kept: list[bytes] = []
    for piece in pieces:
        kept.append(piece)
    return len(b"".join(kept).split(b"\n"))


def _best(run: Callable[[list[bytes]], int], pieces: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run(pieces)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept (default 3)")
    args = parser.parse_args()
    keep_all = _decoder(max(SIZES_MB) * 1024 * 1024 + 1024)
    default = _decoder(MAX_LINE_CHARS)
    print(f"one data: line of N MiB, fed in 64 KiB pieces; best of {args.repeat}")
    print(
        f"{'line':>7} {'decoder':>10} {'default limit':>14} {'baseline':>10} {'ratio':>7} {'ratio (limit)':>14}"
    )
    for megabytes in SIZES_MB:
        pieces = _pieces(megabytes)
        decoded = _best(keep_all, pieces, args.repeat)
        limited = _best(default, pieces, args.repeat)
        base = _best(_baseline, pieces, args.repeat)
        print(
            f"{megabytes:>4} MiB {decoded:>9.3f}s {limited:>13.3f}s {base:>9.3f}s "
            f"{decoded / base:>6.1f}x {limited / base:>13.1f}x"
        )


if __name__ == "__main__":
    main()
