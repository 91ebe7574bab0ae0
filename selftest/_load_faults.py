"""Faults only a load run can see: a gateway correct in every answer, and slower.

The contract suite judges what a gateway answers, so it must pass these (they are not in
``FAULTS``, which the contract self-test plays); the paired load run judges how much a gateway
adds, and must detect them. Each record names that measurement in ``measured_by``; the test that
proves it is ``tests/load/test_paired.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateproof.selftest._fault import Fault

__all__ = ["LOAD_FAULTS"]

_LOAD_CATALOGUE = (
    Fault(
        "added_latency_1ms",
        "waits 1 ms before handing each request on: every answer is correct, each arrives 1 ms later",
        delay=0.001,
        measured_by="paired_overhead",
    ),
)

#: faults a paired load run must detect, by name (read-only)
LOAD_FAULTS: Mapping[str, Fault] = MappingProxyType({fault.name: fault for fault in _LOAD_CATALOGUE})
