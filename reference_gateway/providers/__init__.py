"""Provider adapters: one module per upstream dialect, all behind :class:`ProviderAdapter`.

``ADAPTERS`` maps a config ``dialect`` to its adapter class; adding a dialect is a
module here and one entry in that table. Every adapter follows :class:`TranslationRules`;
the gateway passes the ones its fault leaves (all of them: :data:`CORRECT_TRANSLATION`).
"""

from gateproof.reference_gateway._config import ConfigError, ProviderConfig
from gateproof.reference_gateway.providers._adapter import ProviderAdapter, StreamDecoder, UpstreamFormatError
from gateproof.reference_gateway.providers._translation import CORRECT_TRANSLATION, TranslationRules
from gateproof.reference_gateway.providers.anthropic import AnthropicAdapter
from gateproof.reference_gateway.providers.gemini import GeminiAdapter
from gateproof.reference_gateway.providers.openai import OpenAIAdapter

__all__ = [
    "ADAPTERS",
    "CORRECT_TRANSLATION",
    "AnthropicAdapter",
    "GeminiAdapter",
    "OpenAIAdapter",
    "ProviderAdapter",
    "StreamDecoder",
    "TranslationRules",
    "UpstreamFormatError",
    "adapter_for",
]

#: config ``dialect`` -> adapter class
ADAPTERS: dict[str, type[ProviderAdapter]] = {
    OpenAIAdapter.dialect: OpenAIAdapter,
    AnthropicAdapter.dialect: AnthropicAdapter,
    GeminiAdapter.dialect: GeminiAdapter,
}


def adapter_for(provider: ProviderConfig, rules: TranslationRules = CORRECT_TRANSLATION) -> ProviderAdapter:
    """The adapter for a configured provider; an unknown dialect is a configuration error."""
    adapter = ADAPTERS.get(provider.dialect)
    if adapter is None:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigError(
            f"providers.{provider.name}.dialect: unknown dialect {provider.dialect!r} (supported: {known})"
        )
    return adapter(provider, rules)
