"""Broken targets produce a report that says what broke: no traceback, no hang, a meaningful exit code.

Each target is a few lines of raw socket server on loopback, so the harness meets
exactly the misbehaviour under test: garbage answers, silence, dropped connections,
endless or huge bodies, drips, redirects, broken framing, deep JSON.

Every hostile run is held to the same bounds: it ends within its documented time bound,
writes results.json, prints no traceback, names the failure (a check, or a transport
failure name first in the result reason), and, where the target sends without end, keeps
the contract process's peak memory (``wait4``'s ``ru_maxrss``) under ``MEMORY_CAP_MB``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: timing: every run here is held to a wall-clock bound, so the module runs alone (see the Makefile)
pytestmark = pytest.mark.timing

Handler = Callable[[socket.socket], None]


def _answer_garbage(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    )


def _stay_silent(conn: socket.socket) -> None:
    conn.recv(65536)
    time.sleep(30)


def _drop_after_probe(conn: socket.socket) -> None:
    request = conn.recv(65536)
    if request.startswith(b"GET /v1/models"):
        body = b'{"object": "list", "data": []}'
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
    # every other request: the connection closes without an answer


class _Server:
    def __init__(self, handler: Handler) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                self.handler(conn)

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], int]]:
    servers: list[_Server] = []

    def start(handler: Handler) -> int:
        server = _Server(handler)
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.close()


def _contract(
    port: int, tmp_path: Path, *extra: str, timeout: float = 120, timeout_s: float = 1
) -> tuple[subprocess.CompletedProcess[str], dict[str, object], float]:
    config = tmp_path / "target.yaml"
    config.write_text(
        f"target: {{base_url: 'http://127.0.0.1:{port}/v1'}}\ntimeout_s: {timeout_s}\nproperty: {{max_examples: 5}}\n"
    )
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "contract", "--config", str(config), "--json", str(tmp_path / "r.json"), *extra],
        capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "GATEPROOF_API_KEY": "gp-hostile-test-key"},
    )  # fmt: skip
    elapsed = time.monotonic() - started
    results = json.loads((tmp_path / "r.json").read_text()) if (tmp_path / "r.json").exists() else {}
    return completed, results, elapsed


def test_garbage_answers_fail_the_run_with_reasons(serve: Callable[[Handler], int], tmp_path: Path) -> None:
    completed, results, _ = _contract(serve(_answer_garbage), tmp_path)
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    failed = [r for r in results["results"] if r["outcome"] == "failed"]  # type: ignore[index]
    assert any(r["check"] == "content_type_matches_mode" for r in failed)
    assert any(r["check"] == "status_code_expected" and r["scenario"] == "auth_missing" for r in failed)
    assert all(r["reason"] for r in failed)


def test_a_silent_target_is_given_up_on_quickly(serve: Callable[[Handler], int], tmp_path: Path) -> None:
    port = serve(_stay_silent)
    completed, results, elapsed = _contract(port, tmp_path)
    # the probe times out first: nothing answers HTTP, so the target counts as unreachable
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "UNREACHABLE: timeout:" in completed.stdout
    assert elapsed < 30
    assert results["unreachable"]


def test_a_target_that_drops_connections_is_reported_not_crashed(
    serve: Callable[[Handler], int], tmp_path: Path
) -> None:
    completed, results, elapsed = _contract(serve(_drop_after_probe), tmp_path)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [r for r in results["results"] if r["outcome"] == "error"]  # type: ignore[index]
    assert errors and any("stopped answering" in r["reason"] for r in errors)
    assert any(r["layer"] == "property" and "stopped answering" in r["reason"] for r in errors)
    assert elapsed < 60


# -- targets that never stop, drip, redirect, break the framing or nest too deep ---------------------

#: peak resident memory of one ``gateproof contract`` process against a target that sends without
#: end. Measured: ~100 MB for the scenario layer, ~160 MB with schemathesis' generation, whatever
#: the target sends, since the wire rules hold at most one 8 MiB body (plus the 4 MiB kept of it)
#: per exchange in flight; before them a 100 MB model list peaked at 381 MB and an endless one grew
#: without bound. The cap leaves room for a loaded machine.
MEMORY_CAP_MB = 400
PEAK_RSS = Path(__file__).parents[1] / "peak_rss.py"
#: seconds a hostile run may take, start to exit, on a shared 2-core machine; the targets that
#: cost a deadline per request are given up on after 3 of them
BOUND_S = 60.0

MODELS = b'{"object": "list", "data": [{"id": "openai/gpt-4o", "object": "model", "created": 1, "owned_by": "openai"}]}'
CHUNK = (
    b'data: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "openai/gpt-4o", '
    b'"choices": [{"index": 0, "delta": {"content": " word"}, "finish_reason": null}]}\n\n'
)
COMPLETION = (
    b'{"id": "c1", "object": "chat.completion", "created": 1, "model": "openai/gpt-4o", "choices": [{"index": 0, '
    b'"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}], '
    b'"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}'
)
DEEP = b"[" * 100_000 + b"]" * 100_000
PIECE = b"x" * 65536
HUNDRED_MB = 100 * 1024 * 1024


def _request(conn: socket.socket) -> tuple[str, bool]:
    """Read one request; return its path and whether it asked for a stream."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 1 << 20:
        piece = conn.recv(65536)
        if not piece:
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(v) for k, _, v in (line.partition(": ") for line in lines[1:]) if k.lower() == "content-length"),
        0,
    )
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            break
        body += piece
    path = lines[0].split(" ")[1] if lines[0].count(" ") >= 2 else ""
    return path, b'"stream": true' in body or b'"stream":true' in body


