"""Prompt compression for the reference gateway: trim agent tool output a model does not need.

Where the tokens are: in an agent's history, most of a prompt is tool output (test
runs, installs, logs, grep hits, JSON answers), and much of that is for terminals,
not models: colour codes, progress bars redrawn a hundred times, pager prompts,
hundreds of PASSED lines, the same path on every grep hit, JSON indentation, a test
run pasted twice. The rules (they are decisions, recorded in DECISIONS.md):

- Only tool results are compressed: the ``content`` of ``role: "tool"`` messages (a
  string, or the ``text`` of text parts). System, developer, user and assistant
  messages, tool calls, tool definitions and every other field are forwarded as sent
  (as Edgee compresses only tool results and leaves the conversation's turns alone).
- Each strategy is a plain ``str -> str`` function named for what it trims, in the
  ordered registry ``STRATEGIES`` (a new one: a function in ``_strategies.py`` and
  its entry there). One more step, ``REPEATED_RESULT``, needs the whole prompt: a
  tool result identical to an earlier one (200 characters or more) becomes a note
  naming the earlier tool call's id.
- Meaning is kept: no line that mentions an error, failure, assertion, warning,
  exception or traceback is dropped or rewritten (it survives as a terminal shows
  it: without colour codes, after carriage-return redraws, without trailing blanks;
  only identical copies right after it are folded into a count);
  JSON keeps every key, in order, and every value (numbers by value: ``1.50`` is
  sent as ``1.5``); folded runs say how many lines they stand for. Blank lines are
  never dropped (only trailing blanks and blank lines at the very end), so a file
  read keeps its line numbers unless it repeats one line three times in a row
  (folded, with the count).
- Deterministic (no clocks, no randomness, no state between requests) and never
  longer: a message whose compressed form does not cost fewer tokens is forwarded as
  it came, so ``saved_tokens >= 0`` and 0 when nothing changed.
- ``saved_tokens`` is exact under openapi's token convention (the one the mock bills
  with): original prompt tokens - forwarded prompt tokens. Only changed text is
  tokenized (see ``_counting.py``); ``time_ms`` covers transform and counting.
"""

from gateproof.reference_gateway.compression._counting import token_deltas
from gateproof.reference_gateway.compression._engine import (
    REPEATED_RESULT,
    Compression,
    compress_messages,
    compress_text,
)
from gateproof.reference_gateway.compression._strategies import (
    KEYWORDS,
    STRATEGIES,
    Strategy,
    mentions_problem,
)

__all__ = [
    "KEYWORDS",
    "REPEATED_RESULT",
    "STRATEGIES",
    "Compression",
    "Strategy",
    "compress_messages",
    "compress_text",
    "mentions_problem",
    "token_deltas",
]
