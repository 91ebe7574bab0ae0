"""Token arithmetic for the mock: what a prompt costs and what an answer is made of.

The mock is the oracle behind a gateway, so its usage figures must be *true*, not
estimates. Two things make that cheap:

- prompts are counted once per request under the convention whose one home is
  ``gateproof.openapi`` (``openapi/_tokens.py``: the real ``cl100k_base`` tokenizer,
  the cookbook's per-message framing, bounded chunked counting). It lives there, not
  here, because the reference gateway measures compression savings with the same
  figures the mock bills, and ``openapi`` is the one part both may import;
- answers are built from a vocabulary of words that are each exactly one token
  (with their leading space), so an answer of N pieces is N tokens by construction
  and nothing has to be tokenized on the way out. ``tests/mock_providers`` proves
  that by encoding generated text.

The convention itself (what a prompt costs) is imported from ``gateproof.openapi``,
its one home; this module keeps only what the mock alone needs: the answer vocabulary,
and ``count_inline``, the convention's figure for a prompt counted on the spot, with the
counts of short texts remembered: role names, a shared system prompt and the tool
definitions come back on request after request, and tokenizing them again was half the
cost of reading a short request.
"""

from __future__ import annotations

import functools

from gateproof.mock_providers._lru import LRU
from gateproof.openapi import PromptText, count_prompt
from gateproof.openapi._tokens import CHUNK_CHARS, ENCODING_NAME, encoding

__all__ = ["INLINE_CHARS", "count_inline", "openers", "token_pieces", "vocabulary"]

#: prompts with at most this many characters are counted on the spot; longer ones in a thread
INLINE_CHARS = 256 * 1024
#: texts up to this many characters have their count remembered (at most ``_REMEMBERED`` of them)
REMEMBERED_CHARS = 4096
_REMEMBERED = 4096
_counts: LRU[str, int] = LRU(_REMEMBERED)
assert REMEMBERED_CHARS <= CHUNK_CHARS  # a remembered text is counted whole, as count_prompt counts it


def count_inline(prompt: PromptText) -> int | None:
    """``count_prompt(prompt)[0]`` (no budget) for a prompt of at most ``INLINE_CHARS`` characters.

    A longer prompt is not counted here (None): the exchange counts it off the event loop.
    Counts of short texts are remembered; past ``_REMEMBERED`` texts the least recently used is
    forgotten first (an ``LRU``: forgetting the oldest entry of a plain dict, from its front,
    walks past the slots of the entries forgotten before it).
    """
    if sum(map(len, prompt.texts)) > INLINE_CHARS:
        return None
    counts = _counts
    total = prompt.fixed
    for text in prompt.texts:
        if len(text) > REMEMBERED_CHARS:
            total += count_prompt(PromptText(0, (text,)))[0]
            continue
        count = counts.get(text)
        if count is None:
            count = len(encoding().encode_ordinary(text))
            counts.put(text, count)
        total += count
    return total


# Plain English words. Each one, with a leading space, is a single cl100k token;
# capitalised and without the space it is also one token (checked at load time,
# and again by the tests). Order matters: it is part of the deterministic output.
_WORD_TEXT = """
time year people way day thing life child world school state family student group country
problem hand part place case week company system program question work number night point
home water room mother area money story fact month lot right study book eye job word
business issue side kind head house service friend father power hour game line end member
law car city community name team minute idea body information back parent face level office
door health person art history party result change morning reason research moment air
teacher force education river garden window light stone cloud paper music letter table road
field market bridge island forest signal engine pattern model answer sample token stream
network server client gateway message request response record value order layer branch
center circle corner detail energy figure focus frame image input output limit method notice
object option page plan price range report rule scale season series shape source space speed
square step structure style surface test theory title track trade travel unit version voice
weather wheel winter yellow green blue red orange purple silver golden quiet bright simple
quick steady gentle careful calm clear early final fresh happy honest large little modern
narrow open plain rapid ready small smooth strong sudden tall warm wide young
"""
_WORDS = tuple(_WORD_TEXT.split())


@functools.cache
def vocabulary() -> tuple[str, ...]:
    """Words with a leading space, each exactly one token."""
    enc = encoding()
    words = tuple(" " + word for word in _WORDS if len(enc.encode_ordinary(" " + word)) == 1)
    if len(words) < 64:  # a broken tokenizer install, not a condition to limp along with
        raise RuntimeError(f"only {len(words)} single-token words under {ENCODING_NAME}")
    return words


@functools.cache
def openers() -> tuple[str, ...]:
    """Capitalised words without a leading space, each exactly one token: a sentence start."""
    enc = encoding()
    return tuple(word.capitalize() for word in _WORDS if len(enc.encode_ordinary(word.capitalize())) == 1)


def token_pieces(text: str) -> tuple[str, ...]:
    """Split ``text`` into its tokens' text, one piece per token.

    A token may end inside a multi-byte UTF-8 character; such a token is merged
    with the following ones until the bytes decode, so the pieces always join
    back to ``text`` (and there are then slightly fewer pieces than tokens).
    """
    enc = encoding()
    pieces: list[str] = []
    pending = b""
    for token in enc.encode_ordinary(text):
        pending += enc.decode_single_token_bytes(token)
        try:
            pieces.append(pending.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        pending = b""
    if pending:
        pieces.append(pending.decode("utf-8", errors="replace"))
    return tuple(pieces)
