"""The journal as a data structure: redaction, bounds, filtering."""

from __future__ import annotations

import hashlib
import json

from gateproof.mock_providers import Journal
from gateproof.mock_providers._journal import fingerprint, redact_headers, redact_query


def _record(
    journal: Journal, cid: str | None = None, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    raw = list(headers or [])
    if cid is not None:
        raw.append((b"x-gateproof-correlation-id", cid.encode()))
    journal.record(
        method="POST",
        path="/v1/chat/completions",
        query="",
        headers=raw,
        body=json.dumps({"n": len(journal)}).encode(),
        received_at=1.0,
        dialect="openai",
    )


def test_credentials_are_replaced_by_fingerprints() -> None:
    headers = redact_headers(
        [
            (b"authorization", b"Bearer sk-live-very-secret"),
            (b"x-api-key", b"anthropic-secret"),
            (b"api-key", b"azure-secret"),
            (b"x-goog-api-key", b"google-secret"),
            (b"cookie", b"session=abc"),
            (b"content-type", b"application/json"),
        ]
    )
    text = json.dumps(headers)
    for secret in ["sk-live-very-secret", "anthropic-secret", "azure-secret", "google-secret", "session=abc"]:
        assert secret not in text
    fingerprint = hashlib.sha256(b"sk-live-very-secret").hexdigest()[:12]
    assert headers["authorization"] == f"Bearer [redacted sha256:{fingerprint}]"
    assert headers["content-type"] == "application/json"


def test_key_query_parameters_are_redacted() -> None:
    fingerprints: dict[str, str] = {}
    query = redact_query("alt=sse&key=AIzaSECRET", fingerprints)
    assert "AIzaSECRET" not in query
    assert query.startswith("alt=sse&key=")
    assert fingerprints == {"query:key": fingerprint("AIzaSECRET")}
    assert redact_query("alt=sse") == "alt=sse"


def test_repeated_headers_are_joined() -> None:
    assert redact_headers([(b"x-a", b"1"), (b"x-a", b"2")]) == {"x-a": "1, 2"}


def test_bodies_are_decoded_when_read() -> None:
    journal = Journal()
    _record(journal)
    journal.record(
        method="POST", path="/x", query="", headers=[], body=b"not json", received_at=1.0, dialect=None
    )
    first, second = journal.entries()
    assert first.as_json()["body"] == {"n": 0}
    assert second.as_json()["body"] == "not json"


def test_journal_is_a_ring_buffer() -> None:
    journal = Journal(size=3)
    for _ in range(5):
        _record(journal)
    entries = journal.entries()
    assert len(entries) == 3
    assert [e.seq for e in entries] == [3, 4, 5]


def test_entries_filter_by_cid_and_limit_keeps_the_newest() -> None:
    journal = Journal()
    for cid in ["a", "b", "a", None, "a"]:
        _record(journal, cid)
    assert [e.seq for e in journal.entries(cid="a")] == [1, 3, 5]
    assert [e.seq for e in journal.entries(cid="a", limit=2)] == [3, 5]
    assert journal.entries(cid="a", limit=0) == []
    assert journal.clear(cid="a") == 3
    assert [e.cid for e in journal.entries()] == ["b", None]
    assert journal.clear() == 2
    assert len(journal) == 0


def test_the_journal_masks_every_credential_header_the_reports_mask() -> None:
    # one list (gateproof.openapi._credentials): an Edgee key reaching the provider is masked too
    from gateproof.contract.results import SECRET_HEADERS

    raw = [(name.encode(), b"sk-secret-value-123456") for name in sorted(SECRET_HEADERS)]
    headers = redact_headers(raw)
    assert set(headers) == set(SECRET_HEADERS)
    assert not [name for name, value in headers.items() if "sk-secret-value-123456" in value]
    assert "x-edgee-api-key" in headers
