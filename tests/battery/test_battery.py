"""The hostile-target battery: every misbehaviour, against `gateproof contract` and `gateproof load`.

For each behaviour of ``hostile_server.py`` and each command, one real run of the CLI (a
subprocess, as a user would start it) against a target that misbehaves in exactly that way.
Each cell must:

- end within its time bound (``CONTRACT_BOUND_S`` / ``LOAD_BOUND_S``) on its own;
- stay under the peak-memory cap (``MEMORY_CAP_MB``, the process and every child it reaped,
  from ``wait4``'s rusage, read by ``tests/peak_rss.py``);
- name the misbehaviour (a failed check or a transport failure name from
  ``gateproof.contract.TransportFailure``), exit non-zero, print no traceback, and write its
  report files;
- never leave loopback: every ``connect()`` of every Python process involved is logged by an
  audit hook (``audit/sitecustomize.py``) and must go to 127.0.0.0/8 or ::1; and where this
  machine allows it (root and ``ip netns``), everything runs inside a fresh loopback-only
  network namespace, so nothing could leave even if it tried;
- never write the API key, nor its base64 or URL-encoded forms, into any output.

The cells run a few at a time in one module fixture; each cell is then its own test. The
table of outcomes (time, peak memory, named failure) is written to
``build/battery/table.md`` and printed at the end of the session for the record.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

#: the session fixture runs every cell before the first test; this covers it (cells are bounded)
#: timing: each cell's wall time is held to its bound, so the module runs alone (see the Makefile)
pytestmark = [pytest.mark.timeout(1800), pytest.mark.timing]

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SERVER = HERE / "hostile_server.py"
AUDIT = HERE / "audit"
PEAK_RSS = HERE.parent / "peak_rss.py"

#: an unshaped key (no sk- prefix) with characters that change under URL and base64 encoding
API_KEY = "Zq9.bat/tery+KEY=7Tx~" + secrets.token_hex(4)
KEY_FORMS = {
    "plain": API_KEY,
    "base64": base64.b64encode(API_KEY.encode()).decode(),
    "base64-bearer": base64.b64encode(f"Bearer {API_KEY}".encode()).decode(),
    "urlencoded": quote(API_KEY, safe=""),
}

#: seconds a cell may take, from start to exit, on this 2-core machine under the battery's own load
CONTRACT_BOUND_S = 90.0
LOAD_BOUND_S = 60.0
#: peak resident memory of one command and everything it started, in MiB
MEMORY_CAP_MB = 600.0
#: cells run this many at a time
PARALLEL = 3

#: behaviour -> names that count as the behaviour being named (contract, load stream, load chat);
#: None: that command does not meet the behaviour (e.g. load never asks for the model list)
EXPECTED: dict[str, tuple[set[str], set[str] | None, set[str] | None]] = {
    "hang_before_headers": ({"timeout"}, {"timeout"}, None),
    "hang_mid_stream": ({"timeout"}, {"timeout", "deadline"}, None),
    "endless_chunks": ({"body_too_large", "deadline"}, {"body_too_large", "deadline"}, {"body_too_large", "deadline"}),
    "endless_models": ({"body_too_large", "deadline"}, None, None),
    "body_100mb": ({"body_too_large"}, {"body_too_large"}, {"body_too_large"}),
    "sse_line_100mb": ({"body_too_large", "sse_framing"}, {"body_too_large"}, None),
    "invalid_utf8": ({"sse_framing", "response_schema_conformance"}, {"sse_framing"}, {"invalid_json"}),
    # printable lines without a colon are fields SSE ignores: no event at all arrives
    "garbage_sse": ({"chunk_is_json", "sse_framing", "done_terminates_stream"}, {"chunk_is_json", "sse_framing", "done_terminates_stream"}, None),
    "no_blank_lines": ({"chunk_is_json", "sse_framing"}, {"chunk_is_json", "sse_framing"}, None),
    "reset_mid_body": ({"connection_reset", "connection_closed"}, {"connection_reset", "connection_closed"}, None),
    "drip": ({"deadline", "timeout"}, {"deadline", "timeout"}, None),
    "wrong_content_type": ({"content_type_matches_mode"}, {"content_type_matches_mode"}, {"content_type_matches_mode"}),
    "broken_chunked": ({"protocol_error"}, {"protocol_error"}, None),
    "redirect_offhost": ({"redirect"}, {"redirect"}, None),
    "redirect_loopback": ({"redirect"}, {"redirect"}, None),
    "empty_200": ({"response_schema_conformance", "done_terminates_stream"}, {"done_terminates_stream", "no_content"}, {"invalid_json"}),
    "html_error": ({"status_code_expected", "error_body_conforms"}, {"http_502"}, None),
    "duplicate_keys": ({"no_duplicate_json_keys"}, None, None),
    "numbers_as_strings": ({"response_schema_conformance", "chunk_schema_conformance", "usage_totals_add_up"}, {"usage_totals_add_up"}, {"no_usage"}),
    "deep_json": ({"response_schema_conformance", "chunk_is_json"}, {"chunk_is_json"}, {"too_deep"}),
    "huge_headers": ({"headers_too_large"}, {"headers_too_large"}, None),
    "no_content_204": ({"status_code_expected"}, {"http_204", "content_type_matches_mode"}, None),
    "immediate_close": ({"connection_closed"}, {"connection_closed"}, None),
    "echo_key_401": ({"configured_key_accepted"}, {"http_401"}, None),
}  # fmt: skip

#: (behaviour, command): command is "contract", "load-stream" or "load-chat"
CELLS = [
    (behaviour, command)
    for behaviour, (contract, stream, chat) in EXPECTED.items()
    for command, expected in (("contract", contract), ("load-stream", stream), ("load-chat", chat))
    if expected is not None or command == "load-stream"
    # a developer may run a few behaviours: GATEPROOF_BATTERY_ONLY=drip,deep_json
    if behaviour in (os.environ.get("GATEPROOF_BATTERY_ONLY") or behaviour).split(",")
]


@dataclass
class Cell:
    behaviour: str
    command: str
    out: Path
    exit_code: int | None = None
    killed: bool = False
    wall_s: float = 0.0
    peak_mb: float = 0.0
    stdout: str = ""
    stderr: str = ""
    names: set[str] = field(default_factory=set)
    connects: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    @property
    def bound_s(self) -> float:
        return CONTRACT_BOUND_S if self.command == "contract" else LOAD_BOUND_S


class Namespace:
    """A loopback-only network namespace (or, where none can be made, the host's own network)."""

    def __init__(self, label: str = "battery") -> None:
        self.name = ""
        if os.environ.get("GATEPROOF_BATTERY_NETNS", "1") != "0" and os.geteuid() == 0 and shutil.which("ip"):
            # the label keeps two batteries of one pytest process in namespaces of their own
            name = f"gp-{label}-{os.getpid()}"
            made = subprocess.run(["ip", "netns", "add", name], capture_output=True, timeout=10, check=False)
            if made.returncode == 0:
                subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
                self.name = name

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name] if self.name else []

    def kill_everything(self) -> None:
        if not self.name:
            return
        listed = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, timeout=10
        )
        for pid in listed.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    def remove(self) -> None:
        if self.name:
            self.kill_everything()
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10, check=False)


