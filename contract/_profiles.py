"""Spec views per profile: the openai-core view is derived from the one spec, never written twice.

The reference spec marks what only the Edgee API promises with two vendor extensions:

- ``x-gateproof-profile: edgee`` on a property schema: the property is required only in the
  edgee profile (a plain OpenAI-compatible gateway answers ``prompt_tokens_details`` rather than
  ``input_tokens_details``, and may leave ``finish_reason`` off a chunk choice);
- ``x-gateproof-edgee-only: [keyword, ...]`` on any schema: those keywords apply only in the edgee
  profile (``enum`` on ``error.type``: OpenAI's own 429 says ``"type": "requests"``).

The openai-core view is the same document with those requirements and keywords removed, so a
target is judged on what it owes and nothing more (decision D29).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from gateproof.contract.checks import Profile
from gateproof.openapi import Validators, load_spec, validators

__all__ = ["EDGEE_KEYWORDS", "EDGEE_MARK", "core_view", "validators_for"]

EDGEE_MARK = "x-gateproof-profile"
EDGEE_KEYWORDS = "x-gateproof-edgee-only"


def _relax(node: Any) -> None:
    if isinstance(node, dict):
        keywords = node.get(EDGEE_KEYWORDS)
        if isinstance(keywords, list):
            for keyword in keywords:
                node.pop(keyword, None)
        properties = node.get("properties")
        required = node.get("required")
        if isinstance(properties, dict) and isinstance(required, list):
            node["required"] = [
                name
                for name in required
                if not (
                    isinstance(properties.get(name), dict) and properties[name].get(EDGEE_MARK) == "edgee"
                )
            ]
        for value in node.values():
            _relax(value)
    elif isinstance(node, list):
        for value in node:
            _relax(value)


def core_view(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` in which Edgee-only properties are optional and Edgee-only keywords gone."""
    view = copy.deepcopy(spec)
    _relax(view)
    return view


@functools.cache
def validators_for(profile: Profile) -> Validators:
    """The validators a target of ``profile`` is held to."""
    if profile is Profile.EDGEE:
        return validators()
    return Validators(core_view(load_spec()))
