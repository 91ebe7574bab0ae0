"""The facts a target declares for the Edgee extension checks: its request log and its input prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateproof.contract import ConfigError, TargetConfig
from gateproof.contract._config import load_target_config


def _config(tmp_path: Path, text: str) -> TargetConfig:
    path = tmp_path / "target.yaml"
    path.write_text("target:\n  base_url: http://127.0.0.1:9/v1\n" + text, encoding="utf-8")
    return load_target_config(path)


def test_request_log_and_input_prices_are_read(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "  request_log: /tmp/gw.jsonl\ninput_prices:\n  openai/gpt-4o: 2.5\n  openai/gpt-4o-mini: 1\n",
    )
    assert config.request_log == "/tmp/gw.jsonl"
    assert config.input_prices == {"openai/gpt-4o": 2.5, "openai/gpt-4o-mini": 1.0}


def test_undeclared_they_are_absent(tmp_path: Path) -> None:
    config = _config(tmp_path, "")
    assert config.request_log is None and config.input_prices == {}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("input_prices:\n  openai/gpt-4o: cheap\n", "input_prices"),
        ("input_prices:\n  openai/gpt-4o: true\n", "input_prices"),
        ("input_prices: 2.5\n", "input_prices"),
        ("input_prices:\n  openai/gpt-4o: -1\n", "input_prices"),
        ("  request_log: 7\n", "target.request_log"),
    ],
)
def test_a_wrong_fact_is_a_config_error_naming_it(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        _config(tmp_path, text)
