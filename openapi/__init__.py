"""The reference OpenAPI document for the Edgee-compatible gateway API, and the
jsonschema validators derived from it.

The YAML file beside this module is the single source of truth: the validators
below are *built from* its ``components/schemas`` (never written a second time),
schemathesis loads the same file, and the reference gateway validates requests
with the same validators. The golden corpus (``corpus/``) holds payloads with the
verdicts every one of those validators must agree on.

The token-counting convention (``_tokens.py``) lives here too: the mock provider
bills prompts with it and the reference gateway measures compression with it, and
this is the one part both may import. So does the transcript corpus
(``_transcripts.py``, data in ``transcripts/``): agent sessions of 1k to 128k tokens
with needles, read by the contract checks, the load scenario and the benchmark.
"""

from gateproof.openapi._corpus import CORPUS_FILES, CorpusEntry, load_corpus
from gateproof.openapi._credentials import SECRET_HEADERS
from gateproof.openapi._directive import DIRECTIVE_MARKER, DIRECTIVE_PATTERN, format_directive
from gateproof.openapi._edge_tools import (
    EDGE_CURRENT_TIME,
    EDGE_GENERATE_UUID,
    EDGE_TOOL_NAMES,
    MAX_EDGE_ROUNDS,
    PENDING_PREFIX,
)
from gateproof.openapi._edgee_headers import (
    BOOLEAN_HEADERS,
    COMPRESSION_HEADER,
    DEBUG_HEADER,
    FALLBACK_HEADER,
    FALLBACK_USED_VALUES,
    PROVIDER_HEADER,
    TAGS_HEADER,
)
from gateproof.openapi._gateway_fields import (
    EDGEE_HEADER_PREFIX,
    gateway_body_fields,
    is_edgee_header,
    is_gateway_field,
)
from gateproof.openapi._harness import (
    CONTROL_PREFIX,
    CORRELATION_HEADER,
    DIALECT_NAMES,
    HEALTH_PATH,
    JOURNAL_PATH,
)
from gateproof.openapi._intent import Intent, Part, ToolIntent, intent_from_openai, json_value
from gateproof.openapi._journal_record import JournalRecord
from gateproof.openapi._spec import SPEC_FILE, load_spec, spec_path
from gateproof.openapi._stamps import (
    STAMP_DIRECTIVE_KEY,
    STAMP_PATTERN,
    STAMP_PREFIX,
    format_stamp,
    parse_stamps,
)
from gateproof.openapi._tokens import (
    ENCODING_NAME,
    PromptText,
    count_chat_prompt,
    count_prompt,
    count_text,
    count_texts,
    gather_prompt,
)
from gateproof.openapi._transcripts import TRANSCRIPT_SIZES, Transcript, load_transcript, transcripts
from gateproof.openapi._validators import SCHEMA_NAMES, SchemaKind, ValidationIssue, Validators, validators

__all__ = [
    "BOOLEAN_HEADERS",
    "COMPRESSION_HEADER",
    "CONTROL_PREFIX",
    "CORPUS_FILES",
    "CORRELATION_HEADER",
    "DEBUG_HEADER",
    "DIALECT_NAMES",
    "DIRECTIVE_MARKER",
    "DIRECTIVE_PATTERN",
    "EDGEE_HEADER_PREFIX",
    "EDGE_CURRENT_TIME",
    "EDGE_GENERATE_UUID",
    "EDGE_TOOL_NAMES",
    "ENCODING_NAME",
    "FALLBACK_HEADER",
    "FALLBACK_USED_VALUES",
    "HEALTH_PATH",
    "JOURNAL_PATH",
    "MAX_EDGE_ROUNDS",
    "PENDING_PREFIX",
    "PROVIDER_HEADER",
    "SCHEMA_NAMES",
    "SECRET_HEADERS",
    "SPEC_FILE",
    "STAMP_DIRECTIVE_KEY",
    "STAMP_PATTERN",
    "STAMP_PREFIX",
    "TAGS_HEADER",
    "TRANSCRIPT_SIZES",
    "CorpusEntry",
    "Intent",
    "JournalRecord",
    "Part",
    "PromptText",
    "SchemaKind",
    "ToolIntent",
    "Transcript",
    "ValidationIssue",
    "Validators",
    "count_chat_prompt",
    "count_prompt",
    "count_text",
    "count_texts",
    "format_directive",
    "format_stamp",
    "gateway_body_fields",
    "gather_prompt",
    "intent_from_openai",
    "is_edgee_header",
    "is_gateway_field",
    "json_value",
    "load_corpus",
    "load_spec",
    "load_transcript",
    "parse_stamps",
    "spec_path",
    "transcripts",
    "validators",
]
