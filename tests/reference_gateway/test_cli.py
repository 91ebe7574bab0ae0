"""``gateproof gateway``: options, the fault list, and a clean exit 2 for what it cannot run."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateproof.cli import main
from gateproof.cli.launch import LaunchError, start_server
from gateproof.reference_gateway import ListenError, is_loopback_host, is_loopback_url, listen_socket
from gateproof.reference_gateway.providers import ADAPTERS
from gateproof.selftest import FAULTS, LOAD_FAULTS


def test_list_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--list-faults"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the contract self-test's faults, then the ones only a load run sees
    faults = {**FAULTS, **LOAD_FAULTS}
    assert [line.split()[0] for line in lines] == list(faults)
    assert all(faults[line.split()[0]].description in line for line in lines)


def test_help_explains_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["gateway", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--host", "--port", "--config", "--upstream", "--fault", "--list-faults", "--log-level"):
        assert option in text
    assert "GATEPROOF_API_KEY" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fault", "nope"], "unknown fault 'nope' (see --list-faults)"),
        (["--upstream", "openai"], "expected NAME=URL"),
        (["--upstream", "mistral=http://127.0.0.1:1/v1"], "unknown provider 'mistral'"),
        (["--config", "/nonexistent/gw.yaml"], "cannot read config"),
    ],
)
def test_what_it_cannot_run_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gateway", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateproof gateway: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_config_file_exits_2_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(
        "providers:\n  openai: {dialect: klingon, base_url: 'http://127.0.0.1:1/v1'}\n"
        "models:\n  - {id: openai/gpt-4o, provider: openai, created: 1}\n"
        "keys:\n  - {name: k, key: the-secret-key}\n"
    )
    completed = subprocess.run(
        [sys.executable, "-m", "gateproof.cli", "gateway", "--config", str(config), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip() == (
        "gateproof gateway: gw.yaml: providers.openai.dialect: unknown dialect 'klingon'"
        f" (supported: {', '.join(sorted(ADAPTERS))})"
    )
    assert "the-secret-key" not in completed.stderr + completed.stdout


# -- loopback only, and a busy port (exit 2, one line, before anything listens) ---------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.org"])
def test_a_host_off_loopback_exits_2(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--host", host, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"gateproof gateway: --host {host}: refusing to listen off loopback; "
        "use 127.0.0.1 (or any 127.x.y.z), ::1 or localhost"
    )


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "http://192.168.1.10:8081/v1"])
def test_an_upstream_off_loopback_exits_2(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--upstream", f"openai={url}", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gateproof gateway: --upstream openai: {url!r} is not on loopback")
    assert len(err.strip().splitlines()) == 1


def test_a_config_base_url_off_loopback_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(
        "providers:\n  openai: {dialect: openai, base_url: 'https://api.openai.com/v1'}\n"
        "models:\n  - {id: openai/gpt-4o, provider: openai, created: 1}\n"
    )
    assert main(["gateway", "--config", str(config), "--port", "0"]) == 2
    assert capsys.readouterr().err.startswith(
        "gateproof gateway: gw.yaml: providers.openai.base_url: 'https://api.openai.com/v1' is not on loopback"
    )


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateproof.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_busy_port_exits_2_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = _run(["gateway", "--port", str(port)])
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip() == f"gateproof gateway: port {port} on 127.0.0.1 is already in use"


def test_the_launcher_reports_a_busy_port(tmp_path: Path) -> None:
    """``start_server`` on a port in use fails fast with the server's own words (exit 2), not a hang."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LaunchError) as failed:
            start_server("gateway", ["gateway"], port=port, log_dir=tmp_path, ready_timeout=30)
    assert "exited with code 2" in str(failed.value)
    assert f"port {port} on 127.0.0.1 is already in use" in str(failed.value)


def test_listen_socket() -> None:
    with listen_socket("LocalHost", 0) as sock:
        assert sock.getsockname()[0] == "127.0.0.1"
    with listen_socket("127.3.4.5", 0) as sock:
        assert sock.getsockname()[0] == "127.3.4.5"
    with pytest.raises(ListenError, match="not a TCP port"):
        listen_socket("127.0.0.1", 70000)
    assert [is_loopback_host(h) for h in ("::1", "[::1]", "127.0.0.1", "LOCALHOST", "0.0.0.0", "::", "")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert is_loopback_url("http://[::1]:8/v1") and not is_loopback_url("http://localhost.evil.example/")
