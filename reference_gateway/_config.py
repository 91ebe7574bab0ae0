"""The gateway's configuration: a YAML file turned into frozen dataclasses, checked up front.

A typo in a config file should stop the gateway at start-up with a message that names
the file and the field (``gateway.yaml: models[2].provider: unknown provider 'opnai'``),
not surface later as a 500. So every section is read by small typed readers that
reject unknown keys and wrong types.

Secrets are resolved from the environment when the config is loaded and are kept out
of every ``repr``: a key entry names the variable (``key_env``) or, for throwaway
configs, holds the value itself (``key``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateproof.reference_gateway._edge_tools import EDGE_TOOL_NAMES
from gateproof.reference_gateway._loopback import LOOPBACK_WORDS, is_loopback_host

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ConfigError",
    "GatewayConfig",
    "KeyConfig",
    "Limits",
    "ModelConfig",
    "ProviderConfig",
    "default_config_path",
    "load_config",
    "parse_config",
]

DEFAULT_CONFIG_FILE = "default.yaml"

#: the deepest ``limits.max_json_depth`` a config may ask for: everything after parsing (the schema
#: validators, the upstream copy, the encoder) recurses once or more per level, and Python's
#: recursion limit is 1000 frames, so a depth well below it is the most that stays a clean 400
MAX_JSON_DEPTH_CEILING = 200


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to every request.

    ``max_json_depth`` and ``max_messages`` bound the work one body can cost before it is
    refused: a 4 MiB body could otherwise nest thousands of levels deep (a recursion crash
    in whatever walks it next) or carry ~90k tiny messages to validate and copy (D6).
    """

    max_body_bytes: int = 4 * 1024 * 1024
    max_json_depth: int = 64
    max_messages: int = 10_000
    provider_timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    #: request sent -> the provider's status line and headers (D46)
    first_byte_timeout_s: float = 60.0
    #: one upstream stream event -> the next (D46)
    stream_idle_timeout_s: float = 30.0
    max_upstream_connections: int = 512


@dataclass(frozen=True)
class ProviderConfig:
    """One upstream provider: which dialect it speaks, where, and with which credential."""

    name: str
    dialect: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ModelConfig:
    """One public model id and where it is served."""

    id: str
    provider: str
    upstream_model: str
    created: int
    owned_by: str
    input_price_per_mtok: float = 0.0
    output_price_per_mtok: float = 0.0
    #: model ids tried, in order, when this model's route fails before the first byte (D44)
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyConfig:
    """One client API key. ``allowed_models`` None means every model.

    ``compression`` is the key's default for token compression, used when a request does
    not say (D30): the console setting of a hosted gateway.
    """

    name: str
    secret: str = field(repr=False)
    active: bool = True
    allowed_models: frozenset[str] | None = None
    compression: bool = False
    #: Edge Tools this key may ask for in ``edgee_tool_ids`` (D35); None means every one
    edge_tools: frozenset[str] | None = None
    #: Edge Tools injected into every request of this key that names none (D35)
    hydrated_edge_tools: tuple[str, ...] = ()
    #: requests of this key served at once; one more is 429 ``concurrency_limit_exceeded`` (D47)
    max_concurrent: int | None = None


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs to serve requests."""

    limits: Limits
    providers: Mapping[str, ProviderConfig]
    models: Mapping[str, ModelConfig]
    keys: tuple[KeyConfig, ...]
    source: str = "<config>"
    #: where the structured request log (JSON lines, D34) is appended; None writes none
    request_log: str | None = None

    def with_base_urls(self, overrides: Mapping[str, str]) -> GatewayConfig:
        """A copy with some providers' ``base_url`` replaced (``--upstream NAME=URL``)."""
        providers = dict(self.providers)
        for name, url in overrides.items():
            if name not in providers:
                known = ", ".join(sorted(providers)) or "none"
                raise ConfigError(f"--upstream {name}=...: unknown provider {name!r} (configured: {known})")
            providers[name] = replace(providers[name], base_url=_check_url(url, f"--upstream {name}"))
        return replace(self, providers=providers)

    def with_limits(self, overrides: Mapping[str, str]) -> GatewayConfig:
        """A copy with some ``limits`` replaced (``--limit NAME=VALUE``), checked as the config's own are."""
        if not overrides:
            return self
        entries: dict[str, Any] = {f: getattr(self.limits, f) for f in Limits.__dataclass_fields__}
        for name, text in overrides.items():
            if name not in entries:
                known = ", ".join(sorted(entries))
                raise ConfigError(f"--limit {name}=...: unknown limit {name!r} (known: {known})")
            try:
                entries[name] = yaml.safe_load(text)
            except yaml.YAMLError:
                entries[name] = text
        return replace(self, limits=_limits(_Reader("--limit", ""), entries))

    def with_request_log(self, path: str | None) -> GatewayConfig:
        """A copy writing its request log to ``path`` (``--request-log``); None keeps the config's."""
        return self if path is None else replace(self, request_log=path)


