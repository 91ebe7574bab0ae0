"""The target of a conformance run: where it is, how to authenticate, what it claims.

Settings come from a YAML file (``--config``) and/or command-line flags (flags
win). Keys are never in the file: it names the environment variables that hold
them. Only loopback targets are accepted: gateproof never sends traffic anywhere
else.

Every key of the file is checked for its type before use, and an unknown key is an
error: a config is usually written once and then trusted, so a typo (``timeout:``
for ``timeout_s:``) or a wrong type (``max_examples: many``) must stop the run with
the key's name (exit 2), not be ignored or surface later as a traceback.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from gateproof.contract.checks import Profile, Requirement
from gateproof.openapi import CORRELATION_HEADER, DIALECT_NAMES

__all__ = [
    "TIMEOUT_NAMES",
    "ConfigError",
    "TargetConfig",
    "is_loopback_url",
    "load_target_config",
    "model_roles",
    "parse_header",
    "parse_provider",
]


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
    #: the model id each scenario sends: "default" for all of them, or a scenario's name for that one
    models: dict[str, str] = field(default_factory=lambda: {"default": "openai/gpt-4o"})
    #: the provider routes: mock dialect (openai, anthropic, gemini) -> the model id that reaches it
    #: through the target; the per-provider scenarios run once on each, in this order (the first
    #: keeps the plain scenario names). Empty: one route, ``openai`` with the default model.
    providers: dict[str, str] = field(default_factory=dict)
    #: the model the provider should receive for a model id sent (a target that maps aliases to
    #: configured provider models); ``upstream_model_unprefixed`` checks these
    upstream_models: dict[str, str] = field(default_factory=dict)
    #: a model's input price in USD per million tokens, as the target bills it: with it, a
    #: compression answer's cost_savings is checked against saved_tokens x price (D2)
    input_prices: dict[str, float] = field(default_factory=dict)
    #: headers sent on every request (a gateway that routes by header: x-portkey-provider, ...);
    #: their values are reported like any other request header, so never put a key here
    extra_headers: dict[str, str] = field(default_factory=dict)
    #: the target forwards the caller's key to the provider by design (a pass-through proxy)
    key_passthrough: bool = False
    #: False: the target runs without authentication by design (the auth scenarios then report
    #: one ``auth_enforced`` failure instead of judging the error bodies of answers that are not errors)
    auth_required: bool = True
    #: a key the target knows but refuses (403), and a restricted key with a model it may not use
    inactive_key_env: str | None = None
    restricted_key_env: str | None = None
    restricted_model: str | None = None
    #: base URL of the gateproof mock provider the target forwards to (enables the journal checks)
    mock_url: str | None = None
    #: the variable holding the key the target sends to its provider (the mock), when known: a
    #: target that quotes its upstream key in an error must not put it in a report either
    upstream_key_env: str | None = None
    #: the JSON-lines request log the target appends one line per request to (a path this machine
    #: can read): the tags checks find each request's line in it; None: the checks are not applicable
    request_log: str | None = None
    timeout_s: float = 30.0
    #: the provider timeouts the target declares (D46), by name (``TIMEOUT_NAMES``): the failure
    #: matrix stalls the provider one second longer than each; a row whose timeout is not declared
    #: is not applicable (a gateway that waits 60 s for a first byte must not cost CI 61 s)
    timeouts: dict[str, float] = field(default_factory=dict)
    #: a model id the target serves with a fallback route (``models[].fallbacks``, D44): the failure
    #: matrix fails its primary route and expects the fallback's answer; None: those cells are not
    #: applicable
    fallback_model: str | None = None
    #: examples per operation and generation mode in the property layer
    property_examples: int = 100
    seed: int = 20261125

    @property
    def model(self) -> str:
        return self.models.get("default") or _DEFAULT_MODEL

    def model_for(self, scenario: str) -> str:
        """The model id ``scenario`` sends (its own entry in ``models``, else the default)."""
        return self.models.get(scenario) or self.model

    def provider_routes(self) -> tuple[tuple[str, str], ...]:
        """(dialect, model id) of every provider route, the first one the primary."""
        if self.providers:
            return tuple(self.providers.items())
        return (("openai", self.model),)

    def upstream_model_for(self, model: str) -> str | None:
        """The model the provider should receive for ``model``, when the target declares one."""
        return self.upstream_models.get(model)

    def api_key(self) -> str:
        value = os.environ.get(self.api_key_env, "")
        if not value:
            raise ConfigError(f"environment variable {self.api_key_env} (the target's API key) is not set")
        return value

    def optional_key(self, env: str | None) -> str | None:
        return os.environ.get(env) or None if env else None

    def secret_values(self) -> list[str]:
        """Every key value this config makes known, to be scrubbed from everything the run writes."""
        envs = (self.api_key_env, self.inactive_key_env, self.restricted_key_env, self.upstream_key_env)
        return [value for value in (self.optional_key(env) for env in envs) if value]

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
        for label, env in (
            ("api_key_env", self.api_key_env),
            ("inactive_key_env", self.inactive_key_env),
            ("restricted_key_env", self.restricted_key_env),
            ("upstream_key_env", self.upstream_key_env),
        ):
            if env is not None and not _ENV_NAME.fullmatch(env):
                raise ConfigError(f"{label} {env!r} is not an environment variable name")
        if not self.models:
            raise ConfigError("models must name at least one model (e.g. default: openai/gpt-4o)")
        roles = model_roles()
        unknown = sorted(set(self.models) - roles)
        if unknown:
            raise ConfigError(
                f"models: unknown key(s) {', '.join(unknown)} (valid: default or a scenario name: "
                f"{', '.join(sorted(roles))})"
            )
        unknown = sorted(set(self.providers) - set(DIALECT_NAMES))
        if unknown:
            raise ConfigError(
                f"providers: unknown dialect(s) {', '.join(unknown)} (known: {', '.join(DIALECT_NAMES)})"
            )
        for label, mapping in (
            ("models", self.models),
            ("upstream_models", self.upstream_models),
            ("providers", self.providers),
        ):
            for key, value in mapping.items():
                if not (isinstance(key, str) and key and isinstance(value, str) and value.strip()):
                    raise ConfigError(f"{label} must map names to non-empty model ids ({key!r}: {value!r})")
        for key, price in self.input_prices.items():
            if isinstance(price, bool) or not isinstance(price, int | float) or not 0 <= price < math.inf:
                raise ConfigError(f"input_prices: {key!r} must be a price >= 0 (USD per million tokens)")
        for name, value in self.extra_headers.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise ConfigError(f"extra_headers: {name!r} is not an HTTP header name")
            if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
                raise ConfigError(f"extra_headers: the value of {name} must be one line of text")
            if name.lower() in _OWN_HEADERS:
                raise ConfigError(
                    f"extra_headers: {name} is set by gateproof itself (the key comes from api_key_env)"
                )
        for label, url in (("base URL", self.base_url), ("mock URL", self.mock_url)):
            if url is None:
                continue
            try:
                parts = urlsplit(url)
                parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
            except ValueError as exc:
                raise ConfigError(f"the {label} {url!r} is not a valid URL: {exc}") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"the {label} {url!r} is not an http(s) URL")
            if not is_loopback_url(url):
                raise ConfigError(
                    f"the {label} {url!r} is not on loopback; gateproof only sends traffic to "
                    "127.0.0.0/8, ::1 or localhost"
                )
        if not math.isfinite(self.timeout_s) or self.timeout_s <= 0:
            raise ConfigError("timeout_s must be a positive number of seconds")
        for name, seconds in self.timeouts.items():
            if name not in TIMEOUT_NAMES:
                raise ConfigError(f"timeouts: unknown timeout {name!r} (known: {', '.join(TIMEOUT_NAMES)})")
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not 0 < seconds < math.inf
            ):
                raise ConfigError(f"timeouts: {name} must be a positive number of seconds")
            if seconds + 1 >= self.timeout_s:
                raise ConfigError(
                    f"timeouts: {name} ({seconds:g} s) plus the one second the suite stalls beyond it must "
                    f"stay under timeout_s ({self.timeout_s:g} s)"
                )
        if self.fallback_model is not None and not self.fallback_model.strip():
            raise ConfigError("fallback_model must be a model id")
        if self.property_examples < 1:
            raise ConfigError("property.max_examples must be at least 1")
        return self


#: a portable environment variable name (no "=", no NUL, not empty)
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: an HTTP field name (RFC 9110 token)
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: headers gateproof sets on every request; a config must not replace them
_OWN_HEADERS: Final = frozenset(
    {"authorization", "content-type", "content-length", "host", CORRELATION_HEADER}
)
_DEFAULT_MODEL: Final = "openai/gpt-4o"
#: the timeouts a target may declare (``timeouts:``, D46): to the provider's status line and headers,
#: and between two events of a stream
TIMEOUT_NAMES: Final = ("first_byte_s", "stream_idle_s")


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` (the form of ``--header``) as (name, value)."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ConfigError(f"--header {text!r} is not 'Name: value'")
    return name.strip(), value.strip()


def parse_provider(text: str) -> tuple[str, str]:
    """``"anthropic=anthropic/claude-haiku-4-5"`` (the form of ``--provider``) as (dialect, model id)."""
    dialect, equals, model = text.partition("=")
    if not equals or not dialect.strip() or not model.strip():
        raise ConfigError(
            f"--provider {text!r} is not DIALECT=MODEL (e.g. anthropic=anthropic/claude-haiku-4-5)"
        )
    return dialect.strip(), model.strip()


def model_roles() -> frozenset[str]:
    """The keys ``models`` accepts: ``default`` and every scenario name."""
    from gateproof.contract._scenarios import SCENARIOS

    return frozenset({"default", *(scenario.name for scenario in SCENARIOS)})


@dataclass(frozen=True)
class _Key:
    """One key of the config file: where it is, which TargetConfig field it sets, what type it has."""

    path: tuple[str, ...]
    field: str
    kind: str  # "str", "int", "number", "bool", "strings"/"numbers" (a mapping of strings to those)

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


_KEYS: Final = (
    _Key(("target", "base_url"), "base_url", "str"),
    _Key(("target", "api_key_env"), "api_key_env", "str"),
    _Key(("target", "profile"), "profile", "str"),
    _Key(("target", "name"), "name", "str"),
    _Key(("target", "extra_headers"), "extra_headers", "strings"),
    _Key(("target", "key_passthrough"), "key_passthrough", "bool"),
    _Key(("target", "auth_required"), "auth_required", "bool"),
    _Key(("forbidden", "inactive_key_env"), "inactive_key_env", "str"),
    _Key(("forbidden", "restricted_key_env"), "restricted_key_env", "str"),
    _Key(("forbidden", "restricted_model"), "restricted_model", "str"),
    _Key(("mock", "url"), "mock_url", "str"),
    _Key(("mock", "upstream_key_env"), "upstream_key_env", "str"),
    _Key(("target", "request_log"), "request_log", "str"),
    _Key(("timeout_s",), "timeout_s", "number"),
    _Key(("property", "max_examples"), "property_examples", "int"),
    _Key(("property", "seed"), "seed", "int"),
    _Key(("models",), "models", "strings"),
    _Key(("upstream_models",), "upstream_models", "strings"),
    _Key(("providers",), "providers", "strings"),
    _Key(("input_prices",), "input_prices", "numbers"),
    _Key(("timeouts",), "timeouts", "numbers"),
    _Key(("fallback_model",), "fallback_model", "str"),
)
_SECTIONS: Final = frozenset(key.path[0] for key in _KEYS if len(key.path) > 1)
_KINDS: Final = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "strings": "a mapping of names to strings",
    "numbers": "a mapping of names to numbers",
}


def _typed(key: _Key, value: Any) -> Any:
    """``value`` if it has the key's type (a bool is not a number, though Python says it is an int)."""
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "strings": isinstance(value, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()),
        "numbers": isinstance(value, dict)
        and all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in value.items()
        ),
    }[key.kind]
    if not ok:
        raise ConfigError(f"{key.dotted} must be {_KINDS[key.kind]}, not {_describe(value)}")
    if key.kind == "number":
        return float(value)
    if key.kind == "numbers":
        return {k: float(v) for k, v in value.items()}
    return dict(value) if key.kind == "strings" else value


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config {path} must be a mapping, not {_describe(loaded)}")
    return loaded


