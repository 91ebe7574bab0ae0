"""A bad config value is exit 2 naming the key, never a traceback; a good one still loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateproof.contract import ConfigError, load_target_config
from gateproof.contract.checks import Profile

BASE = "target: {base_url: 'http://127.0.0.1:9/v1'}\n"

#: (config text, what the error must name); each is one wrong key among good ones
BAD = {
    "timeout-not-a-number": (BASE + "timeout_s: abc\n", "timeout_s"),
    "timeout-bool": (BASE + "timeout_s: true\n", "timeout_s"),
    "timeout-infinite": (BASE + "timeout_s: .inf\n", "timeout_s"),
    "timeout-zero": (BASE + "timeout_s: 0\n", "timeout_s"),
    "max-examples-word": (BASE + "property: {max_examples: many}\n", "property.max_examples"),
    "max-examples-float": (BASE + "property: {max_examples: 2.5}\n", "property.max_examples"),
    "max-examples-zero": (BASE + "property: {max_examples: 0}\n", "property.max_examples"),
    "seed-word": (BASE + "property: {seed: lucky}\n", "property.seed"),
    "api-key-env-int": (
        "target: {base_url: 'http://127.0.0.1:9/v1', api_key_env: 5}\n",
        "target.api_key_env",
    ),
    "api-key-env-not-a-name": (
        "target: {base_url: 'http://127.0.0.1:9/v1', api_key_env: 'A=B'}\n",
        "api_key_env",
    ),
    "base-url-list": ("target: {base_url: [1, 2]}\n", "target.base_url"),
    "base-url-bad-port": ("target: {base_url: 'http://127.0.0.1:abc/v1'}\n", "base URL"),
    "profile-int": ("target: {base_url: 'http://127.0.0.1:9/v1', profile: 3}\n", "target.profile"),
    "name-mapping": ("target: {base_url: 'http://127.0.0.1:9/v1', name: {a: 1}}\n", "target.name"),
    "target-not-a-mapping": ("target: 5\n", "target"),
    "section-list": (BASE + "property: [1, 2]\n", "property"),
    "models-list": (BASE + "models: [openai/gpt-4o]\n", "models"),
    "models-empty": (BASE + "models: {}\n", "models"),
    "models-int-value": (BASE + "models: {default: 5}\n", "models"),
    "inactive-env-int": (BASE + "forbidden: {inactive_key_env: 7}\n", "forbidden.inactive_key_env"),
    "restricted-model-list": (BASE + "forbidden: {restricted_model: [a]}\n", "forbidden.restricted_model"),
    "mock-url-int": (BASE + "mock: {url: 8081}\n", "mock.url"),
    "upstream-env-bool": (BASE + "mock: {upstream_key_env: false}\n", "mock.upstream_key_env"),
    "unknown-top-key": (BASE + "timeout: 5\n", "timeout"),
    "unknown-nested-key": (BASE + "property: {examples: 5}\n", "property.examples"),
    "top-level-list": ("- 1\n- 2\n", "mapping"),
    "extra-headers-list": (BASE.replace("}", ", extra_headers: [a]}"), "target.extra_headers"),
    "extra-headers-int-value": (BASE.replace("}", ", extra_headers: {X-A: 5}}"), "target.extra_headers"),
    "extra-header-bad-name": (BASE.replace("}", ", extra_headers: {'X A': v}}"), "extra_headers"),
    "extra-header-newline": (BASE.replace("}", ', extra_headers: {X-A: "a\\nb"}}'), "extra_headers"),
    "extra-header-authorization": (
        BASE.replace("}", ", extra_headers: {Authorization: x}}"),
        "Authorization",
    ),
    "key-passthrough-word": (BASE.replace("}", ", key_passthrough: yes please}"), "target.key_passthrough"),
    "auth-required-int": (BASE.replace("}", ", auth_required: 0}"), "target.auth_required"),
    "models-unknown-key": (BASE + "models: {openai: openai/gpt-4o}\n", "chat_basic"),
    "upstream-models-list": (BASE + "upstream_models: [gpt-4o]\n", "upstream_models"),
    "upstream-models-empty-value": (BASE + "upstream_models: {fast: ''}\n", "upstream_models"),
    "unknown-target-key": (BASE.replace("}", ", headers: {a: b}}"), "extra_headers"),
    "not-yaml": ("target: {base_url: [\n", "YAML"),
}


@pytest.mark.parametrize(("text", "named"), list(BAD.values()), ids=list(BAD))
def test_a_wrong_value_is_a_config_error_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "target.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_target_config(path)
    assert named in str(raised.value)


def test_invalid_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "target.yaml"
    path.write_bytes(BASE.encode() + b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_target_config(path)


def test_every_key_of_a_good_config_is_read(tmp_path: Path) -> None:
    path = tmp_path / "target.yaml"
    path.write_text(
        "target: {base_url: 'http://127.0.0.1:9/v1/', api_key_env: MY_KEY, profile: openai-core, name: mine}\n"
        "models: {default: openai/gpt-4o-mini}\n"
        "forbidden: {inactive_key_env: MY_INACTIVE, restricted_key_env: MY_RESTRICTED, restricted_model: openai/x}\n"
        "mock: {url: 'http://127.0.0.1:8081', upstream_key_env: MY_UPSTREAM}\n"
        "property: {max_examples: 7, seed: 42}\n"
        "timeout_s: 2\n"
    )
    config = load_target_config(path, name="flag wins")
    assert (config.base_url, config.api_key_env, config.profile, config.name) == (
        "http://127.0.0.1:9/v1",
        "MY_KEY",
        Profile.OPENAI_CORE,
        "flag wins",
    )
    assert config.model == "openai/gpt-4o-mini"
    assert (config.inactive_key_env, config.restricted_key_env, config.restricted_model) == (
        "MY_INACTIVE",
        "MY_RESTRICTED",
        "openai/x",
    )
    assert (config.mock_url, config.upstream_key_env) == ("http://127.0.0.1:8081", "MY_UPSTREAM")
    assert (config.property_examples, config.seed, config.timeout_s) == (7, 42, 2.0)


def test_secret_values_are_the_keys_that_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFG_TEST_KEY", "key-one-value")
    monkeypatch.setenv("CFG_TEST_UPSTREAM", "key-upstream-value")
    monkeypatch.delenv("CFG_TEST_INACTIVE", raising=False)
    config = load_target_config(
        None,
        base_url="http://127.0.0.1:9/v1",
        api_key_env="CFG_TEST_KEY",
        inactive_key_env="CFG_TEST_INACTIVE",
        upstream_key_env="CFG_TEST_UPSTREAM",
    )
    assert config.secret_values() == ["key-one-value", "key-upstream-value"]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ((BASE + "timeout_s: abc\n").encode(), "timeout_s"),
        ((BASE + "property: {max_examples: many}\n").encode(), "property.max_examples"),
        (b"target: {base_url: 'http://127.0.0.1:9/v1', api_key_env: 5}\n", "target.api_key_env"),
        (BASE.encode() + b"name: caf\xe9\n", "UTF-8"),
    ],
    ids=["timeout", "max-examples", "api-key-env", "invalid-utf8"],
)
def test_the_command_exits_2_naming_the_key(tmp_path: Path, content: bytes, named: str) -> None:
    path = tmp_path / "target.yaml"
    path.write_bytes(content)
    completed = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "contract", "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "GATEPROOF_API_KEY": "k"},
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert named in completed.stderr
    assert "Traceback" not in completed.stderr


def test_target_facts_are_read(tmp_path: Path) -> None:
    path = tmp_path / "target.yaml"
    path.write_text(
        "target: {base_url: 'http://127.0.0.1:9/v1', key_passthrough: true, auth_required: false,\n"
        "         extra_headers: {x-portkey-provider: openai, x-portkey-custom-host: 'http://127.0.0.1:8081/v1'}}\n"
        "models: {default: fast, tools_auto: smart}\n"
        "upstream_models: {fast: gpt-4o-mini, smart: gpt-4.1}\n"
    )
    config = load_target_config(path, model="fastest", extra_headers={"X-Extra": "1"})
    assert config.key_passthrough is True and config.auth_required is False
    assert config.extra_headers == {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": "http://127.0.0.1:8081/v1",
        "X-Extra": "1",
    }
    # --model sets the default only; a scenario's own model stays
    assert (config.model, config.model_for("tools_auto"), config.model_for("chat_basic")) == (
        "fastest",
        "smart",
        "fastest",
    )
    assert config.upstream_model_for("smart") == "gpt-4.1"
    assert config.upstream_model_for("fastest") is None


def test_the_defaults_declare_an_ordinary_gateway() -> None:
    config = load_target_config(None, base_url="http://127.0.0.1:9/v1")
    assert (config.key_passthrough, config.auth_required, config.extra_headers, config.upstream_models) == (
        False,
        True,
        {},
        {},
    )


def test_a_header_flag_must_be_name_colon_value() -> None:
    from gateproof.contract._config import parse_header

    assert parse_header("x-portkey-provider: openai") == ("x-portkey-provider", "openai")
    with pytest.raises(ConfigError, match="Name: value"):
        parse_header("no colon here")


def test_provider_routes_are_read_in_order_and_the_flag_replaces_them(tmp_path: Path) -> None:
    path = tmp_path / "gateproof.yaml"
    path.write_text(
        "target: {base_url: 'http://127.0.0.1:8080/v1'}\n"
        "providers: {openai: gpt-4o, anthropic: claude-haiku-4-5, gemini: gemini-2.5-flash}\n"
    )
    config = load_target_config(path)
    assert config.provider_routes() == (
        ("openai", "gpt-4o"),
        ("anthropic", "claude-haiku-4-5"),
        ("gemini", "gemini-2.5-flash"),
    )
    flagged = load_target_config(path, providers={"anthropic": "claude-sonnet-4-5"})
    assert flagged.provider_routes() == (("anthropic", "claude-sonnet-4-5"),)


def test_without_providers_there_is_one_openai_route_with_the_default_model() -> None:
    config = load_target_config(None, base_url="http://127.0.0.1:8080/v1", model="my/model")
    assert config.provider_routes() == (("openai", "my/model"),)


@pytest.mark.parametrize(
    ("providers", "named"),
    [({"cohere": "command-r"}, r"unknown dialect\(s\) cohere"), ({"anthropic": " "}, "non-empty model ids")],
)
def test_a_bad_provider_route_is_a_config_error(providers: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_target_config(None, base_url="http://127.0.0.1:8080/v1", providers=providers)


def test_a_provider_flag_must_be_dialect_equals_model() -> None:
    from gateproof.contract._config import parse_provider

    assert parse_provider("gemini=google/gemini-2.5-flash") == ("gemini", "google/gemini-2.5-flash")
    with pytest.raises(ConfigError, match="DIALECT=MODEL"):
        parse_provider("anthropic")
