"""The reference OpenAPI document for the Edgee-compatible gateway API, and the
jsonschema validators derived from it.

The YAML file beside this module is the single source of truth: the validators
below are *built from* its ``components/schemas`` (never written a second time),
schemathesis loads the same file, and the reference gateway validates requests
with the same validators.
"""

from gateproof.openapi._spec import SPEC_FILE, load_spec, spec_path
from gateproof.openapi._validators import SCHEMA_NAMES, SchemaKind, ValidationIssue, Validators, validators

__all__ = [
    "SCHEMA_NAMES",
    "SPEC_FILE",
    "SchemaKind",
    "ValidationIssue",
    "Validators",
    "load_spec",
    "spec_path",
    "validators",
]
