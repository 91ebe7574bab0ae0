"""The live progress line every command shows on stderr: rewritten in place on a terminal, one line
per step in CI logs, each with the elapsed time."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressLine"]


class ProgressLine:
    """Shows what a long step is doing, with the elapsed time, so a run is never silent."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.live = self.stream.isatty()
        self._width = 0

    def __call__(self, message: str) -> None:
        text = f"[{time.monotonic() - self.started:6.1f}s] {message}"
        if self.live:
            padding = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * padding)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.live and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
