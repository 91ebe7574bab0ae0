"""The directive syntax: how a request tells a gateproof mock what to answer, through any gateway.

Gateways drop unknown headers and rewrite model names, but they forward the conversation, so a
request writes its wishes into the last user message as one token::

    [[gateproof scenario=text tokens=40 cid=abc]]

``[[gateproof``, then whitespace-separated ``key=value`` pairs, then ``]]``. The suite, the load
users and the smoke command write directives; the mock reads them (and owns the meaning of each
key: ``gateproof.mock_providers._directives``). Both sides take the syntax from here. Standard
library only.
"""

from __future__ import annotations

import re

__all__ = ["DIRECTIVE_MARKER", "DIRECTIVE_PATTERN", "format_directive"]

#: the opening of every directive
DIRECTIVE_MARKER = "[[gateproof"
#: one directive; group ``body`` holds its ``key=value`` pairs (values have no spaces and no ``]``)
DIRECTIVE_PATTERN = re.compile(r"\[\[gateproof(?=[\s\]])(?P<body>[^\]]*)\]\]")


def format_directive(**keys: object) -> str:
    """``[[gateproof k=v ...]]`` with the keys in the order given (``[[gateproof]]`` for none)."""
    if not keys:
        return DIRECTIVE_MARKER + "]]"
    return DIRECTIVE_MARKER + " " + " ".join(f"{key}={value}" for key, value in keys.items()) + "]]"
