"""The hostile battery on bad days: a real provider fault behind a real gateway (issue 10, section 5).

``test_battery.py`` aims gateproof at a target that misbehaves byte by byte. This module aims
it at the stack a user would really meet on a bad day: the gateproof mock with its provider
faults (``--chaos-*``, or a default timing no timeout outlasts) behind the reference gateway,
started with one of its resilience faults (``--fault retries_forever``, ``--fault
idle_timeout_ignored``) where the bad day needs a gateway that makes it worse. Each stack
runs inside the battery's loopback-only namespace (``bad_day_stack.py``), and each cell is
one real run of ``gateproof contract`` (the scenario layer, the few scenarios and
failure-matrix cells that meet the fault, the mock's journal read) or ``gateproof load``
against its gateway. The bad days:

- ``reset_mid_stream``: every provider answer drops its connection after a few chunks
  (``--chaos-faults truncate``), behind a correct gateway, which passes the cut on;
- ``reset_before_status``: every provider connection is reset before its status line
  (``--chaos-faults reset``): the gateway retries, then answers 502;
- ``retries_forever``: the gateway asks a failing provider again and again (12 times a
  request): the failure matrix must name ``upstream_attempts_bounded``;
- ``stall_forever``: the provider stops talking mid-stream for ten minutes (``--itl-ms
  600000``; load: ``fault=stall fault_ms=600000``) and the gateway ignores its idle timeout,
  so the stall reaches gateproof: every run must end on gateproof's own timeouts.

Each cell is held to what ``test_battery.py`` holds its cells to (the bound, the memory cap,
no traceback, connects on loopback only, no key in any output, exit non-zero, the report
written, the misbehaviour named); here the stack's logs (mock, gateway, request log) are
searched for keys too, and the provider keys are searched for as well as the client key.
The outcome table is written to ``build/battery/bad_days.md``.

The two faulty-gateway days are judged, not only survived: with a correct gateway in their
place, their contract cells pass and their stream/retry load cells name ``http_502`` or
``no_error_event`` instead of a timeout, so those cells fail. The provider-fault days play a
correct gateway: there the battery proves gateproof meets the fault, as passed on, in bounds.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from gateproof.cli.launch import STACK_FIRST_BYTE_TIMEOUT_S, STACK_STREAM_IDLE_TIMEOUT_S, UPSTREAMS
from tests.battery.test_battery import (
    MEMORY_CAP_MB,
    ROOT,
    Cell,
    Namespace,
    _env,
    _is_loopback,
    _kill_marked,
    _leaks,
    run_cell,
)

#: the fixture runs every stack and cell before the first test; cells are bounded on their own
#: timing: each cell's wall time is held to its bound, so the module runs alone (see the Makefile)
pytestmark = [pytest.mark.timeout(600), pytest.mark.timing]

HERE = Path(__file__).parent
STACK = HERE / "bad_day_stack.py"
#: cells run this many at a time (most of a cell's time is spent waiting on a timeout)
PARALLEL = 4
#: seconds a stack may take to start (two servers, each waited for by its health check)
STACK_START_S = 60.0
#: the provider keys the stacks' gateways hold (one per upstream): secrets as much as the client key
UPSTREAM_KEYS = {up.key_env: f"Up.{up.provider}/key+{secrets.token_hex(4)}=~" for up in UPSTREAMS}
SECRET_FORMS = {
    f"{name} {form}": value
    for name, key in UPSTREAM_KEYS.items()
    for form, value in (
        ("plain", key),
        ("base64", base64.b64encode(key.encode()).decode()),
        ("base64-bearer", base64.b64encode(f"Bearer {key}".encode()).decode()),
        ("urlencoded", quote(key, safe="")),
    )
}
#: the contract's per-request timeout, and the provider timeouts the target declares (D46): what
#: the stack's gateway is started with (cli.launch.STACK_LIMITS), as `gateproof run` declares them
CONTRACT_TIMEOUT_S = 5
DECLARED_TIMEOUTS = (
    f"{{first_byte_s: {STACK_FIRST_BYTE_TIMEOUT_S}, stream_idle_s: {STACK_STREAM_IDLE_TIMEOUT_S}}}"
)
#: a stall no timeout of gateway or harness outlasts: ten minutes, in the mock's milliseconds
FOREVER_MS = "600000"

#: bad day -> (mock arguments, gateway arguments)
STACKS: dict[str, tuple[list[str], list[str]]] = {
    "reset_mid_stream": (["--chaos-rate", "1", "--chaos-faults", "truncate", "--chaos-seed", "1"], []),
    "reset_before_status": (["--chaos-rate", "1", "--chaos-faults", "reset", "--chaos-seed", "1"], []),
    "retries_forever": ([], ["--fault", "retries_forever"]),
    "stall_forever": (["--itl-ms", FOREVER_MS], ["--fault", "idle_timeout_ignored"]),
}


@dataclass(frozen=True)
class BadDayCell:
    """One run: which command meets which bad day, with what, and the names that count as naming it."""

    day: str
    command: str  # "contract", "load-stream" or "load-chat"
    expected: frozenset[str]
    #: contract: the scenarios played (plain ones and failure-matrix cells); load: extra arguments
    scenarios: tuple[str, ...] = ()
    load_args: tuple[str, ...] = ()
    #: contract: a check that must reach a verdict of failure on a failure-matrix cell (not only
    #: error out on a timeout): the bad day is judged, not merely survived
    judged_by: str = ""


_TIMED_OUT = frozenset({"timeout", "deadline"})
CELLS: tuple[BadDayCell, ...] = (
    # a correct gateway passes the cut on: an error event in the stream, 502 after two attempts
    BadDayCell(
        "reset_mid_stream", "contract",
        frozenset({"no_error_event", "stream_error_propagated", "status_code_expected"}),
        scenarios=("chat_basic", "stream_basic", "upstream_reset_mid_answer", "upstream_reset_mid_answer_stream"),
    ),
    BadDayCell("reset_mid_stream", "load-stream", frozenset({"no_error_event", "done_terminates_stream"})),
    BadDayCell("reset_mid_stream", "load-chat", frozenset({"http_502"})),
    BadDayCell(
        "reset_before_status", "contract", frozenset({"status_code_expected"}),
        scenarios=("chat_basic", "stream_basic", "upstream_connection_reset", "upstream_connection_reset_stream"),
    ),
    BadDayCell("reset_before_status", "load-stream", frozenset({"http_502"})),
    # the matrix's 5xx and reset rows count the provider's attempts in the mock's journal
    BadDayCell(
        "retries_forever", "contract", frozenset({"upstream_attempts_bounded"}),
        scenarios=("upstream_server_error", "upstream_server_error_stream", "upstream_connection_reset"),
        judged_by="upstream_attempts_bounded",
    ),
    # 12 attempts a second apart (Retry-After: 1) outlast the 5 s request timeout; a gateway
    # that stops after D44's 2 answers 502 within about a second
    BadDayCell(
        "retries_forever", "load-chat", _TIMED_OUT,
        load_args=("--directive", "scenario=error", "--directive", "status=503", "--directive", "retry_after=1"),
    ),
    # the stall reaches gateproof, whose own timeouts end every request
    BadDayCell(
        "stall_forever", "contract", frozenset({"timeout"}),
        scenarios=("stream_basic", "upstream_stream_stall", "upstream_mid_stream_error"),
    ),
    BadDayCell(
        "stall_forever", "load-stream", _TIMED_OUT,
        load_args=("--directive", "fault=stall", "--directive", f"fault_ms={FOREVER_MS}",
                   "--directive", "fault_after=1"),
    ),
    # not streamed, the gateway's own provider timeout still holds: 504 provider_timeout
    BadDayCell(
        "stall_forever", "load-chat", frozenset({"http_504"}) | _TIMED_OUT, load_args=("--itl-ms", FOREVER_MS)
    ),
)  # fmt: skip
#: a developer may run a few bad days: GATEPROOF_BAD_DAYS_ONLY=stall_forever,retries_forever
DAYS = [day for day in STACKS if day in (os.environ.get("GATEPROOF_BAD_DAYS_ONLY") or day).split(",")]
CELLS = tuple(cell for cell in CELLS if cell.day in DAYS)
CELL_IDS = [f"{cell.day}-{cell.command}" for cell in CELLS]


@dataclass
class Stack:
    day: str
    gateway: str = ""
    mock: str = ""
    log_dir: Path = Path()
    connect_log: Path = Path()
    error: str = ""


@dataclass
class BadDays:
    stacks: dict[str, Stack]
    cells: dict[str, Cell]


def _cell_env(connect_log: Path, marker: str) -> dict[str, str]:
    return {**_env(connect_log, marker), **UPSTREAM_KEYS}


def _start_stacks(
    root: Path, namespace: Namespace, marker: str
) -> tuple[dict[str, Stack], list[subprocess.Popen[bytes]]]:
    """Start every stack at once, then wait (bounded) for each to report its URLs."""
    stacks: dict[str, Stack] = {}
    processes: list[subprocess.Popen[bytes]] = []
    for day in DAYS:
        mock_args, gateway_args = STACKS[day]
        folder = root / f"stack-{day}"
        folder.mkdir(parents=True)
        stack = Stack(day, log_dir=folder / "logs", connect_log=folder / "connects.txt")
        extra = json.dumps({"mock": mock_args, "gateway": gateway_args})
        command = [
            *namespace.prefix(),
            sys.executable,
            str(STACK),
            str(folder / "ready.json"),
            str(stack.log_dir),
            extra,
        ]
        with (folder / "stack.err").open("wb") as err:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env=_cell_env(stack.connect_log, marker), cwd=folder, start_new_session=True,
            )  # fmt: skip
        processes.append(process)
        stacks[day] = stack
    deadline = time.monotonic() + STACK_START_S
    for (day, stack), process in zip(stacks.items(), processes, strict=True):
        ready = root / f"stack-{day}" / "ready.json"
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if ready.exists():
            urls = json.loads(ready.read_text())
            stack.gateway, stack.mock = urls["gateway"], urls["mock"]
        else:
            err = (root / f"stack-{day}" / "stack.err").read_text(errors="replace")
            stack.error = f"the {day} stack did not start (exit {process.poll()}):\n{err[-3000:]}"
    return stacks, processes


def _command(spec: BadDayCell, cell: Cell, stack: Stack) -> list[str]:
    gateproof = [sys.executable, "-m", "gateproof.cli"]
    if spec.command == "contract":
        config = cell.out / "target.yaml"
        config.write_text(
            f"target: {{base_url: '{stack.gateway}', name: bad-day-{spec.day}}}\n"
            f"mock: {{url: '{stack.mock}', upstream_key_env: {UPSTREAMS[0].key_env}}}\n"
            f"timeouts: {DECLARED_TIMEOUTS}\ntimeout_s: {CONTRACT_TIMEOUT_S}\n"
        )
        return [*gateproof, "contract", "--config", str(config), "--layers", "scenario",
                "--scenarios", ",".join(spec.scenarios), "--out", str(cell.out / "report"),
                "--json", str(cell.out / "results.json"), "--junit", str(cell.out / "junit.xml")]  # fmt: skip
    scenario = spec.command.removeprefix("load-")
    return [*gateproof, "load", "--base-url", stack.gateway, "--scenario", scenario, "--users", "2",
            "--spawn-rate", "2", "--duration", "3s", "--request-timeout", "5s", "--stop-timeout", "3s",
            "--no-plot", *spec.load_args, "--out", str(cell.out / "load")]  # fmt: skip


def _run(spec: BadDayCell, cell: Cell, stack: Stack, namespace: Namespace, marker: str) -> Cell:
    """One CLI run under ``peak_rss.py``, killed if it overruns its bound by 30 s (test_battery's runner)."""
    cell.out.mkdir(parents=True, exist_ok=True)
    if stack.error:
        return cell
    run_cell(cell, [*namespace.prefix(), *_command(spec, cell, stack)], _cell_env, marker)
    cell.leaks += _provider_key_leaks(cell.out, cell.stdout + cell.stderr)
    return cell


def _provider_key_leaks(folder: Path, streams: str = "") -> list[str]:
    """Every place under ``folder`` (or in the given streams) where a form of a provider key was written."""
    texts = {"stdout/stderr": streams}
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "connects.txt":
            texts[str(path.relative_to(folder))] = path.read_bytes().decode("utf-8", "replace")
    return [
        f"{form} in {where}"
        for where, text in texts.items()
        for form, value in SECRET_FORMS.items()
        if value in text
    ]


def _client_key_leaks(folder: Path) -> list[str]:
    """Where the client key (any form) was written into a stack's own logs."""
    probe = Cell("", "", out=folder)
    return _leaks(probe)


def _matrix_rows(cell: Cell) -> list[str]:
    """The failure-matrix rows (``CheckResult.fault``) a contract cell's failures fell in."""
    path = cell.out / "results.json"
    if cell.command != "contract" or not path.exists():
        return []
    results = json.loads(path.read_text()).get("results", [])
    rows = {str(r["fault"]) for r in results if r.get("fault") and r["outcome"] in ("failed", "error")}
    return sorted(rows)


def _table(days: BadDays) -> str:
    rows = [
        "| bad day | command | exit | time (s) | peak (MiB) | named as | failure-matrix rows failed |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for spec, key in zip(CELLS, CELL_IDS, strict=True):
        cell = days.cells[key]
        shown = sorted(cell.names & spec.expected)
        rows.append(
            f"| {spec.day} | {spec.command} | {cell.exit_code}{' KILLED' if cell.killed else ''} | "
            f"{cell.wall_s:.1f} | {cell.peak_mb:.0f} | {', '.join(shown) or '-'} | "
            f"{', '.join(_matrix_rows(cell)) or '-'} |"
        )
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def bad_days(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BadDays]:
    root = tmp_path_factory.mktemp("bad_days")
    namespace = Namespace("bad-days")
    marker = secrets.token_hex(8)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        stacks, processes = _start_stacks(root, namespace, marker)
        cells = {
            key: Cell(spec.day, spec.command, out=root / key)
            for spec, key in zip(CELLS, CELL_IDS, strict=True)
        }
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            list(
                pool.map(
                    lambda pair: _run(pair[0], cells[pair[1]], stacks[pair[0].day], namespace, marker),
                    zip(CELLS, CELL_IDS, strict=True),
                )
            )
        days = BadDays(stacks, cells)
        table = _table(days)
        target = ROOT / "build" / "battery"
        target.mkdir(parents=True, exist_ok=True)
        (target / "bad_days.md").write_text(table)
        print("\n" + table)
        yield days
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        namespace.remove()
        _kill_marked(marker)


@pytest.mark.parametrize("spec", CELLS, ids=CELL_IDS)
def test_cell(bad_days: BadDays, spec: BadDayCell) -> None:
    stack = bad_days.stacks[spec.day]
    assert not stack.error, stack.error
    cell = bad_days.cells[f"{spec.day}-{spec.command}"]
    context = f"exit {cell.exit_code}, {cell.wall_s:.1f} s\nstdout:\n{cell.stdout[-3000:]}\nstderr:\n{cell.stderr[-3000:]}"
    assert not cell.killed, f"still running after {cell.bound_s + 30:.0f} s\n{context}"
    assert cell.wall_s <= cell.bound_s, f"took {cell.wall_s:.1f} s, bound {cell.bound_s:.0f} s\n{context}"
    assert cell.peak_mb <= MEMORY_CAP_MB, f"peak {cell.peak_mb:.0f} MiB, cap {MEMORY_CAP_MB:.0f} MiB"
    assert "Traceback" not in cell.stdout + cell.stderr, context
    off_loopback = [line for line in cell.connects if not _is_loopback(line.split()[1])]
    assert not off_loopback, f"connections left loopback: {off_loopback[:5]} ({len(off_loopback)} in all)"
    assert not cell.leaks, f"a key was written out: {cell.leaks}"
    if spec.command == "contract":
        for name in ("results.json", "junit.xml", "report/index.html", "report/summary.md"):
            assert (cell.out / name).exists(), f"{name} missing\n{context}"
        assert not (cell.out / ".hypothesis").exists()
    else:
        assert (cell.out / "load" / "load.json").exists(), f"load.json missing\n{context}"
    assert cell.exit_code not in (0, None), f"a bad day must not pass\n{context}"
    named = cell.names & spec.expected
    assert named, f"expected one of {sorted(spec.expected)}, got {sorted(cell.names)}\n{context}"
    # named where a user reads it too, not only in the results file
    assert any(name in cell.stdout for name in named), f"none of {sorted(named)} on the console\n{context}"
    if spec.judged_by:
        verdicts = _verdicts(cell, spec.judged_by)
        assert verdicts, f"{spec.judged_by} reached no verdict of failure on a failure-matrix cell\n{context}"


def _verdicts(cell: Cell, check: str) -> list[str]:
    """The failure-matrix rows on which ``check`` failed outright (outcome failed, not error)."""
    results = json.loads((cell.out / "results.json").read_text()).get("results", [])
    return [
        str(r["fault"])
        for r in results
        if r["check"] == check and r["outcome"] == "failed" and r.get("fault")
    ]


@pytest.mark.parametrize("day", DAYS)
def test_stack_stayed_on_loopback_and_kept_its_keys(bad_days: BadDays, day: str) -> None:
    """The stack itself (mock and gateway) connected only on loopback and logged no key."""
    stack = bad_days.stacks[day]
    assert not stack.error, stack.error
    connects = stack.connect_log.read_text().splitlines() if stack.connect_log.exists() else []
    assert connects, "the audit hook saw no connect of the stack (the gateway calls the mock)"
    off_loopback = [line for line in connects if not _is_loopback(line.split()[1])]
    assert not off_loopback, f"the stack left loopback: {off_loopback[:5]}"
    folder = stack.log_dir.parent  # the mock's and gateway's logs, the request log, the helper's stderr
    leaks = _client_key_leaks(folder) + _provider_key_leaks(folder)
    assert not leaks, f"a key was written into the stack's logs: {leaks}"
