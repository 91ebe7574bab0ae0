"""The fault records: one per fault, complete, and consistent with the gateway's seam."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.applications import Starlette

from gateproof.reference_gateway import NO_HOOKS, Hooks
from gateproof.selftest import FAULTS, NO_FAULT, PROPERTY_SCENARIOS, Fault, Hook, UnknownFaultError, get_fault


def test_the_core_hooks_of_a_record_are_the_gateways_seam() -> None:
    """selftest.Hook names the seam's fields plus the wire ones: a hook added on one side only fails here."""
    seam = {field.name for field in dataclasses.fields(Hooks)} - {"name"}
    assert {hook.value for hook in Hook if not hook.wire} == seam
    assert {hook.value for hook in Hook if hook.wire} == {"headers", "error", "frames", "delay"}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_every_record_is_complete(name: str) -> None:
    fault = FAULTS[name]
    assert fault.name == name
    assert fault.description.endswith("."), name
    assert fault.hooks, f"{name} acts nowhere"
    assert fault.caught_by, f"{name} names no check that catches it"
    assert all(check and scenario for check, scenario in fault.caught_by)
    assert fault.shown_by


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_record_splits_into_core_hooks_and_middleware(name: str) -> None:
    fault = FAULTS[name]
    hooks = fault.core_hooks()
    assert hooks.name == name  # the health check echoes it, also for a wire-only fault
    for hook in Hook:
        if hook.wire:
            continue
        assert getattr(hooks, hook.value) is getattr(fault, hook.value)
    app = Starlette()
    wrapped = fault.wrap(app)
    assert (wrapped is app) == (not any(hook.wire for hook in fault.hooks))


def test_the_correct_gateway_is_no_fault() -> None:
    assert get_fault(None) is NO_FAULT and get_fault("none") is NO_FAULT
    assert NO_FAULT.core_hooks() == NO_HOOKS
    app = Starlette()
    assert NO_FAULT.wrap(app) is app
    with pytest.raises(UnknownFaultError, match="--list-faults"):
        get_fault("no_such_fault")


def test_property_pairs_name_property_checks_only() -> None:
    """A pair's scenario is a scenario name, a routed one (``name[route]``) or a property-layer name."""
    for fault in FAULTS.values():
        for _, scenario in fault.caught_by:
            base = scenario.split("[", 1)[0]
            assert base == scenario or scenario.endswith("]"), (fault.name, scenario)
            assert base not in PROPERTY_SCENARIOS or base == scenario, (fault.name, scenario)


def test_a_new_fault_is_one_record() -> None:
    """What adding a fault takes: the record alone carries its hooks, its probe and its proof."""
    fault = Fault(
        "example",
        "An example.",
        caught_by=(("done_terminates_stream", "stream_basic"),),
        headers=lambda headers, streaming: headers,
    )
    assert fault.hooks == (Hook.HEADERS,) and fault.shown_by == "stream_basic"
