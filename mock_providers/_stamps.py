"""Chunk stamps on the mock's side: a streamed text piece whose JSON string starts with its stamp.

With ``stamp=1`` every content chunk whose content is text (an answer's text, a refusal's)
begins with ``gateproof.openapi.format_stamp(seq, sent_us)``: ``seq`` counts the stream's
content chunks from 0, ``sent_us`` is the wall clock when the chunk is written to the socket.
The send time is only known then, so a stamped chunk is not bytes but a ``Render`` the
delivery calls at the write (``_delivery``). Tool-call chunks carry JSON arguments, which a
stamp would corrupt, and are never stamped.

The stamp is printable ASCII with no character JSON escapes (``openapi/_stamps.py``), so
the JSON string of ``stamp + text`` is the text's JSON string with the stamp slipped in
after its opening quote: the text is quoted once, when the frame is made, and the write
only joins bytes.
"""

from __future__ import annotations

from gateproof.mock_providers._json import quote
from gateproof.mock_providers._replies import Render
from gateproof.openapi import format_stamp

__all__ = ["stamped_string"]


def stamped_string(prefix: bytes, text: str, suffix: bytes, seq: int) -> Render:
    """What makes ``prefix + <JSON string of stamp + text> + suffix`` for the chunk ``seq``, once sent."""
    head = prefix + b'"'
    rest = quote(text).encode()[1:]  # the quoted text after its opening quote

    def render(sent_us: int) -> bytes:
        return head + format_stamp(seq, sent_us).encode() + rest + suffix

    return render
