"""`gateproof mock`: options and help, and the public surface of the package."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import gateproof.mock_providers as mock_providers
from gateproof.cli import build_parser
from gateproof.openapi import CORRELATION_HEADER, DIRECTIVE_MARKER, JOURNAL_PATH


def test_help_explains_the_directive_grammar_and_faults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "mock", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for needle in [
        DIRECTIVE_MARKER,
        "scenario",
        "ttft_ms",
        "cid",
        CORRELATION_HEADER,
        JOURNAL_PATH,
        "slow_headers",
    ]:
        assert needle in result.stdout
    for option in ["--host", "--port", "--ttft-ms", "--itl-ms", "--journal-size", "--log-level"]:
        assert option in result.stdout


def test_defaults() -> None:
    parser, _ = build_parser()
    args = parser.parse_args(["mock"])
    assert (args.host, args.port, args.ttft_ms, args.itl_ms, args.journal_size) == (
        "127.0.0.1",
        8081,
        0,
        0,
        10_000,
    )


def test_public_names_are_exactly_all() -> None:
    public = {name for name in vars(mock_providers) if not name.startswith("_")}
    public -= {"annotations", "dialects", "cli"}  # subpackages/modules, not re-exports
    assert public == set(mock_providers.__all__)


def _run_mock(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "mock", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_host_off_loopback_exits_2(host: str) -> None:
    completed = _run_mock("--host", host, "--port", "0")
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        f"gateproof mock: --host {host}: refusing to listen off loopback; "
        "use 127.0.0.1 (or any 127.x.y.z), ::1 or localhost"
    )


def test_a_busy_port_exits_2_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = _run_mock("--port", str(port))
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip() == f"gateproof mock: port {port} on 127.0.0.1 is already in use"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["--api-key-env", "GATEPROOF_SURELY_UNSET_KEY"],
            "--api-key-env GATEPROOF_SURELY_UNSET_KEY: the variable",
        ),
        (["--no-auth", "--api-key-env", "HOME"], "--no-auth and --api-key-env exclude each other"),
        (["--models", "/nonexistent/models.yaml"], "--models: cannot read"),
    ],
)
def test_bad_key_or_model_options_exit_2(argv: list[str], says: str) -> None:
    completed = _run_mock(*argv, "--port", "0")
    assert completed.returncode == 2
    assert says in completed.stderr
