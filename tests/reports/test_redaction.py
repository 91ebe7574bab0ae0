"""No report file carries a credential, even when the results arrive unredacted."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import urllib.parse
from pathlib import Path

from gateproof.contract.results import Exchange, RunResult
from gateproof.load.results import LoadResult
from gateproof.reports import write_report
from gateproof.reports._redact import REDACTED, Scrubber


def test_planted_secrets_reach_no_report_file(
    tmp_path: Path, run: RunResult, load: LoadResult, planted_secrets: tuple[str, ...]
) -> None:
    exchange = run.results[3].exchange
    assert exchange is not None and exchange.request_headers["x-api-key"] == planted_secrets[1]
    load.failure_reasons[f"HTTP 401 for Bearer {planted_secrets[0]}"] = 1
    load.base_url = "http://user:hunter2secret@127.0.0.1:8080"
    load.settings["sent header"] = f"Authorization: Bearer {planted_secrets[0]}"

    files = write_report(tmp_path / "out", run, load)

    written = {path.name: path.read_bytes() for path in files.paths}
    assert set(written) >= {"index.html", "summary.md", "junit.xml", "results.json"}
    for name, content in written.items():
        for secret in (*planted_secrets, "hunter2secret"):
            assert secret.encode() not in content, f"{secret} leaked into {name}"
    page = written["index.html"].decode()
    assert f"Authorization: {REDACTED}" in page
    assert f"x-api-key: {REDACTED}" in page
    assert "Bearer [redacted]" in page  # the load failure reason, scrubbed by shape


def test_scrubber_keeps_shape_and_ordinary_text() -> None:
    scrubber = Scrubber.for_headers(
        [{"Authorization": "Bearer tok-123456789", "accept": "text/event-stream"}]
    )

    assert scrubber.headers({"Authorization": "anything", "Accept": "text/event-stream"}) == {
        "Authorization": REDACTED,
        "Accept": "text/event-stream",
    }
    # The bare token leaks too when a body echoes it.
    assert scrubber.text("echo tok-123456789 back") == f"echo {REDACTED} back"
    assert scrubber.value({"messages": [{"content": "hello world"}], "apiKey": "k"}) == {
        "messages": [{"content": "hello world"}],
        "apiKey": REDACTED,
    }
    assert (
        scrubber.url("http://a:b@h:1/p?key=abc&model=x") == f"http://{REDACTED}@h:1/p?key=[redacted]&model=x"
    )
    assert (
        scrubber.url("http://127.0.0.1:8080/v1/models?provider=openai")
        == "http://127.0.0.1:8080/v1/models?provider=openai"
    )


#: shaped like nothing a pattern could recognise: only being told about it can scrub it
UNSHAPED = "Zq9/unshaped+key=7T"


def _forms(secret: str) -> list[str]:
    forms = []
    for value in (secret, f"Bearer {secret}", f"user:{secret}"):
        raw = value.encode()
        forms += [
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            urllib.parse.quote(value, safe=""),
            re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(value, safe="")),
            urllib.parse.quote_plus(value),
            json.dumps(value)[1:-1].replace("/", "\\/"),
        ]
    return [secret, *forms]


def test_write_report_scrubs_the_secrets_it_is_given_in_every_form(tmp_path: Path, run: RunResult) -> None:
    echoed = " | ".join(_forms(UNSHAPED))
    leaky = dataclasses.replace(
        run.results[0],
        reason=f"401: {echoed}",
        exchange=Exchange(
            method="POST",
            url="http://127.0.0.1:8080/v1/chat/completions",
            request_headers={"Authorization": "Bearer [redacted]"},
            status=401,
            response_headers={"X-Echo": echoed, f"X-{UNSHAPED}": "header name echo"},
            response_body={"error": {"message": echoed, UNSHAPED: [echoed]}},
        ),
    )
    run.results[0] = leaky

    files = write_report(tmp_path / "out", run, None, secrets=[UNSHAPED])

    for path in files.paths:
        content = path.read_text()
        for form in _forms(UNSHAPED):
            assert form not in content, f"{form} leaked into {path.name}"
    assert REDACTED in files.results_json.read_text()


def test_a_key_inside_a_larger_base64_value_is_scrubbed_at_any_alignment() -> None:
    scrubber = Scrubber([UNSHAPED])
    for prefix in ("", "a", "ab", "abc", "Bearer ", "user:"):
        encoded = base64.b64encode(f"{prefix}{UNSHAPED}-tail".encode()).decode()
        clean = scrubber.text(encoded)
        left = clean.replace(REDACTED, "")
        # what is left is the prefix's and the tail's own characters, at most one more at each end
        assert REDACTED in clean and len(left) <= (len(prefix) + len("-tail")) * 4 / 3 + 4, clean


def test_reports_leave_ordinary_text_alone_when_given_secrets() -> None:
    scrubber = Scrubber(["sk-abcdef123456", "short"])  # too short to be scrubbed as a word
    assert scrubber.text("a short reply, model openai/gpt-4o") == "a short reply, model openai/gpt-4o"
    assert scrubber.text("key=sk-abcdef123456;") == f"key={REDACTED};"
