"""Provider wire formats the mock speaks; each renders the shared ``Scenario`` plan.

``DIALECTS`` lists the ones the app mounts (the first one also answers unknown
routes).
"""

from gateproof.mock_providers.dialects.anthropic import AnthropicDialect
from gateproof.mock_providers.dialects.gemini import GEMINI_PREFIX, GeminiDialect
from gateproof.mock_providers.dialects.openai import OpenAIDialect

__all__ = ["DIALECTS", "GEMINI_PREFIX", "AnthropicDialect", "GeminiDialect", "OpenAIDialect"]

DIALECTS = (OpenAIDialect(), AnthropicDialect(), GeminiDialect())
