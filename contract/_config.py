"""The target of a conformance run: where it is, how to authenticate, what it claims.

Settings come from a YAML file (``--config``) and/or command-line flags (flags
win). Keys are never in the file: it names the environment variables that hold
them. Only loopback targets are accepted: gateproof never sends traffic anywhere
else.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateproof.contract.checks import Profile, Requirement

__all__ = ["ConfigError", "TargetConfig", "is_loopback_url", "load_target_config"]


class ConfigError(ValueError):
    """The settings are unusable; the message says which one and why."""


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is 127.0.0.0/8, ::1 or localhost."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class TargetConfig:
    """Everything the suite needs to know about one target."""

    base_url: str
    api_key_env: str = "GATEPROOF_API_KEY"
    profile: Profile = Profile.EDGEE
    name: str = "target"
    #: the model id the scenarios use, per provider author; "default" is the one most scenarios use
    models: dict[str, str] = field(default_factory=lambda: {"default": "openai/gpt-4o"})
    #: a key the target knows but refuses (403), and a restricted key with a model it may not use
    inactive_key_env: str | None = None
    restricted_key_env: str | None = None
    restricted_model: str | None = None
    #: base URL of the gateproof mock provider the target forwards to (enables the journal checks)
    mock_url: str | None = None
    timeout_s: float = 30.0
    #: examples per operation and generation mode in the property layer
    property_examples: int = 100
    seed: int = 20261125

    @property
    def model(self) -> str:
        return self.models.get("default") or next(iter(self.models.values()))

    def api_key(self) -> str:
        value = os.environ.get(self.api_key_env, "")
        if not value:
            raise ConfigError(f"environment variable {self.api_key_env} (the target's API key) is not set")
        return value

    def optional_key(self, env: str | None) -> str | None:
        return os.environ.get(env) or None if env else None

    def satisfied(self) -> frozenset[Requirement]:
        """The requirements this target meets."""
        met: set[Requirement] = set()
        if self.mock_url:
            met.add(Requirement.MOCK_JOURNAL)
        if self.optional_key(self.inactive_key_env) or (
            self.optional_key(self.restricted_key_env) and self.restricted_model
        ):
            met.add(Requirement.FORBIDDEN_KEY)
        return frozenset(met)

    def validate(self) -> TargetConfig:
        for label, url in (("base URL", self.base_url), ("mock URL", self.mock_url)):
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"the {label} {url!r} is not an http(s) URL")
            if not is_loopback_url(url):
                raise ConfigError(
                    f"the {label} {url!r} is not on loopback; gateproof only sends traffic to "
                    "127.0.0.0/8, ::1 or localhost"
                )
        if self.timeout_s <= 0:
            raise ConfigError("timeout_s must be positive")
        if self.property_examples < 1:
            raise ConfigError("property.max_examples must be at least 1")
        return self


def _get(data: dict[str, Any], *path: str) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def load_target_config(path: Path | None, **overrides: Any) -> TargetConfig:
    """Read a YAML config (if given) and apply command-line overrides (None means "not given")."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config {path} must be a mapping")
        data = loaded or {}
    settings: dict[str, Any] = {}
    mapping = {
        "base_url": ("target", "base_url"),
        "api_key_env": ("target", "api_key_env"),
        "profile": ("target", "profile"),
        "name": ("target", "name"),
        "inactive_key_env": ("forbidden", "inactive_key_env"),
        "restricted_key_env": ("forbidden", "restricted_key_env"),
        "restricted_model": ("forbidden", "restricted_model"),
        "mock_url": ("mock", "url"),
        "timeout_s": ("timeout_s",),
        "property_examples": ("property", "max_examples"),
        "seed": ("property", "seed"),
    }
    for field_name, key_path in mapping.items():
        value = _get(data, *key_path)
        if value is not None:
            settings[field_name] = value
    models = _get(data, "models")
    if models is not None:
        if not isinstance(models, dict) or not all(isinstance(v, str) for v in models.values()):
            raise ConfigError("models must map a name (e.g. default, openai) to a model id")
        settings["models"] = dict(models)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if "base_url" not in settings:
        raise ConfigError("no base URL: pass --base-url or set target.base_url in the config")
    if "profile" in settings:
        try:
            settings["profile"] = Profile(settings["profile"])
        except ValueError:
            known = ", ".join(p.value for p in Profile)
            raise ConfigError(f"unknown profile {settings['profile']!r} (known: {known})") from None
    settings["base_url"] = str(settings["base_url"]).rstrip("/")
    try:
        config = TargetConfig(**settings)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    return replace(config).validate()
