"""`gateproof contract` on bad input and unreachable targets: clear errors, distinct exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

from gateproof.cli.launch import free_port


def _contract(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "contract", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_list_checks_prints_the_registry() -> None:
    completed = _contract("--list-checks")
    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    assert len(lines) > 40
    assert any(line.split()[1] == "done_terminates_stream" for line in lines)
    assert any(line.split()[1] == "negative_data_rejection" for line in lines)


def test_non_loopback_target_is_refused() -> None:
    completed = _contract("--base-url", "http://192.0.2.10/v1", env={"GATEPROOF_API_KEY": "x"})
    assert completed.returncode == 2
    assert "loopback" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_missing_key_env_is_a_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GATEPROOF_TEST_NO_SUCH_KEY"}
    completed = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "contract", "--base-url", "http://127.0.0.1:9/v1",
         "--api-key-env", "GATEPROOF_TEST_NO_SUCH_KEY"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert completed.returncode == 2
    assert "GATEPROOF_TEST_NO_SUCH_KEY" in completed.stderr


def test_unreachable_target_exits_3_with_a_report(tmp_path: object) -> None:
    port = free_port()
    completed = _contract(
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--json",
        f"{tmp_path}/r.json",
        env={"GATEPROOF_API_KEY": "k"},
    )
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "UNREACHABLE" in completed.stdout
    assert "Traceback" not in completed.stderr


def test_unknown_profile_is_refused() -> None:
    completed = _contract("--base-url", "http://127.0.0.1:9/v1", "--profile", "nope")
    assert completed.returncode == 2
