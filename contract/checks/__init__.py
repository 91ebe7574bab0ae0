"""The checks of the conformance suite, kept in one registry.

A check is a plain function named for what it asserts; its docstring's first
line is its description. Add one by writing a function in the module of its
topic (``status``, ``bodies``, ``headers``, ``streaming``, ``journal``, ``translation``, ...) under the
``@check(...)`` decorator, then name it in the scenarios that it judges.
"""

from gateproof.contract.checks._context import CheckContext, Observed
from gateproof.contract.checks._registry import (
    ALL_PROFILES,
    CHECKS,
    EDGEE_ONLY,
    Check,
    CheckFailed,
    CheckFunction,
    NotApplicable,
    Profile,
    Redundant,
    Registry,
    Requirement,
    check,
)

__all__ = [
    "ALL_PROFILES",
    "CHECKS",
    "EDGEE_ONLY",
    "Check",
    "CheckContext",
    "CheckFailed",
    "CheckFunction",
    "NotApplicable",
    "Observed",
    "Profile",
    "Redundant",
    "Registry",
    "Requirement",
    "check",
    "load_all_checks",
]


def load_all_checks() -> Registry:
    """Import every check module (registration is a side effect of import) and return the registry."""
    from gateproof.contract.checks import (  # noqa: F401
        bad_days,
        bodies,
        compression,
        debug,
        edge_tools,
        headers,
        journal,
        status,
        streaming,
        translation,
    )

    return CHECKS
