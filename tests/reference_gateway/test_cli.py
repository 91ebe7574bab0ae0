"""``gateproof gateway``: options, the fault list, and a clean exit 2 for what it cannot run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateproof.cli import main
from gateproof.reference_gateway import FAULTS


def test_list_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--list-faults"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(FAULTS)
    assert all(FAULTS[line.split()[0]].description in line for line in lines)


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
        (["--upstream", "anthropic=http://127.0.0.1:1/v1"], "unknown provider 'anthropic'"),
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
        "gateproof gateway: gw.yaml: providers.openai.dialect: unknown dialect 'klingon' (supported: openai)"
    )
    assert "the-secret-key" not in completed.stderr + completed.stdout
