"""The config loader: the packaged default, secrets from the environment, and clear errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateproof.reference_gateway import ConfigError, default_config_path, load_config, parse_config

BASE: dict[str, Any] = {
    "providers": {
        "openai": {"dialect": "openai", "base_url": "http://127.0.0.1:8081/v1", "api_key_env": "UP"}
    },
    "models": [{"id": "openai/gpt-4o", "provider": "openai", "upstream_model": "gpt-4o", "created": 1}],
    "keys": [
        {"name": "default", "key_env": "K1"},
        {"name": "off", "key_env": "K2", "active": False},
        {"name": "narrow", "key": "literal-secret-value", "allowed_models": ["openai/gpt-4o"]},
    ],
}


def _with(change: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    document.update(change)
    return document


def test_the_packaged_default() -> None:
    env = {
        "GATEPROOF_API_KEY": "a",
        "GATEPROOF_INACTIVE_API_KEY": "b",
        "GATEPROOF_RESTRICTED_API_KEY": "c",
        "GATEPROOF_UPSTREAM_OPENAI_KEY": "up",
    }
    config = load_config(env=env)
    assert default_config_path().name == "default.yaml"
    assert config.limits.max_body_bytes == 4 * 1024 * 1024
    assert {"openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1"} <= set(config.models)
    assert {"anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5"} <= set(config.models)
    assert config.models["anthropic/claude-haiku-4-5"].upstream_model == "claude-haiku-4-5"
    assert config.providers["anthropic"].dialect == "anthropic"
    assert config.providers["anthropic"].api_key is None  # its variable is unset here
    assert config.models["openai/gpt-4o"].upstream_model == "gpt-4o"
    assert config.models["openai/gpt-4o"].owned_by == "openai"
    assert config.providers["openai"].api_key == "up"
    keys = {key.name: key for key in config.keys}
    assert keys["inactive"].active is False
    assert keys["restricted"].allowed_models == frozenset({"openai/gpt-4o-mini"})
    assert keys["default"].allowed_models is None


def test_a_key_whose_variable_is_unset_does_not_exist() -> None:
    config = parse_config(BASE, env={"K1": "one"})
    assert [key.name for key in config.keys] == ["default", "narrow"]
    assert config.providers["openai"].api_key is None


def test_secrets_stay_out_of_reprs() -> None:
    config = parse_config(BASE, env={"K1": "secret-one", "UP": "secret-up"})
    text = repr(config)
    assert "secret-one" not in text and "secret-up" not in text and "literal-secret-value" not in text


def test_upstream_override() -> None:
    config = parse_config(BASE, env={}).with_base_urls({"openai": "http://127.0.0.1:9999/v1/"})
    assert config.providers["openai"].base_url == "http://127.0.0.1:9999/v1"
    with pytest.raises(ConfigError, match="unknown provider 'anthropic'"):
        config.with_base_urls({"anthropic": "http://127.0.0.1:1"})
    with pytest.raises(ConfigError, match="not an http"):
        config.with_base_urls({"openai": "127.0.0.1:9999"})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/v1", "http://127.9.9.9:1", "http://LOCALHOST:1", "http://[::1]:1/v1"]
)
def test_loopback_upstreams_are_accepted(url: str) -> None:
    assert parse_config(BASE, env={}).with_base_urls({"openai": url}).providers["openai"].base_url


@pytest.mark.parametrize(
    "url", ["https://api.openai.com/v1", "http://10.0.0.1:8081/v1", "http://0.0.0.0:8081", "http://[::]:1"]
)
def test_an_upstream_off_loopback_is_refused(url: str) -> None:
    """The README promises loopback only: a real provider's address is refused, from flag or file."""
    with pytest.raises(ConfigError) as from_flag:
        parse_config(BASE, env={}).with_base_urls({"openai": url})
    assert str(from_flag.value).startswith("--upstream openai: ") and "is not on loopback" in str(
        from_flag.value
    )
    document = _with({"providers": {"openai": {"dialect": "openai", "base_url": url}}})
    with pytest.raises(ConfigError) as from_file:
        parse_config(document, source="gw.yaml", env={})
    assert str(from_file.value).startswith("gw.yaml: providers.openai.base_url: ")
    assert "is not on loopback" in str(from_file.value)


def test_request_limits() -> None:
    config = parse_config(_with({"limits": {"max_json_depth": 8, "max_messages": 50}}), env={})
    assert (config.limits.max_json_depth, config.limits.max_messages) == (8, 50)
    defaults = parse_config(BASE, env={}).limits
    assert (defaults.max_json_depth, defaults.max_messages) == (64, 10_000)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"limits": {"max_body_bytes": 0}}, "limits.max_body_bytes: must be at least 1"),
        ({"limits": {"max_body": 10}}, "limits.max_body: unknown field"),
        ({"limits": {"provider_timeout_s": "soon"}}, "limits.provider_timeout_s: must be a number"),
        ({"limits": {"max_json_depth": 1000}}, "limits.max_json_depth: must be at most 200"),
        ({"limits": {"max_json_depth": 1}}, "limits.max_json_depth: must be at least 2"),
        ({"limits": {"max_messages": 0}}, "limits.max_messages: must be at least 1"),
        ({"providers": {}}, "providers: must name at least one provider"),
        (
            {"providers": {"openai": {"dialect": "openai", "base_url": "ftp://x"}}},
            "providers.openai.base_url",
        ),
        ({"models": []}, "models: must list at least one model"),
        ({"models": [{"id": "gpt-4o", "provider": "openai", "created": 1}]}, "models[0].id: 'gpt-4o' is not"),
        ({"models": [{"id": "openai/x", "provider": "opnai", "created": 1}]}, "unknown provider 'opnai'"),
        ({"models": [{"id": "openai/x", "provider": "openai"}]}, "models[0].created: is required"),
        ({"models": BASE["models"] * 2}, "models[1].id: duplicate model id"),
        ({"keys": [{"name": "k"}]}, "keys[0]: needs key_env"),
        ({"keys": [{"name": "k", "key": "s", "key_env": "E"}]}, "either key_env or key"),
        (
            {"keys": [{"name": "k", "key": "s", "allowed_models": ["openai/nope"]}]},
            "unknown model 'openai/nope'",
        ),
        ({"keys": [{"name": "k", "key": "s", "active": "yes"}]}, "keys[0].active: must be true or false"),
        ({"keys": [{"name": "a", "key": "same"}, {"name": "b", "key": "same"}]}, "keys[1]: has the same key"),
        ({"extra": 1}, "extra: unknown field"),
    ],
)
def test_bad_configs_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_with(change), source="gw.yaml", env={})
    assert str(caught.value).startswith("gw.yaml: ")
    assert message in str(caught.value)


def test_errors_never_quote_a_secret() -> None:
    document = _with({"keys": [{"name": "k", "key": "super-secret-value", "active": "nope"}]})
    with pytest.raises(ConfigError) as caught:
        parse_config(document, env={})
    assert "super-secret-value" not in str(caught.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers: [\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML \(line"):
        load_config(broken)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(BASE))
    assert load_config(good, env={"K1": "x"}).source == "good.yaml"
