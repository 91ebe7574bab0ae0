"""No report file carries a credential, even when the results arrive unredacted."""

from __future__ import annotations

from pathlib import Path

from gateproof.contract.results import RunResult
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