def _from_file(data: dict[str, Any]) -> dict[str, Any]:
    """The TargetConfig settings a config file holds, every key checked for its name and type."""
    known_top = _SECTIONS | {key.path[0] for key in _KEYS}
    for name in data:
        if name not in known_top:
            raise ConfigError(f"unknown config key {name!r} (known: {', '.join(sorted(known_top))})")
    for section in _SECTIONS:
        if section in data and data[section] is not None and not isinstance(data[section], dict):
            raise ConfigError(f"{section} must be a mapping, not {_describe(data[section])}")
        known = sorted(key.path[1] for key in _KEYS if key.path[0] == section)
        for name in data.get(section) or {}:
            if name not in known:
                raise ConfigError(
                    f"unknown config key {section}.{name} (known in {section}: {', '.join(known)})"
                )
    settings: dict[str, Any] = {}
    for key in _KEYS:
        node: Any = data
        for part in key.path:
            node = (node or {}).get(part)
        if node is not None:
            settings[key.field] = _typed(key, node)
    return settings


def load_target_config(path: Path | None, **overrides: Any) -> TargetConfig:
    """Read a YAML config (if given) and apply command-line overrides (None means "not given")."""
    settings = _from_file(_read(path)) if path is not None else {}
    model = overrides.pop("model", None)
    headers = overrides.pop("extra_headers", None)
    providers = overrides.pop("providers", None)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if model is not None:  # --model sets the default; per-scenario models of the file stay
        settings["models"] = {**settings.get("models", {}), "default": model}
    if providers:  # --provider replaces the file's routes: the flags name every route to run
        settings["providers"] = dict(providers)
    if headers:  # --header adds to (and wins over) the file's headers
        settings["extra_headers"] = {**settings.get("extra_headers", {}), **headers}
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