@dataclass
class Battery:
    namespace: Namespace
    port: int
    decoy_port: int
    server_log: Path
    cells: dict[tuple[str, str], Cell]


def _env(connect_log: Path, marker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        GATEPROOF_API_KEY=API_KEY,
        PYTHONPATH=os.pathsep.join([str(AUDIT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        GATEPROOF_CONNECT_LOG=str(connect_log),
        GATEPROOF_BATTERY_RUN=marker,
        NO_PROXY="127.0.0.1,localhost,::1",
    )
    return env


def _command(cell: Cell, port: int) -> list[str]:
    base_url = f"http://127.0.0.1:{port}/{cell.behaviour}/v1"
    gateproof = [sys.executable, "-m", "gateproof.cli"]
    if cell.command == "contract":
        config = cell.out / "target.yaml"
        config.write_text(
            f"target: {{base_url: '{base_url}', name: hostile-{cell.behaviour}}}\n"
            "timeout_s: 3\nproperty: {max_examples: 3}\n"
        )
        return [*gateproof, "contract", "--config", str(config), "--out", str(cell.out / "report"),
                "--json", str(cell.out / "results.json"), "--junit", str(cell.out / "junit.xml")]  # fmt: skip
    scenario = cell.command.removeprefix("load-")
    return [*gateproof, "load", "--base-url", base_url, "--scenario", scenario, "--users", "2",
            "--spawn-rate", "2", "--duration", "3s", "--request-timeout", "5s", "--stop-timeout", "3s",
            "--no-mock-directive", "--out", str(cell.out / "load")]  # fmt: skip


def _run(cell: Cell, battery: Battery, marker: str) -> Cell:
    cell.out.mkdir(parents=True, exist_ok=True)
    return run_cell(cell, [*battery.namespace.prefix(), *_command(cell, battery.port)], _env, marker)


def run_cell(
    cell: Cell, command: list[str], env_for: Callable[[Path, str], dict[str, str]], marker: str = ""
) -> Cell:
    """Run one cell's CLI under ``peak_rss.py`` (killed 30 s past its bound) and read what it left."""
    cell.out.mkdir(parents=True, exist_ok=True)
    connect_log = cell.out / "connects.txt"
    # measured through a small parent: wait4 from pytest itself would count pytest's own size
    peak = cell.out / "peak.json"
    command = [sys.executable, str(PEAK_RSS), str(peak), *command]
    started = time.monotonic()
    with (cell.out / "stdout.txt").open("wb") as out, (cell.out / "stderr.txt").open("wb") as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cell.out,
            env=env_for(connect_log, marker), start_new_session=True,
        )  # fmt: skip

        def overrun() -> None:
            cell.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(cell.bound_s + 30.0, overrun)
        timer.start()
        try:
            process.wait()
        finally:
            timer.cancel()
    cell.wall_s = time.monotonic() - started
    cell.exit_code = process.returncode
    cell.peak_mb = json.loads(peak.read_text())["maxrss_kib"] / 1024.0 if peak.exists() else 0.0
    cell.stdout = (cell.out / "stdout.txt").read_text(errors="replace")
    cell.stderr = (cell.out / "stderr.txt").read_text(errors="replace")
    cell.connects = connect_log.read_text().splitlines() if connect_log.exists() else []
    cell.names = _names(cell)
    cell.leaks = _leaks(cell)
    return cell


def _names(cell: Cell) -> set[str]:
    """The failure names a cell's results carry: failed or errored checks, transport failure names."""
    names: set[str] = set()
    if cell.command == "contract":
        path = cell.out / "results.json"
        if not path.exists():
            return names
        data = json.loads(path.read_text())
        if data.get("unreachable"):
            names.add("unreachable")
            names.update(word.strip(":,()") for word in str(data["unreachable"]).split())
        for result in data.get("results", []):
            if result["outcome"] in ("failed", "error"):
                names.add(result["check"])
                names.add(str(result.get("reason", "")).split(":")[0].strip())
        return names
    path = cell.out / "load" / "load.json"
    if path.exists():
        names.update(json.loads(path.read_text()).get("failure_reasons", {}))
    return names


def _leaks(cell: Cell) -> list[str]:
    """Every place (file or stream) where a form of the API key was written."""
    found = []
    texts = {"stdout": cell.stdout, "stderr": cell.stderr}
    for path in cell.out.rglob("*"):
        if path.is_file() and path.name not in ("connects.txt",):
            texts[str(path.relative_to(cell.out))] = path.read_bytes().decode("utf-8", "replace")
    for where, text in texts.items():
        for form, value in KEY_FORMS.items():
            if value in text:
                found.append(f"{form} in {where}")
    return found


def _is_loopback(host: str) -> bool:
    if host.startswith("unix:"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _table(cells: dict[tuple[str, str], Cell]) -> str:
    rows = [
        "| behaviour | command | exit | time (s) | peak (MiB) | named as |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (behaviour, command), cell in sorted(cells.items()):
        expected = _expected(behaviour, command)
        shown = sorted(cell.names & expected) if expected else ["(not met: passes)"]
        rows.append(
            f"| {behaviour} | {command} | {cell.exit_code}{' KILLED' if cell.killed else ''} | "
            f"{cell.wall_s:.1f} | {cell.peak_mb:.0f} | {', '.join(shown) or '-'} |"
        )
    return "\n".join(rows) + "\n"


def _expected(behaviour: str, command: str) -> set[str] | None:
    contract, stream, chat = EXPECTED[behaviour]
    return {"contract": contract, "load-stream": stream, "load-chat": chat}[command]


@pytest.fixture(scope="module")
def battery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Battery]:
    root = tmp_path_factory.mktemp("battery")
    namespace = Namespace()
    marker = secrets.token_hex(8)
    port_file, server_log = root / "port.json", root / "server.jsonl"
    server = subprocess.Popen(
        [*namespace.prefix(), sys.executable, str(SERVER), "--port-file", str(port_file), "--log", str(server_log)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=(root / "server.err").open("wb"),
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"the hostile server did not start: {(root / 'server.err').read_text()}")
            time.sleep(0.05)
        time.sleep(0.05)
        ports = json.loads(port_file.read_text())
        cells = {key: Cell(*key, out=root / f"{key[0]}-{key[1]}") for key in CELLS}
        battery = Battery(namespace, ports["port"], ports["decoy_port"], server_log, cells)
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            list(pool.map(lambda cell: _run(cell, battery, marker), cells.values()))
        table = _table(cells)
        target = ROOT / "build" / "battery"
        target.mkdir(parents=True, exist_ok=True)
        (target / "table.md").write_text(table)
        print("\n" + table)
        yield battery
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        namespace.remove()
        _kill_marked(marker)


def _kill_marked(marker: str) -> None:
    """Kill any process left behind by a cell (found by the marker in its environment)."""
    needle = f"GATEPROOF_BATTERY_RUN={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.mark.parametrize(("behaviour", "command"), CELLS, ids=[f"{b}-{c}" for b, c in CELLS])
def test_cell(battery: Battery, behaviour: str, command: str) -> None:
    cell = battery.cells[(behaviour, command)]
    context = f"exit {cell.exit_code}, {cell.wall_s:.1f} s\nstdout:\n{cell.stdout[-3000:]}\nstderr:\n{cell.stderr[-3000:]}"
    assert not cell.killed, f"still running after {cell.bound_s + 30:.0f} s\n{context}"
    assert cell.wall_s <= cell.bound_s, f"took {cell.wall_s:.1f} s, bound {cell.bound_s:.0f} s\n{context}"
    assert cell.peak_mb <= MEMORY_CAP_MB, f"peak {cell.peak_mb:.0f} MiB, cap {MEMORY_CAP_MB:.0f} MiB"
    assert "Traceback" not in cell.stdout + cell.stderr, context
    off_loopback = [line for line in cell.connects if not _is_loopback(line.split()[1])]
    assert not off_loopback, f"connections left loopback: {off_loopback[:5]} ({len(off_loopback)} in all)"
    assert not cell.leaks, f"the API key was written out: {cell.leaks}"
    expected = _expected(behaviour, command)
    if command == "contract":
        for name in ("results.json", "junit.xml", "report/index.html", "report/summary.md"):
            assert (cell.out / name).exists(), f"{name} missing\n{context}"
        # the run's working directory is cell.out: hypothesis' caches must not land there
        assert not (cell.out / ".hypothesis").exists()
    else:
        assert (cell.out / "load" / "load.json").exists(), f"load.json missing\n{context}"
    if expected is None:
        return
    assert cell.exit_code not in (0, None), f"a hostile target must not pass\n{context}"
    assert cell.names & expected, f"expected one of {sorted(expected)}, got {sorted(cell.names)}\n{context}"


def test_redirects_are_never_followed(battery: Battery) -> None:
    """Neither command ever reached the decoy a loopback redirect pointed at."""
    if not any(behaviour == "redirect_loopback" for behaviour, _ in CELLS):
        pytest.skip("redirect_loopback is not among the selected behaviours")
    hits = [json.loads(line) for line in battery.server_log.read_text().splitlines()]
    assert [hit for hit in hits if hit["decoy"]] == []
    assert any(hit["behaviour"] == "redirect_loopback" for hit in hits)
