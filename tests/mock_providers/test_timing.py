"""Pacing arithmetic and absolute-deadline sleeping."""

from __future__ import annotations

import asyncio

import pytest

from gateproof.mock_providers import Pacing
from gateproof.mock_providers._timing import sleep_until


def test_chunk_deadlines_are_absolute_offsets() -> None:
    pacing = Pacing.from_ms(200, 20)
    assert pacing.chunk_at(0) == pytest.approx(0.2)
    assert pacing.chunk_at(1) == pytest.approx(0.22)
    assert pacing.chunk_at(49) == pytest.approx(0.2 + 49 * 0.02)


def test_non_streamed_answer_is_due_with_its_last_piece() -> None:
    pacing = Pacing.from_ms(300, 10)
    assert pacing.whole_at(0) == pytest.approx(0.3)
    assert pacing.whole_at(1) == pytest.approx(0.3)
    assert pacing.whole_at(12) == pytest.approx(0.3 + 11 * 0.01)


def test_sleep_until_does_not_accumulate_lateness() -> None:
    async def run() -> list[float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        pacing = Pacing.from_ms(30, 10)
        seen = []
        for index in range(10):
            await sleep_until(t0 + pacing.chunk_at(index))
            seen.append(loop.time() - t0)
            if index == 2:
                # a busy loop makes this chunk late; later deadlines must not move
                busy_until = loop.time() + 0.025
                while loop.time() < busy_until:
                    pass
        return seen

    seen = asyncio.run(run())
    for index, at in enumerate(seen):
        assert at >= 0.03 + index * 0.01 - 0.0005
    assert seen[-1] < 0.03 + 9 * 0.01 + 0.03


def test_sleep_until_a_past_deadline_returns_at_once() -> None:
    async def run() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await sleep_until(start - 5)
        return loop.time() - start

    assert asyncio.run(run()) < 0.01
