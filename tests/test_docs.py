"""The user docs stay true: their config example loads, and every gateproof command they show parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from gateproof.cli import build_parser
from gateproof.contract import load_target_config

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _yaml_blocks(markdown: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", markdown, flags=re.DOTALL)


def test_the_config_example_of_your_gateway_md_loads(tmp_path: Path) -> None:
    blocks = _yaml_blocks((DOCS / "your-gateway.md").read_text(encoding="utf-8"))
    assert blocks, "docs/your-gateway.md shows a config example"
    path = tmp_path / "gateproof.yaml"
    path.write_text(blocks[0], encoding="utf-8")
    config = load_target_config(path).validate()
    assert config.extra_headers == {"x-portkey-provider": "openai"}
    assert config.auth_required is True and config.key_passthrough is False
    assert config.model_for("tools_auto") == "my-tools-model"
    assert config.upstream_model_for("openai/gpt-4o") == "gpt-4o"


def _gateproof_commands(text: str) -> list[list[str]]:
    """Every ``.../gateproof <subcommand> ...`` command line of a shell script, continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        match = re.search(r"\.venv/bin/gateproof (.*)", line)
        if match:
            words = shlex.split(match.group(1), comments=True)
            cut = next((i for i, w in enumerate(words) if w in (">", "&", "2>&1", "|")), len(words))
            commands.append(words[:cut])
    return commands


@pytest.mark.parametrize("name", ["github-actions-gate.yml", "your-gateway.md"])
def test_every_gateproof_command_in_the_docs_parses(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    if name.endswith(".yml"):
        workflow = yaml.safe_load(text)
        assert workflow["jobs"], "the workflow defines a job"
        text = "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])
    commands = _gateproof_commands(text)
    assert commands, f"{name} shows gateproof commands"
    parser, _modules = build_parser()
    for words in commands:
        words = [w.replace("$(openssl rand -hex 8)", "x") for w in words]
        try:
            parser.parse_args(words)
        except SystemExit as exit_:  # argparse exits 2 on an unknown option
            raise AssertionError(f"{name}: `gateproof {' '.join(words)}` does not parse") from exit_