def _head(status: str, *headers: str) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\n" + "".join(f"{h}\r\n" for h in headers) + "Connection: close\r\n\r\n"
    ).encode()


def _answer(conn: socket.socket, body: bytes, content_type: str = "application/json") -> None:
    conn.sendall(_head("200 OK", f"Content-Type: {content_type}", f"Content-Length: {len(body)}") + body)


def _normal(conn: socket.socket, path: str, stream: bool) -> None:
    if path.endswith("/models"):
        _answer(conn, MODELS)
    elif stream:
        _answer(conn, CHUNK + b"data: [DONE]\n\n", "text/event-stream")
    else:
        _answer(conn, COMPLETION)


def _endless_models(conn: socket.socket) -> None:
    path, stream = _request(conn)
    if not path.endswith("/models"):
        return _normal(conn, path, stream)
    conn.sendall(_head("200 OK", "Content-Type: application/json", "Transfer-Encoding: chunked"))
    entry = b'{"id": "openai/gpt-4o", "object": "model", "created": 1, "owned_by": "openai"},' * 512
    prefix = b'{"object": "list", "data": ['
    conn.sendall(b"%x\r\n%s\r\n" % (len(prefix), prefix))
    while True:
        conn.sendall(b"%x\r\n%s\r\n" % (len(entry), entry))


