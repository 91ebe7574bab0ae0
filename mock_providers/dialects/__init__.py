"""Provider wire formats the mock speaks; each renders the shared ``Scenario`` plan.

``DIALECTS`` lists the ones the app mounts (the first one also answers unknown
routes).
"""

from gateproof.mock_providers.dialects.openai import OpenAIDialect

__all__ = ["DIALECTS", "OpenAIDialect"]

DIALECTS = (OpenAIDialect(),)
