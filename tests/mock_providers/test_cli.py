"""`gateproof mock`: options and help, and the public surface of the package."""

from __future__ import annotations

import subprocess
import sys

import gateproof.mock_providers as mock_providers
from gateproof.cli import build_parser


def test_help_explains_the_directive_grammar_and_faults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "mock", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for needle in ["[[gateproof", "scenario", "ttft_ms", "cid", "X-Gateproof-Correlation-Id", "slow_headers"]:
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
