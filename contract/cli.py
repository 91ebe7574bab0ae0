"""`gateproof contract`: run the conformance suite against a gateway on loopback.

Exit codes: 0 every applicable required check passed; 1 some failed; 2 bad
input (options, config, missing key); 3 the target could not be reached at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateproof.contract._config import ConfigError, load_target_config
from gateproof.contract._runner import Layers, RunOptions, describe_checks, run_contract
from gateproof.contract.checks import Profile
from gateproof.contract.results import Outcome, RunResult

__all__ = ["DESCRIPTION", "HELP", "configure", "main", "print_summary"]

HELP = "run the conformance suite (schemathesis + scenarios + stream grammar) against a gateway"
DESCRIPTION = """\
Run gateproof's conformance suite against a gateway that listens on loopback.

Three layers share one result model: schemathesis property tests generated from the
reference spec; hand-written scenarios whose responses and SSE chunks are validated
with the spec's JSON Schemas; and a stream grammar state machine over every stream.
When the gateway forwards to a gateproof mock (--mock-url), checks also read the
mock's journal to see what the provider really received.

Config file (YAML), every key optional, flags win:
  target: {base_url, api_key_env, profile, name}
  models: {default: openai/gpt-4o}
  forbidden: {inactive_key_env, restricted_key_env, restricted_model}
  mock: {url: http://127.0.0.1:8081}
  property: {max_examples: 100, seed: 20261125}
  timeout_s: 30

Exit codes: 0 pass, 1 fail, 2 bad input, 3 target unreachable.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help="the gateway's base URL, with /v1 (e.g. http://127.0.0.1:8080/v1)")
    parser.add_argument(
        "--api-key-env",
        help="name of the environment variable holding the gateway key (default GATEPROOF_API_KEY)",
    )
    parser.add_argument(
        "--profile", choices=[p.value for p in Profile], help="what the target claims (default edgee)"
    )
    parser.add_argument("--config", type=Path, help="YAML file with the same settings (see above)")
    parser.add_argument("--name", help="a name for the target in reports")
    parser.add_argument("--model", help="model id the scenarios use (default openai/gpt-4o)")
    parser.add_argument(
        "--mock-url", help="base URL of the gateproof mock behind the target (enables journal checks)"
    )
    parser.add_argument(
        "--max-examples", type=int, help="generated examples per operation in the property layer"
    )
    parser.add_argument(
        "--layers",
        default="scenario,property",
        help="comma-separated layers to run: scenario (includes the stream grammar), property",
    )
    parser.add_argument("--checks", help="comma-separated check names to run (default: all)")
    parser.add_argument("--scenarios", help="comma-separated scenario names to run (default: all)")
    parser.add_argument(
        "--out",
        type=Path,
        help="write the full report (index.html, summary.md, junit.xml, results.json) here",
    )
    parser.add_argument("--junit", type=Path, help="write JUnit XML here")
    parser.add_argument("--json", type=Path, help="write the JSON results here")
    parser.add_argument(
        "--list-checks", action="store_true", help="print every check with its description and exit"
    )


def _split(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def print_summary(run: RunResult) -> None:
    out = sys.stdout
    if run.unreachable:
        print(f"TARGET UNREACHABLE: {run.unreachable}", file=out)
        return
    counts = run.counts
    verdict = "PASS" if run.passed else "FAIL"
    print(
        f"{verdict}: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, "
        f"{counts.get('error', 0)} errors, {counts.get('not_applicable', 0)} not applicable "
        f"({run.profile} profile, {run.finished_at - run.started_at:.1f} s)",
        file=out,
    )
    for result in run.results:
        if result.outcome in (Outcome.FAILED, Outcome.ERROR):
            print(
                f"  {result.outcome.value.upper():6} {result.check} [{result.scenario}] {result.reason}",
                file=out,
            )


def main(args: argparse.Namespace) -> int:
    from gateproof.cli.progress import ProgressLine

    if args.list_checks:
        for layer, name, description in describe_checks():
            print(f"{layer:9} {name:36} {description}")
        return 0
    try:
        config = load_target_config(
            args.config,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            profile=args.profile,
            name=args.name,
            mock_url=args.mock_url,
            property_examples=args.max_examples,
            models={"default": args.model} if args.model else None,
        )
        layers = _split(args.layers) or frozenset()
        unknown = layers - {layer.value for layer in Layers}
        if unknown:
            raise ConfigError(f"unknown layer(s): {', '.join(sorted(unknown))} (known: scenario, property)")
        config.api_key()
        options = RunOptions(
            layers=frozenset(Layers(layer) for layer in layers),
            checks=_split(args.checks),
            scenarios=_split(args.scenarios),
        )
        progress = ProgressLine()
        run = run_contract(config, options, progress=progress)
        progress.done()
    except ConfigError as exc:
        print(f"gateproof contract: {exc}", file=sys.stderr)
        return 2
    write_outputs(run, out=args.out, junit=args.junit, json_path=args.json)
    print_summary(run)
    return run.exit_code()


def write_outputs(run: RunResult, *, out: Path | None, junit: Path | None, json_path: Path | None) -> None:
    from gateproof.reports import render_junit, write_report

    if out is not None:
        files = write_report(out, run, None)
        print(f"report: {files.index_html}")
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(render_junit(run), encoding="utf-8")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        run.write_json(json_path)