def _models_100mb(conn: socket.socket) -> None:
    path, stream = _request(conn)
    if not path.endswith("/models"):
        return _normal(conn, path, stream)
    conn.sendall(_head("200 OK", "Content-Type: application/json", f"Content-Length: {HUNDRED_MB}"))
    for _ in range(HUNDRED_MB // len(PIECE)):
        conn.sendall(PIECE)


def _endless_chunks(conn: socket.socket) -> None:
    """Valid content chunks without end, as fast as the client reads them (no length, no end)."""
    path, stream = _request(conn)
    if not path.endswith("/chat/completions"):
        return _normal(conn, path, stream)
    conn.sendall(_head("200 OK", "Content-Type: text/event-stream"))
    batch = CHUNK * 64
    while True:
        conn.sendall(batch)


def _drip(conn: socket.socket) -> None:
    """The right answer to chat requests, status line included, one byte a second."""
    path, stream = _request(conn)
    if not path.endswith("/chat/completions"):
        return _normal(conn, path, stream)
    answer = (
        _head("200 OK", "Content-Type: application/json", f"Content-Length: {len(COMPLETION)}") + COMPLETION
    )
    for index in range(len(answer)):
        conn.sendall(answer[index : index + 1])
        time.sleep(1.0)


def _sse_line_100mb(conn: socket.socket) -> None:
    """A stream whose first and only line is 100 MB long."""
    path, stream = _request(conn)
    if not (path.endswith("/chat/completions") and stream):
        return _normal(conn, path, stream)
    conn.sendall(_head("200 OK", "Content-Type: text/event-stream") + b"data: ")
    for _ in range(HUNDRED_MB // len(PIECE)):
        conn.sendall(PIECE)
    conn.sendall(b"\n\n")


def _deep_json(conn: socket.socket) -> None:
    path, stream = _request(conn)
    if not path.endswith("/chat/completions"):
        return _normal(conn, path, stream)
    if stream:
        _answer(conn, b"data: " + DEEP + b"\n\ndata: [DONE]\n\n", "text/event-stream")
    else:
        _answer(conn, DEEP)


def _broken_chunked(conn: socket.socket) -> None:
    path, stream = _request(conn)
    if not path.endswith("/chat/completions"):
        return _normal(conn, path, stream)
    half = len(COMPLETION) // 2
    conn.sendall(
        _head("200 OK", "Content-Type: application/json", "Transfer-Encoding: chunked")
        + b"%x\r\n%s\r\nzz-not-a-size\r\n%s\r\n0\r\n\r\n" % (half, COMPLETION[:half], COMPLETION[half:])
    )


def _huge_headers(conn: socket.socket) -> None:
    """1 MiB of headers before a correct body."""
    path, stream = _request(conn)
    if not path.endswith("/chat/completions"):
        return _normal(conn, path, stream)
    pads = [f"X-Pad-{index}: {'p' * 1000}" for index in range(1024)]
    conn.sendall(
        _head("200 OK", "Content-Type: application/json", f"Content-Length: {len(COMPLETION)}", *pads)
        + COMPLETION
    )


@dataclass
class _Run:
    exit_code: int
    stdout: str
    stderr: str
    results: dict[str, Any]
    elapsed: float
    peak_mb: float

    @property
    def reasons(self) -> list[str]:
        return [r["reason"] for r in self.results.get("results", []) if r["outcome"] in ("failed", "error")]

    def names(self) -> set[str]:
        """Checks that failed or errored, and the failure names their reasons start with."""
        bad = [r for r in self.results.get("results", []) if r["outcome"] in ("failed", "error")]
        return {r["check"] for r in bad} | {r["reason"].split(":")[0] for r in bad}

    def assert_bounded(self, bound_s: float = BOUND_S) -> None:
        context = (
            f"exit {self.exit_code} after {self.elapsed:.1f} s\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"
        )
        assert self.exit_code == 1, context
        assert self.elapsed < bound_s, context
        assert "Traceback" not in self.stderr + self.stdout, context
        assert self.results.get("results"), context


def _run_contract(
    port: int, tmp_path: Path, *extra: str, timeout_s: float = 1.0, env: dict[str, str] | None = None
) -> _Run:
    """``gateproof contract`` in a child process, with its wall time and peak memory (from wait4)."""
    config = tmp_path / "target.yaml"
    config.write_text(
        f"target: {{base_url: 'http://127.0.0.1:{port}/v1'}}\ntimeout_s: {timeout_s}\nproperty: {{max_examples: 5}}\n"
    )
    report = tmp_path / "r.json"
    command = [
        sys.executable,
        "-m",
        "gateproof.cli",
        "contract",
        "--config",
        str(config),
        "--json",
        str(report),
        *extra,
    ]
    # measured through a small parent: wait4 from pytest itself would count pytest's own size
    peak = tmp_path / "peak.json"
    command = [sys.executable, str(PEAK_RSS), str(peak), *command]
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            env={**os.environ, "GATEPROOF_API_KEY": "gp-hostile-test-key", **(env or {})},
        )
        killer = threading.Timer(BOUND_S * 3, process.kill)  # a hung run still ends the test
        killer.start()
        try:
            process.wait()
        finally:
            killer.cancel()
        elapsed = time.monotonic() - started
    peak_kib = json.loads(peak.read_text())["maxrss_kib"] if peak.exists() else 0
    results = json.loads(report.read_text()) if report.exists() else {}
    return _Run(
        exit_code=process.returncode,
        stdout=(tmp_path / "out").read_text(),
        stderr=(tmp_path / "err").read_text(),
        results=results,
        elapsed=elapsed,
        peak_mb=peak_kib / 1024,  # KiB on Linux
    )


@pytest.mark.parametrize("handler", [_endless_models, _models_100mb], ids=["endless", "100MB"])
def test_a_model_list_without_end_is_bounded(
    serve: Callable[[Handler], int], tmp_path: Path, handler: Handler
) -> None:
    """The probe reads no body; the models scenario and the property layer stop at 8 MiB."""
    run = _run_contract(serve(handler), tmp_path)
    run.assert_bounded()
    assert run.results["unreachable"] is None
    assert "body_too_large" in run.names(), run.reasons
    models = [r for r in run.results["results"] if r["scenario"] == "models_list"]
    assert models and all(r["reason"].startswith("body_too_large: ") for r in models)
    assert any(
        r["layer"] == "property" and r["reason"].startswith("body_too_large: ")
        for r in run.results["results"]
    )
    assert run.peak_mb < MEMORY_CAP_MB, f"peak {run.peak_mb:.0f} MB"


def test_endless_valid_chunks_are_cut_at_the_body_cap(
    serve: Callable[[Handler], int], tmp_path: Path
) -> None:
    run = _run_contract(serve(_endless_chunks), tmp_path)
    run.assert_bounded()
    assert "body_too_large" in run.names(), run.reasons
    assert any("not sent: the target stopped answering" in reason for reason in run.reasons)
    assert run.peak_mb < MEMORY_CAP_MB, f"peak {run.peak_mb:.0f} MB"


def test_a_one_byte_a_second_drip_meets_the_deadline(serve: Callable[[Handler], int], tmp_path: Path) -> None:
    """Each drip costs one deadline (3 s here), and the run gives up after 3: well under a minute.

    Before the deadline a plain answer dripped this way took ~380 s per request.
    """
    run = _run_contract(serve(_drip), tmp_path, timeout_s=3)
    run.assert_bounded(bound_s=40)
    deadlines = [reason for reason in run.reasons if reason.startswith("deadline: ")]
    assert deadlines, run.reasons
    assert "(3 s)" in deadlines[0]
    assert any("last: deadline: " in reason for reason in run.reasons)


def test_a_100mb_sse_line_is_cut_at_the_body_cap(serve: Callable[[Handler], int], tmp_path: Path) -> None:
    run = _run_contract(serve(_sse_line_100mb), tmp_path)
    run.assert_bounded()
    assert "body_too_large" in run.names(), run.reasons
    assert run.peak_mb < MEMORY_CAP_MB, f"peak {run.peak_mb:.0f} MB"


def test_100k_deep_json_is_judged_not_crashed(serve: Callable[[Handler], int], tmp_path: Path) -> None:
    """Deep bodies and deep chunks fail their checks with a reason; their excerpts stay text.

    schemathesis would recurse on them: the forwarder stops the property layer at the first one.
    """
    run = _run_contract(serve(_deep_json), tmp_path)
    run.assert_bounded()
    generated = [r for r in run.results["results"] if r["layer"] == "property"]
    assert generated and all(
        r["reason"].startswith("too_deep: ") for r in generated if r["outcome"] == "error"
    )
    failed = {r["check"]: r for r in run.results["results"] if r["outcome"] == "failed"}
    assert "too deep" in failed["response_schema_conformance"]["reason"]
    assert "nested deeper than 256 levels" in failed["chunk_is_json"]["reason"]
    for check in ("response_schema_conformance", "chunk_is_json"):
        assert isinstance(failed[check]["exchange"]["response_body"], str)


def test_a_redirect_is_a_named_failure_and_never_followed(
    serve: Callable[[Handler], int], tmp_path: Path
) -> None:
    """Every route answers 302 to another loopback server, which must never be contacted."""
    contacted: list[bytes] = []

    def decoy(conn: socket.socket) -> None:
        contacted.append(conn.recv(65536))
        _answer(conn, MODELS)

    decoy_port = serve(decoy)

    def redirect(conn: socket.socket) -> None:
        path, _ = _request(conn)
        conn.sendall(
            _head("302 Found", f"Location: http://127.0.0.1:{decoy_port}{path}", "Content-Length: 0")
        )

    port = serve(redirect)
    run = _run_contract(port, tmp_path)
    run.assert_bounded()
    assert run.results["unreachable"] is None  # a redirect is an HTTP answer
    redirects = [reason for reason in run.reasons if reason.startswith("redirect: ")]
    assert redirects and f"HTTP 302 to http://127.0.0.1:{decoy_port}/v1/" in redirects[0]
    # the status checks are not judged on a 302 either: every check of the scenario is an error
    statuses = [
        r
        for r in run.results["results"]
        if r["check"] == "status_code_expected" and r["outcome"] != "not_applicable"
    ]
    assert statuses and all(r["outcome"] == "error" for r in statuses)
    property_run = _run_contract(port, tmp_path, "--layers", "property")
    property_run.assert_bounded()
    errors = [r["reason"] for r in property_run.results["results"] if r["outcome"] == "error"]
    assert errors and all(reason.startswith("redirect: ") for reason in errors), property_run.reasons
    assert contacted == []


@pytest.mark.parametrize(
    ("handler", "failure"),
    [(_broken_chunked, "protocol_error"), (_huge_headers, "headers_too_large")],
    ids=["broken_chunked", "1MiB_headers"],
)
def test_broken_framing_is_named(
    serve: Callable[[Handler], int], tmp_path: Path, handler: Handler, failure: str
) -> None:
    run = _run_contract(serve(handler), tmp_path)
    run.assert_bounded()
    assert any(reason.startswith(f"{failure}: ") for reason in run.reasons), run.reasons


@pytest.mark.parametrize(
    ("handler", "failure", "timeout_s"),
    [
        (_endless_models, "body_too_large", 1.0),
        (_drip, "deadline", 3.0),
        (_endless_chunks, "body_too_large", 1.0),
    ],
    ids=["endless_models", "drip", "endless_chunks"],
)
def test_the_property_layer_alone_ends_naming_the_failure(
    serve: Callable[[Handler], int], tmp_path: Path, handler: Handler, failure: str, timeout_s: float
) -> None:
    """schemathesis goes through the bounding forwarder: the first transport failure ends the layer."""
    run = _run_contract(serve(handler), tmp_path, "--layers", "property", timeout_s=timeout_s)
    run.assert_bounded(bound_s=40)
    # checks that found a failure before the target broke the wire keep it; every other one is an
    # error naming the transport failure
    errors = [r["reason"] for r in run.results["results"] if r["outcome"] == "error"]
    assert errors and all(reason.startswith(f"{failure}: ") for reason in errors), errors
    assert all("the property layer stopped there" in reason for reason in errors)
    generated = [r for r in run.results["results"] if r["scenario"] != "conversations"]
    assert {r["outcome"] for r in generated} <= {"failed", "error"}
    # the conversation part of the layer needs the mock's journal, which this target has not
    conversations = [r for r in run.results["results"] if r["scenario"] == "conversations"]
    assert conversations and {r["outcome"] for r in conversations} == {"not_applicable"}
    assert run.peak_mb < MEMORY_CAP_MB, f"peak {run.peak_mb:.0f} MB"


def test_a_proxy_in_the_environment_is_not_used(serve: Callable[[Handler], int], tmp_path: Path) -> None:
    """requests would let http_proxy win over the forwarder; the property layer hides it."""
    contacted: list[bytes] = []

    def proxy(conn: socket.socket) -> None:
        contacted.append(conn.recv(65536))

    decoy = f"http://127.0.0.1:{serve(proxy)}"
    env = {"http_proxy": decoy, "HTTP_PROXY": decoy, "ALL_PROXY": decoy}
    run = _run_contract(serve(_answer_garbage), tmp_path, "--layers", "property", env=env)
    run.assert_bounded()
    assert [r for r in run.results["results"] if r["outcome"] == "failed"], run.reasons
    assert contacted == []
