"""Hostile targets for `gateproof load`: raw-socket servers on loopback that send exactly the bytes under test.

A real HTTP server would refuse to send most of these (a 1 MiB header block, an endless single
line, a redirect off loopback), so each target is a few lines of thread-per-connection socket
code. :func:`run_load_process` runs `gateproof load` as its own process, watches the memory of
its process tree (and stops it well before it could hurt the machine) and returns the figures
the tests assert on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateproof.cli import main as gateproof_main
from gateproof.load import LoadResult

#: handler(conn, request_bytes, server): answer one request on a connected socket
Handler = Callable[[socket.socket, bytes, "RawServer"], None]

LOAD_KEY = "gp-load-hostile-key-7f3a"


def read_request(conn: socket.socket) -> bytes:
    """The request head and its Content-Length body (enough for a POST with a JSON body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


class RawServer:
    """A loopback listener that hands each request to ``handler`` on its own thread, counting hits."""

    def __init__(self, handler: Handler) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.handler = handler
        self.stopping = threading.Event()
        self.connections = 0
        self.requests = 0
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sent(self, count: int) -> None:
        with self._lock:
            self.bytes_sent += count

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            with contextlib.suppress(OSError):
                while not self.stopping.is_set():
                    request = read_request(conn)
                    if not request:
                        return
                    with self._lock:
                        self.requests += 1
                    self.handler(conn, request, self)

    def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# --- running `gateproof load` as a process ---------------------------------------------------------


def _tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = int(statm.split()[1]) * page
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0)
        pending.extend(children.get(pid, []))
    return total


@dataclass
class LoadRun:
    """What one `gateproof load` process did."""

    code: int
    stdout: str
    stderr: str
    wall_s: float
    #: the largest resident set of any process of the tree (wait4's ru_maxrss)
    max_rss_bytes: int
    #: the largest sum over the tree seen by polling /proc every 0.1 s
    tree_rss_bytes: int
    killed: str
    result: dict[str, object] | None
    connects: list[str] = field(default_factory=list)

    @property
    def failure_reasons(self) -> dict[str, int]:
        reasons = (self.result or {}).get("failure_reasons", {})
        assert isinstance(reasons, dict)
        return reasons


def run_load_process(
    out: Path,
    base_url: str,
    *args: str,
    audit_dir: Path | None = None,
    rss_limit_bytes: int = 1500 * 1024 * 1024,
    wall_limit_s: float = 90.0,
) -> LoadRun:
    """Run `python -m gateproof.cli load` against ``base_url``; stop it if it grows past the limits.

    With ``audit_dir``, a ``sitecustomize.py`` there logs the address of every ``socket.connect``
    of every Python process of the run (gevent's sockets raise the same audit event) to
    ``connects.log`` in it.
    """
    env = {**os.environ, "GATEPROOF_TEST_LOAD_KEY": LOAD_KEY}
    if audit_dir is not None:
        audit_dir.mkdir(parents=True, exist_ok=True)
        (audit_dir / "sitecustomize.py").write_text(
            "import os, sys\n"
            "_LOG = os.environ.get('GATEPROOF_TEST_CONNECT_LOG', '')\n"
            "def _audit(event, args):\n"
            "    if _LOG and event == 'socket.connect':\n"
            "        with open(_LOG, 'a') as log:\n"
            "            log.write(repr(args[1]) + '\\n')\n"
            "sys.addaudithook(_audit)\n"
        )
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(audit_dir), env.get("PYTHONPATH", "")]))
        env["GATEPROOF_TEST_CONNECT_LOG"] = str(audit_dir / "connects.log")
    command = [
        sys.executable, "-m", "gateproof.cli", "load", "--base-url", base_url,
        "--api-key-env", "GATEPROOF_TEST_LOAD_KEY", "--out", str(out), "--no-plot", *args,
    ]  # fmt: skip
    # measured through a small parent: wait4 from pytest itself would count pytest's own size
    peak = out.parent / f"{out.name}.peak.json"
    command = [sys.executable, str(Path(__file__).parents[1] / "peak_rss.py"), str(peak), *command]
    started = time.monotonic()
    with (
        (out.parent / f"{out.name}.stdout").open("w+") as stdout,
        (out.parent / f"{out.name}.stderr").open("w+") as stderr,
    ):
        process = subprocess.Popen(
            command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        killed = ""
        peak_tree = 0
        while True:
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.monotonic() - started
            peak_tree = max(peak_tree, _tree_rss_bytes(process.pid))
            if not killed and peak_tree > rss_limit_bytes:
                killed = f"resident memory passed {rss_limit_bytes // 2**20} MiB"
            if not killed and elapsed > wall_limit_s:
                killed = f"still running after {wall_limit_s:.0f} s"
            if killed:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.1)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # nothing of the run may outlive it
        stdout.seek(0)
        stderr.seek(0)
        printed, errors = stdout.read(), stderr.read()
    path = out / "load.json"
    result = json.loads(path.read_text()) if path.exists() else None
    connects: list[str] = []
    if audit_dir is not None and (audit_dir / "connects.log").exists():
        connects = (audit_dir / "connects.log").read_text().splitlines()
    return LoadRun(
        code=process.returncode,
        stdout=printed,
        stderr=errors,
        wall_s=wall,
        max_rss_bytes=json.loads(peak.read_text())["maxrss_kib"] * 1024 if peak.exists() else 0,
        tree_rss_bytes=peak_tree,
        killed=killed,
        result=result,
        connects=connects,
    )


def run_load_cli(
    monkeypatch: pytest.MonkeyPatch,
    out: Path,
    base_url: str,
    key: str,
    *args: str,
    key_env: str = "GATEPROOF_TEST_LOAD_KEY",
) -> tuple[int, LoadResult | None]:
    """``gateproof load`` in this process against ``base_url``: its exit code and ``load.json``, if written.

    The key goes through ``key_env`` as a user's would; ``args`` are the run's own flags.
    """
    monkeypatch.setenv(key_env, key)
    code = gateproof_main(
        [
            "load",
            "--base-url",
            base_url,
            "--api-key-env",
            key_env,
            "--out",
            str(out),
            "--stop-timeout",
            "5s",
            *args,
        ]
    )
    path = out / "load.json"
    return code, LoadResult.from_dict(json.loads(path.read_text())) if path.exists() else None
