"""Units of the provider rules: the catalogue, key policy and masking, bounded prompt counting."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateproof.mock_providers._catalogue import DEFAULT_CATALOGUE, CatalogueError, load_catalogue
from gateproof.mock_providers._credentials import KeyPolicy, mask_key
from gateproof.openapi._tokens import (
    CHUNK_CHARS,
    MAX_TOKEN_BYTES,
    PromptText,
    count_prompt,
    encoding,
    gather_prompt,
)


def test_the_longest_token_bound_holds_for_the_tokenizer() -> None:
    assert max(len(token) for token in encoding().token_byte_values()) <= MAX_TOKEN_BYTES


def test_chunked_counting_is_exact_on_text_with_word_breaks() -> None:
    text = ("Several ordinary words, some punctuation; numbers 12345 and caf\u00e9 too. " * 9000)[:600_000]
    assert len(text) > 4 * CHUNK_CHARS
    assert count_prompt(PromptText(0, (text,)))[0] == len(encoding().encode_ordinary(text))


def test_counting_stops_past_the_budget() -> None:
    prompt = PromptText(3, ("word " * 200_000,))
    tokens, complete = count_prompt(prompt, budget=1000)
    assert not complete and 1000 < tokens < 200_000
    floor, complete = count_prompt(PromptText(0, ("a" * (MAX_TOKEN_BYTES * 50),)), budget=10)
    assert (floor, complete) == (50, False)  # refused by the bound alone


def test_gathered_prompt_counts_as_before() -> None:
    messages = [
        {"role": "user", "content": "hi there", "name": "bob"},
        {"role": "assistant", "content": None},
    ]
    prompt = gather_prompt(messages)
    assert prompt.fixed == 3 + 3 + 3 + 1
    assert count_prompt(prompt) == (prompt.fixed + len(encoding().encode_ordinary("hi there")) + 3, True)


def test_key_policy() -> None:
    policy = KeyPolicy(keys=frozenset({"sk-one", "sk-two"}))
    assert policy.accepts("sk-two") and not policy.accepts("sk-three") and not policy.accepts(None)
    assert not KeyPolicy().accepts("anything")
    assert KeyPolicy(open=True).accepts(None)
    assert "sk-one" not in repr(policy)


@pytest.mark.parametrize("key", ["sk-proj-" + "Q" * 40 + "wxyz", "short", "sk-abcdefghijkl"])
def test_a_masked_key_never_shows_most_of_it(key: str) -> None:
    masked = mask_key(key)
    assert key not in masked and "***" in masked
    shown = sum(1 for c in masked if c != "*")
    assert shown <= len(key) // 3


def test_catalogue_file_overrides_and_extends(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  - {id: gpt-4o, context_window: 1000, max_output_tokens: 100}\n"
        "  - {id: local-llm, context_window: 4096, max_output_tokens: 512, created: 1}\n"
    )
    catalogue = load_catalogue(path)
    gpt = catalogue.get("gpt-4o")
    assert gpt is not None and gpt.context_window == 1000
    assert catalogue.get("local-llm") is not None and catalogue.get("gpt-4o-mini") is not None
    path.write_text("models: [{id: only, context_window: 10, max_output_tokens: 5}]\nreplace: true\n")
    assert [m.id for m in load_catalogue(path)] == ["only"]
    path.write_text("models: [{id: bad, context_window: 10, max_output_tokens: 50}]\n")
    with pytest.raises(CatalogueError, match="max_output_tokens"):
        load_catalogue(path)


def test_the_shipped_catalogue_has_the_models_the_project_uses() -> None:
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1"):
        assert DEFAULT_CATALOGUE.get(model) is not None
    gpt4o = DEFAULT_CATALOGUE.get("gpt-4o")
    assert gpt4o is not None and (gpt4o.context_window, gpt4o.max_output_tokens) == (128_000, 16_384)
    assert DEFAULT_CATALOGUE.get("openai/gpt-4o") is None
    fallback = DEFAULT_CATALOGUE.with_fallback(gpt4o).get("anything")
    assert fallback is not None and fallback.id == "anything"
