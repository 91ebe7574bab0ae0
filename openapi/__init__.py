"""The reference OpenAPI document for the Edgee-compatible gateway API, and the
jsonschema validators derived from it.

The YAML file beside this module is the single source of truth: the validators
below are *built from* its ``components/schemas`` (never written a second time),
schemathesis loads the same file, and the reference gateway validates requests
with the same validators. The golden corpus (``corpus/``) holds payloads with the
verdicts every one of those validators must agree on.
"""

from gateproof.openapi._corpus import CORPUS_FILES, CorpusEntry, load_corpus
from gateproof.openapi._credentials import SECRET_HEADERS
from gateproof.openapi._gateway_fields import (
    EDGEE_HEADER_PREFIX,
    gateway_body_fields,
    is_edgee_header,
    is_gateway_field,
)
from gateproof.openapi._spec import SPEC_FILE, load_spec, spec_path
from gateproof.openapi._validators import SCHEMA_NAMES, SchemaKind, ValidationIssue, Validators, validators

__all__ = [
    "CORPUS_FILES",
    "EDGEE_HEADER_PREFIX",
    "SCHEMA_NAMES",
    "SECRET_HEADERS",
    "SPEC_FILE",
    "CorpusEntry",
    "SchemaKind",
    "ValidationIssue",
    "Validators",
    "gateway_body_fields",
    "is_edgee_header",
    "is_gateway_field",
    "load_corpus",
    "load_spec",
    "spec_path",
    "validators",
]