def default_config_path() -> Path:
    """The configuration shipped inside the package."""
    return Path(str(resources.files("gateproof.reference_gateway").joinpath(DEFAULT_CONFIG_FILE)))


def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and check a YAML config file (the packaged default when ``path`` is None)."""
    path = Path(path) if path is not None else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror or exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{path.name}: not valid YAML{line}") from None
    return parse_config(document, source=path.name, env=os.environ if env is None else env)


def parse_config(document: Any, *, source: str = "<config>", env: Mapping[str, str]) -> GatewayConfig:
    """Check a parsed document and build the config; secrets come from ``env``."""
    root = _Reader(source, "")
    top = root.mapping(document, allowed={"limits", "providers", "models", "keys", "request_log"})
    limits = _limits(root.child("limits"), top.get("limits", {}))
    providers = _providers(root.child("providers"), top.get("providers"), env)
    models = _models(root.child("models"), top.get("models"), providers)
    keys = _keys(root.child("keys"), top.get("keys", []), models, env)
    request_log = top.get("request_log")
    if request_log is not None:
        request_log = root.child("request_log").string(request_log)
    return GatewayConfig(
        limits=limits, providers=providers, models=models, keys=keys, source=source, request_log=request_log
    )


# -- section readers ------------------------------------------------------------------------------


def _limits(at: _Reader, raw: Any) -> Limits:
    entries = at.mapping(raw, allowed={f for f in Limits.__dataclass_fields__})
    default = Limits()
    return Limits(
        max_body_bytes=at.child("max_body_bytes").integer(
            entries.get("max_body_bytes", default.max_body_bytes), minimum=1
        ),
        max_json_depth=at.child("max_json_depth").integer(
            entries.get("max_json_depth", default.max_json_depth), minimum=2, maximum=MAX_JSON_DEPTH_CEILING
        ),
        max_messages=at.child("max_messages").integer(
            entries.get("max_messages", default.max_messages), minimum=1
        ),
        provider_timeout_s=at.child("provider_timeout_s").number(
            entries.get("provider_timeout_s", default.provider_timeout_s), positive=True
        ),
        connect_timeout_s=at.child("connect_timeout_s").number(
            entries.get("connect_timeout_s", default.connect_timeout_s), positive=True
        ),
        first_byte_timeout_s=at.child("first_byte_timeout_s").number(
            entries.get("first_byte_timeout_s", default.first_byte_timeout_s), positive=True
        ),
        stream_idle_timeout_s=at.child("stream_idle_timeout_s").number(
            entries.get("stream_idle_timeout_s", default.stream_idle_timeout_s), positive=True
        ),
        max_upstream_connections=at.child("max_upstream_connections").integer(
            entries.get("max_upstream_connections", default.max_upstream_connections), minimum=1
        ),
    )


def _providers(at: _Reader, raw: Any, env: Mapping[str, str]) -> dict[str, ProviderConfig]:
    if raw is None:
        raise at.error("is required (at least one provider)")
    entries = at.mapping(raw)
    if not entries:
        raise at.error("must name at least one provider")
    providers: dict[str, ProviderConfig] = {}
    for name, body in entries.items():
        here = at.child(str(name))
        fields = here.mapping(body, allowed={"dialect", "base_url", "api_key_env", "api_key"})
        api_key = _secret(here, fields, env_field="api_key_env", literal_field="api_key", env=env)
        providers[str(name)] = ProviderConfig(
            name=str(name),
            dialect=here.child("dialect").string(fields.get("dialect")),
            base_url=_check_url(
                here.child("base_url").string(fields.get("base_url")), here.child("base_url")
            ),
            api_key=api_key,
        )
    return providers


def _models(at: _Reader, raw: Any, providers: Mapping[str, ProviderConfig]) -> dict[str, ModelConfig]:
    if raw is None:
        raise at.error("is required (at least one model)")
    models: dict[str, ModelConfig] = {}
    allowed = {"id", "provider", "upstream_model", "created", "owned_by"}
    allowed |= {"input_price_per_mtok", "output_price_per_mtok", "fallbacks"}
    listed_fallbacks: dict[str, tuple[_Reader, list[Any]]] = {}
    for index, body in enumerate(at.sequence(raw)):
        here = at.item(index)
        fields = here.mapping(body, allowed=allowed)
        model_id = here.child("id").string(fields.get("id"))
        author, _, name = model_id.partition("/")
        if not author or not name:
            raise here.child("id").error(f"{model_id!r} is not of the form {{author}}/{{model}}")
        if model_id in models:
            raise here.child("id").error(f"duplicate model id {model_id!r}")
        provider = here.child("provider").string(fields.get("provider"))
        if provider not in providers:
            known = ", ".join(sorted(providers))
            raise here.child("provider").error(f"unknown provider {provider!r} (configured: {known})")
        models[model_id] = ModelConfig(
            id=model_id,
            provider=provider,
            upstream_model=here.child("upstream_model").string(fields.get("upstream_model", name)),
            created=here.child("created").integer(fields.get("created"), minimum=0),
            owned_by=here.child("owned_by").string(fields.get("owned_by", author)),
            input_price_per_mtok=here.child("input_price_per_mtok").number(
                fields.get("input_price_per_mtok", 0.0)
            ),
            output_price_per_mtok=here.child("output_price_per_mtok").number(
                fields.get("output_price_per_mtok", 0.0)
            ),
        )
        if "fallbacks" in fields:
            listed = here.child("fallbacks")
            listed_fallbacks[model_id] = (listed, listed.sequence(fields["fallbacks"]))
    if not models:
        raise at.error("must list at least one model")
    for model_id, (listed, values) in listed_fallbacks.items():
        models[model_id] = replace(models[model_id], fallbacks=_fallbacks(listed, values, model_id, models))
    return models


def _fallbacks(
    at: _Reader, values: list[Any], model_id: str, models: Mapping[str, ModelConfig]
) -> tuple[str, ...]:
    """A model's fallbacks (D44): known model ids, not the model itself, each once.

    The list is flat: a fallback's own ``fallbacks`` are not followed, so no chain or cycle
    can form and one client request costs at most ``1 + len(fallbacks)`` routes.
    """
    read: list[str] = []
    for i, value in enumerate(values):
        fallback = at.item(i).string(value)
        if fallback not in models:
            raise at.item(i).error(f"unknown model {fallback!r}")
        if fallback == model_id:
            raise at.item(i).error(f"{model_id!r} cannot be its own fallback")
        if fallback in read:
            raise at.item(i).error(f"{fallback!r} is listed twice")
        read.append(fallback)
    return tuple(read)


def _keys(
    at: _Reader, raw: Any, models: Mapping[str, ModelConfig], env: Mapping[str, str]
) -> tuple[KeyConfig, ...]:
    keys: list[KeyConfig] = []
    names: set[str] = set()
    secrets: set[str] = set()
    for index, body in enumerate(at.sequence(raw)):
        here = at.item(index)
        fields = here.mapping(
            body,
            allowed={
                "name",
                "key_env",
                "key",
                "active",
                "allowed_models",
                "compression",
                "edge_tools",
                "hydrated_edge_tools",
                "max_concurrent",
            },
        )
        name = here.child("name").string(fields.get("name"))
        if name in names:
            raise here.child("name").error(f"duplicate key name {name!r}")
        names.add(name)
        if "key_env" not in fields and "key" not in fields:
            raise here.error("needs key_env (an environment variable) or key")
        secret = _secret(here, fields, env_field="key_env", literal_field="key", env=env)
        active = here.child("active").boolean(fields.get("active", True))
        compression = here.child("compression").boolean(fields.get("compression", False))
        edge_tools, hydrated = _edge_tools(here, fields)
        max_concurrent: int | None = None
        if "max_concurrent" in fields:
            max_concurrent = here.child("max_concurrent").integer(fields["max_concurrent"], minimum=1)
        allowed_models: frozenset[str] | None = None
        if "allowed_models" in fields:
            listed = here.child("allowed_models")
            allowed_ids = [
                listed.item(i).string(v) for i, v in enumerate(listed.sequence(fields["allowed_models"]))
            ]
            for i, model_id in enumerate(allowed_ids):
                if model_id not in models:
                    raise listed.item(i).error(f"unknown model {model_id!r}")
            allowed_models = frozenset(allowed_ids)
        if secret is None:
            continue  # the variable is unset: this key does not exist in this process
        if secret in secrets:
            raise here.error("has the same key value as another entry")
        secrets.add(secret)
        keys.append(
            KeyConfig(
                name=name,
                secret=secret,
                active=active,
                allowed_models=allowed_models,
                compression=compression,
                edge_tools=edge_tools,
                hydrated_edge_tools=hydrated,
                max_concurrent=max_concurrent,
            )
        )
    return tuple(keys)


def _edge_tools(at: _Reader, fields: Mapping[str, Any]) -> tuple[frozenset[str] | None, tuple[str, ...]]:
    """``edge_tools`` (activated; absent: every Edge Tool) and ``hydrated_edge_tools`` (a subset of them)."""

    def names(key: str) -> list[str]:
        listed = at.child(key)
        read = [listed.item(i).string(v) for i, v in enumerate(listed.sequence(fields[key]))]
        for i, name in enumerate(read):
            if name not in EDGE_TOOL_NAMES:
                raise listed.item(i).error(
                    f"unknown Edge Tool {name!r} (known: {', '.join(EDGE_TOOL_NAMES)})"
                )
        return read

    activated = frozenset(names("edge_tools")) if "edge_tools" in fields else None
    hydrated = tuple(dict.fromkeys(names("hydrated_edge_tools"))) if "hydrated_edge_tools" in fields else ()
    for i, name in enumerate(hydrated):
        if activated is not None and name not in activated:
            raise at.child("hydrated_edge_tools").item(i).error(f"{name!r} is not in this key's edge_tools")
    return activated, hydrated


def _secret(
    at: _Reader, fields: Mapping[str, Any], *, env_field: str, literal_field: str, env: Mapping[str, str]
) -> str | None:
    if env_field in fields and literal_field in fields:
        raise at.error(f"give either {env_field} or {literal_field}, not both")
    if literal_field in fields:
        # The value is a secret: the error must not quote it.
        value = fields[literal_field]
        if not isinstance(value, str) or not value:
            raise at.child(literal_field).error("must be a non-empty string")
        return value
    if env_field in fields:
        variable = at.child(env_field).string(fields[env_field])
        return env.get(variable) or None
    return None


def _check_url(url: str, where: _Reader | str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        message = f"{url!r} is not an http(s) URL"
    elif not is_loopback_host(parsed.host):
        # gateproof runs on loopback only: a real provider's address here is a mistake that
        # would send prompts (and the provider credential) off the machine.
        message = f"{url!r} is not on loopback; the reference gateway only forwards to {LOOPBACK_WORDS}"
    else:
        return url.rstrip("/")
    if isinstance(where, _Reader):
        raise where.error(message)
    raise ConfigError(f"{where}: {message}")


@dataclass(frozen=True)
class _Reader:
    """Reads one place in the document and knows how to name it in an error."""

    source: str
    path: str

    def child(self, key: str) -> _Reader:
        return _Reader(self.source, f"{self.path}.{key}" if self.path else key)

    def item(self, index: int) -> _Reader:
        return _Reader(self.source, f"{self.path}[{index}]")

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.path or '<top level>'}: {message}")

    def mapping(self, value: Any, *, allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"must be a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.error(f"keys must be strings, got {_kind(key)}")
            if allowed is not None and key not in allowed:
                raise self.child(key).error(f"unknown field (allowed: {', '.join(sorted(allowed))})")
        return value

    def sequence(self, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(f"must be a list, got {_kind(value)}")
        return value

    def string(self, value: Any) -> str:
        if value is None:
            raise self.error("is required")
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"must be a non-empty string, got {_kind(value)}")
        return value

    def integer(self, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
        if value is None:
            raise self.error("is required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"must be an integer, got {_kind(value)}")
        if minimum is not None and value < minimum:
            raise self.error(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(f"must be at most {maximum}, got {value}")
        return value

    def number(self, value: Any, *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"must be a number, got {_kind(value)}")
        if value < 0 or (positive and value == 0):
            raise self.error(f"must be {'positive' if positive else 'zero or more'}, got {value}")
        return float(value)

    def boolean(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(f"must be true or false, got {_kind(value)}")
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
