"""One failure per root cause, and bad harness input is never a silent pass.

A tiny OpenAI-compatible target on loopback (standard library only) answers the way a test
wants: a refused key, a chunk schema issue no stream rule owns, auth switched off. The
reference stack covers the rest.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gateproof.cli.launch import free_port
from gateproof.contract import Layers, Outcome, RunOptions, RunResult, TargetConfig, run_contract
from gateproof.contract.checks import CHECKS, Profile, load_all_checks
from gateproof.contract.results import Severity

GOOD_KEY = "gp-loopback-good-key"
KEY_ENV = "GATEPROOF_ROOT_CAUSE_KEY"


class _Target(http.server.BaseHTTPRequestHandler):
    """Answers chat completions like a plain OpenAI-compatible server, with switches."""

    timeout = 5
    #: the key it accepts; None: it accepts anything (auth off)
    key: ClassVar[str | None] = GOOD_KEY
    #: a change applied to every stream chunk
    chunk_patch: ClassVar[dict[str, Any]] = {}
    #: (method, path, headers, model) of every request received
    seen: ClassVar[list[tuple[str, str, dict[str, str], Any]]] = []
    #: the answer to a body that is not JSON
    bad_json: ClassVar[tuple[int, bytes]] = (
        400,
        b'{"error": {"message": "bad json", "type": "invalid_request_error", "code": null, "param": null}}',
    )
    #: the choices of the usage chunk (OpenAI: [])
    usage_choices: ClassVar[list[Any]] = []
    #: the answer to a request without Authorization (None: the 401 every wrong key gets)
    no_key_answer: ClassVar[tuple[int, bytes, str] | None] = None

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, dict(self.headers.items()), None))
        if not self.path.endswith("/models"):
            self._send(404, b'{"error": {"message": "not found", "type": "invalid_request_error"}}')
            return
        data = [{"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "openai"}]
        self._send(200, json.dumps({"object": "list", "data": data}).encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.no_key_answer is not None and "Authorization" not in self.headers:
            self._send(*self.no_key_answer)
            return
        if self.key is not None and self.headers.get("Authorization") != f"Bearer {self.key}":
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            self._send(
                401, json.dumps({"error": {**error, "code": "invalid_api_key", "param": None}}).encode()
            )
            return
        try:
            request = json.loads(raw)
            self.seen.append(("POST", self.path, dict(self.headers.items()), request.get("model")))
        except ValueError:
            self._send(*self.bad_json)
            return
        base = {"id": "chatcmpl-1", "created": 1700000000, "model": request.get("model", "m")}
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        if request.get("stream"):
            chunks = [
                {
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
                    ]
                },
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
            if (request.get("stream_options") or {}).get("include_usage"):
                chunks.append({"choices": self.usage_choices, "usage": usage})
            events = [
                {**base, "object": "chat.completion.chunk", **chunk, **self.chunk_patch} for chunk in chunks
            ]
            body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            self._send(200, body.encode(), "text/event-stream")
            return
        message = {"role": "assistant", "content": "Hi"}
        completion = {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }
        self._send(200, json.dumps(completion).encode())


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Target]]:
    handler = type("Target", (_Target,), {"key": GOOD_KEY, "chunk_patch": {}, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    monkeypatch.setenv(KEY_ENV, GOOD_KEY)
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def _run(
    target: type[_Target],
    *,
    scenarios: set[str] | None = None,
    layers: frozenset[Layers] = frozenset({Layers.SCENARIO}),
    **facts: Any,
) -> RunResult:
    config = TargetConfig(
        base_url=target.url,  # type: ignore[attr-defined]
        api_key_env=KEY_ENV,
        profile=facts.pop("profile", Profile.OPENAI_CORE),
        timeout_s=5.0,
        property_examples=5,
        **facts,
    ).validate()
    options = RunOptions(
        layers=layers,
        scenarios=frozenset(scenarios) if scenarios is not None else None,
    )
    return run_contract(config, options)


def _failed(run: RunResult) -> list[tuple[str, str]]:
    return [(r.check, r.scenario) for r in run.results if r.outcome is Outcome.FAILED]


def _explain(run: RunResult) -> list[str]:
    return [f"{r.check} [{r.scenario}] {r.outcome.value}: {r.reason}" for r in run.results if r.reason]


# -- the registry -------------------------------------------------------------------------------------


def test_every_check_has_a_known_dependency_and_no_cycle() -> None:
    load_all_checks()
    from gateproof.contract._runner import judging_order

    names = {c.name for c in CHECKS}
    for item in CHECKS:
        assert set(item.depends_on) <= names, item.name
        assert set(item.defers_to) <= names, item.name
    judging_order(list(CHECKS))  # raises on a cycle


def test_severities_are_fixed_where_no_replay_can_tell() -> None:
    load_all_checks()
    fixed = {c.name for c in CHECKS if c.severity is Severity.ERROR}
    for name in (
        "status_code_expected",
        "auth_enforced",
        "configured_key_accepted",
        "client_key_not_forwarded",
        "client_key_forwarded_unchanged",
        "upstream_params_intact",
        "usage_matches_provider",
        "response_usage_totals_add_up",
    ):
        assert name in fixed
    for name in ("response_schema_conformance", "chunk_schema_conformance", "error_body_conforms"):
        assert CHECKS.get(name).severity is None


# -- one failure per root cause ------------------------------------------------------------------------


def test_chunk_schema_reports_what_no_stream_rule_owns(target: type[_Target]) -> None:
    target.chunk_patch = {"id": 12345}  # every chunk: an integer id (the same one, so constant_id holds)
    run = _run(target, scenarios={"stream_basic"})
    assert _failed(run) == [("chunk_schema_conformance", "stream_basic")], _explain(run)
    (result,) = [r for r in run.results if r.outcome is Outcome.FAILED]
    assert result.reason.startswith("chunk #0: id: ")


def test_chunk_schema_does_not_repeat_a_stream_rule(target: type[_Target]) -> None:
    target.chunk_patch = {"object": "chat.completion"}
    run = _run(target, scenarios={"stream_basic"})
    assert _failed(run) == [("chunk_object_type", "stream_basic")], _explain(run)
    by_check = {r.check: r for r in run.results}
    skipped = by_check["chunk_schema_conformance"]
    assert skipped.outcome is Outcome.SKIPPED and skipped.because == "chunk_object_type"
    assert "skipped because chunk_object_type failed" in skipped.reason


def test_configured_key_refused_is_one_failure(
    target: type[_Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "gp-a-key-the-target-does-not-know")
    run = _run(target)
    failures = [r for r in run.results if r.outcome is Outcome.FAILED]
    assert [(r.check, r.scenario) for r in failures] == [("configured_key_accepted", "chat_basic")], _explain(
        run
    )
    (failure,) = failures
    assert failure.severity is Severity.ERROR
    assert f"${KEY_ENV} got HTTP 401: Incorrect API key provided" in failure.reason
    valid_key = {
        "chat_basic",
        "stream_basic",
        "stream_include_usage",
        "multi_turn_tool_result",
        "max_tokens_length",
    }
    skipped = {
        r.scenario
        for r in run.results
        if r.outcome is Outcome.SKIPPED and r.because == "configured_key_accepted"
    }
    assert valid_key <= skipped
    assert run.exit_code() == 1


def test_configured_key_refused_skips_the_property_layer_too(
    target: type[_Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "gp-a-key-the-target-does-not-know")
    run = _run(target, scenarios={"chat_basic"}, layers=frozenset(Layers))
    assert _failed(run) == [("configured_key_accepted", "chat_basic")], _explain(run)
    generated = [r for r in run.results if r.layer.value == "property"]
    assert generated and all(
        r.outcome is Outcome.SKIPPED and r.because == "configured_key_accepted" for r in generated
    )
    assert not [entry for entry in target.seen if entry[0] == "POST"], "nothing generated was sent"


def test_a_wrong_error_status_still_owes_the_error_envelope(target: type[_Target]) -> None:
    target.bad_json = (500, b'{"status": "failure", "message": "Something went wrong"}')
    run = _run(target, scenarios={"invalid_json"})
    failed = _failed(run)
    assert ("not_a_server_error", "invalid_json") in failed, _explain(run)
    assert ("error_body_conforms", "invalid_json") in failed, _explain(run)
    status = {r.check: r for r in run.results}["status_code_expected"]
    assert status.outcome is Outcome.SKIPPED and status.because == "not_a_server_error"


def test_the_property_schema_does_not_repeat_the_usage_chunk_rule(target: type[_Target]) -> None:
    target.usage_choices = [{"index": 0, "delta": {}}]
    run = _run(target, scenarios={"stream_include_usage"}, layers=frozenset(Layers))
    assert ("usage_chunk_empty_choices", "stream_include_usage") in _failed(run), _explain(run)
    schema = [
        r for r in run.results if r.layer.value == "property" and r.check == "response_schema_conformance"
    ]
    streamed = [r for r in schema if r.route == "POST /v1/chat/completions"]
    assert streamed and all(r.outcome is not Outcome.FAILED for r in streamed), _explain(run)
    assert any(r.outcome is Outcome.SKIPPED and r.because == "usage_chunk_empty_choices" for r in streamed), (
        _explain(run)
    )


def test_a_crash_for_a_missing_key_is_one_root_cause_and_another_status_is_another(
    target: type[_Target],
) -> None:
    # LiteLLM 1.108.7 answers a missing key with a plain-text 500 (and a wrong key with 400)
    target.no_key_answer = (500, b"Internal Server Error", "text/plain")
    run = _run(target, scenarios={"auth_missing", "auth_wrong_key"})
    assert _failed(run) == [("status_code_expected", "auth_missing")], _explain(run)
    content = next(
        r for r in run.results if r.check == "content_type_matches_mode" and r.scenario == "auth_missing"
    )
    assert content.outcome is Outcome.SKIPPED and content.because == "status_code_expected"
    assert len(run.root_causes()) == 1


def test_root_causes_keep_http_statuses_apart() -> None:
    from gateproof.contract.results import CheckResult, Layer, RunResult

    def failure(scenario: str, reason: str) -> CheckResult:
        return CheckResult(
            check="status_code_expected",
            description="",
            layer=Layer.SCENARIO,
            profile="openai-core",
            target="t",
            route="POST /v1/chat/completions",
            scenario=scenario,
            outcome=Outcome.FAILED,
            reason=reason,
            severity=Severity.ERROR,
        )

    run = RunResult(
        run_id="r", target="t", base_url="http://127.0.0.1:1/v1", profile="openai-core", started_at=0
    )
    run.results = [
        failure("auth_missing", "got HTTP 500, expected 401"),
        failure("auth_wrong_key", "got HTTP 400, expected 401"),
        failure("auth_inactive_key", "got HTTP 400, expected 401"),
    ]
    causes = run.root_causes()
    assert [(c.reason, len(c.results)) for c in causes] == [
        ("got HTTP 400, expected 401", 2),
        ("got HTTP 500, expected 401", 1),
    ]


def test_auth_off_by_design_is_one_security_failure(target: type[_Target]) -> None:
    target.key = None
    run = _run(target, scenarios={"chat_basic", "auth_missing", "auth_wrong_key"}, auth_required=False)
    failures = [r for r in run.results if r.outcome is Outcome.FAILED]
    assert [(r.check, r.scenario) for r in failures] == [("auth_enforced", "auth_missing")], _explain(run)
    assert failures[0].severity is Severity.ERROR
    assert "anyone who can reach the target gets completions" in failures[0].reason
    wrong_key = [
        r for r in run.results if r.scenario == "auth_wrong_key" and r.outcome is not Outcome.NOT_APPLICABLE
    ]
    assert wrong_key and all(r.outcome is Outcome.SKIPPED and r.because == "auth_enforced" for r in wrong_key)


def test_auth_off_undeclared_fails_the_status_not_the_error_schema(target: type[_Target]) -> None:
    target.key = None
    run = _run(target, scenarios={"auth_missing"})
    assert _failed(run) == [("status_code_expected", "auth_missing")], _explain(run)
    body = {r.check: r for r in run.results}["error_body_conforms"]
    assert body.outcome is Outcome.SKIPPED and body.because == "status_code_expected"
    assert body.reason == "skipped because status_code_expected failed: HTTP 200 is no error"


def test_a_plain_openai_server_passes_openai_core(target: type[_Target]) -> None:
    """No mock, no Edgee: what a plain server owes it gives, and nothing else is asked of it."""
    plain = {
        "chat_basic",
        "stream_basic",
        "stream_include_usage",
        "models_list",
        "auth_missing",
        "auth_wrong_key",
    }
    run = _run(target, scenarios=plain | {"invalid_json"})
    assert _failed(run) == [], _explain(run)
    assert run.exit_code() == 0


# -- facts the target declares ----------------------------------------------------------------------


def test_extra_headers_go_on_every_request_and_models_per_scenario(target: type[_Target]) -> None:
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": "http://127.0.0.1:9/v1"}
    run = _run(
        target,
        scenarios={"chat_basic", "stream_basic", "models_list", "auth_missing"},
        extra_headers=headers,
        models={"default": "fast", "stream_basic": "streamy"},
    )
    assert _failed(run) == [], _explain(run)
    assert target.seen, "nothing was sent"
    for method, path, seen, _ in target.seen:
        lowered = {k.lower(): v for k, v in seen.items()}
        assert {k: lowered.get(k) for k in headers} == headers, (method, path)
    models = {model for method, _, _, model in target.seen if method == "POST"}
    assert models == {"fast", "streamy"}


def test_the_help_documents_the_facts() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "contract", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 0
    for word in (
        "extra_headers",
        "upstream_models",
        "key_passthrough",
        "auth_required",
        "--strict",
        "--header",
    ):
        assert word in completed.stdout, word


# -- bad harness input -----------------------------------------------------------------------------


def _contract(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "contract", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


def test_an_unreachable_mock_is_exit_3_naming_it(target: type[_Target]) -> None:
    mock = f"http://127.0.0.1:{free_port()}"
    completed = _contract(
        "--base-url", target.url, "--api-key-env", KEY_ENV, "--mock-url", mock,  # type: ignore[attr-defined]
        "--layers", "scenario", env={KEY_ENV: GOOD_KEY},
    )  # fmt: skip
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert mock in completed.stdout and "/_gateproof/health" in completed.stdout


def test_a_mock_url_that_is_not_the_mock_is_exit_3(target: type[_Target]) -> None:
    origin = target.url.removesuffix("/v1")  # type: ignore[attr-defined]
    completed = _contract(
        "--base-url", target.url, "--api-key-env", KEY_ENV, "--mock-url", origin,  # type: ignore[attr-defined]
        "--layers", "scenario", env={KEY_ENV: GOOD_KEY},
    )  # fmt: skip
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "HTTP 404" in completed.stdout


@pytest.mark.parametrize(
    ("options", "named"),
    [(["--checks", "no_such_check"], "status_code_expected"), (["--scenarios", "nope"], "chat_basic")],
    ids=["check", "scenario"],
)
def test_unknown_names_are_exit_2_with_the_valid_names(
    target: type[_Target], options: list[str], named: str
) -> None:
    completed = _contract(
        "--base-url",
        target.url,
        "--api-key-env",
        KEY_ENV,
        *options,
        env={KEY_ENV: GOOD_KEY},  # type: ignore[attr-defined]
    )
    assert completed.returncode == 2
    assert named in completed.stderr and "valid names" in completed.stderr


def test_strict_fails_on_warnings(target: type[_Target], tmp_path: Path) -> None:
    target.chunk_patch = {"id": 12345}
    args = ["--base-url", target.url, "--api-key-env", KEY_ENV, "--profile", "openai-core",  # type: ignore[attr-defined]
            "--layers", "scenario", "--scenarios", "stream_basic"]  # fmt: skip
    relaxed = _contract(*args, env={KEY_ENV: GOOD_KEY})
    strict = _contract(*args, "--strict", env={KEY_ENV: GOOD_KEY})
    # whether the openai client tolerates an integer id is the replay's call; --strict fails either way
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "chunk_schema_conformance" in strict.stdout
    assert relaxed.returncode in (0, 1)
    if relaxed.returncode == 0:
        assert "WARN" in relaxed.stdout
