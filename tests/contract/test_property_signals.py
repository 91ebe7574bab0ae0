"""A signal during the property layer is noted by gateproof itself, whatever schemathesis does with it."""

from __future__ import annotations

import os
import signal
import time

import pytest

from gateproof.contract._property import _signals_noted


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_swallowed_signal_is_still_noted(signum: signal.Signals) -> None:
    seen: list[int] = []
    outer = signal.getsignal(signum)
    raised: list[type[BaseException]] = []

    def terminated(_signum: int, _frame: object) -> None:  # what the CLI installs for SIGTERM
        raise KeyboardInterrupt

    if signum is signal.SIGTERM:
        signal.signal(signum, terminated)
    try:
        with _signals_noted(seen):
            try:  # a library that catches the interrupt and carries on, as schemathesis may
                os.kill(os.getpid(), signum)
                time.sleep(1)
            except KeyboardInterrupt as exc:
                raised.append(type(exc))
    finally:
        signal.signal(signum, outer if signum is signal.SIGTERM else signal.default_int_handler)
    assert seen == [signum], "the signal was not noted"
    assert raised == [KeyboardInterrupt], "the handler in place before still ran (it raises)"
    assert signal.getsignal(signum) is (outer if signum is signal.SIGTERM else signal.default_int_handler)
