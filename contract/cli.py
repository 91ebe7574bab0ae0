"""`gateproof contract`: run the conformance suite against a gateway on loopback.

Exit codes: 0 every applicable required check passed; 1 some failed; 2 bad
input (options, config, missing key, a selection that selects no check); 3 the
target could not be reached at all; 130 interrupted (143 on SIGTERM, see
``gateproof.cli``), with the report files written and saying so.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from gateproof.contract._config import (
    ConfigError,
    TargetConfig,
    load_target_config,
    parse_header,
    parse_provider,
)
from gateproof.contract._runner import Layers, RunOptions, describe_checks, run_contract
from gateproof.contract._scenarios import SCENARIOS
from gateproof.contract.checks import Profile
from gateproof.contract.results import Outcome, RunResult, Severity, redact_run

__all__ = ["DESCRIPTION", "HELP", "configure", "main", "print_summary"]

HELP = "run the conformance suite (schemathesis + scenarios + stream grammar) against a gateway"
DESCRIPTION = """\
Run gateproof's conformance suite against a gateway that listens on loopback.

Three layers share one result model: schemathesis property tests generated from the
reference spec, with generated multi-turn conversations sent through every provider
route and judged against the mock's journal; hand-written scenarios whose responses
and SSE chunks are validated with the spec's JSON Schemas; and a stream grammar
state machine over every stream.
When the gateway forwards to a gateproof mock (--mock-url), checks also read the
mock's journal to see what the provider really received.

Config file (YAML), every key optional, flags win:
  target: {base_url, api_key_env, profile, name,
           extra_headers: {Name: value},   # sent on every request (--header 'Name: value')
           key_passthrough: false,         # true: the target forwards the caller's key by design
           auth_required: true,            # false: the target runs without auth by design
           request_log: PATH}              # the target's JSON-lines request log (tags checks)
  models: {default: openai/gpt-4o, <scenario>: <model id>}   # the model each scenario sends
  upstream_models: {<model sent>: <model the provider should receive>}
  providers: {openai: openai/gpt-4o, anthropic: anthropic/claude-haiku-4-5, gemini: google/gemini-2.5-flash}
                                  # provider routes: mock dialect -> the model id that reaches it
  input_prices: {<model id>: <USD per million input tokens>}  # cost_savings checked against it
  forbidden: {inactive_key_env, restricted_key_env, restricted_model}
  mock: {url: http://127.0.0.1:8081, upstream_key_env: NAME}
  property: {max_examples: 100, seed: 20261125}
  timeout_s: 30
Every key is checked for its type, and an unknown key is an error (exit 2, naming the
valid ones). `models` keys are `default` or a scenario name (--scenarios names them; e.g.
tools_auto: openai/gpt-4.1 for the tool scenario only); --model sets `default`.
`upstream_models` declares what the provider behind the mock should be asked for
(a gateway mapping the alias `fast` to `gpt-4o-mini`: {fast: gpt-4o-mini}); in the
openai-core profile only a declared mapping is checked, in edgee an undeclared one must
be the id without its {author}/ prefix. With key_passthrough the check
client_key_not_forwarded is replaced by client_key_forwarded_unchanged; with
auth_required: false the auth scenarios report one failure of auth_enforced (anyone who
reaches the target gets completions) and skip the rest. extra_headers values appear in
reports like every request header: put no key in them.

Provider routes: the scenarios that judge translation (chat, streams, tools, tool results,
limits, refusals, usage, provider errors) run once per route of `providers` (or
--provider DIALECT=MODEL, repeatable), the first route under the plain scenario names and
every other one as `<scenario>[<dialect>]`; with the mock, routed_to_declared_provider checks
that each model reached its dialect. Without `providers`: one route, openai, the default model.

Severity: every failure is an error or a warning. Errors (what reaches the provider,
auth, status semantics, usage) fail the run; warnings (shape deviations the official
openai client tolerates, measured by replaying the answer through it) fail it only with
--strict. A check whose prerequisite failed on the same answer is reported skipped
(because <that check>): one root cause, one failure.

Every configured key (target, inactive, restricted, the mock's upstream key) and the
wrong keys the auth scenarios make up are redacted from every output, in every
encoding (plain, base64, URL-encoded, escaped), also when the target echoes them.

Bad harness input is never a pass: an unknown name in --checks/--scenarios/--layers or
in the config is exit 2 with the valid names; a --mock-url whose GET /_gateproof/health
does not answer is exit 3 naming the mock; a target that refuses the configured key (401
or 403 on a basic request) is one failure of configured_key_accepted, the scenarios sent
with that key skipped.

Exit codes: 0 pass, 1 an error-severity failure (or, with --strict, any failure), 2 bad
input, 3 target or mock unreachable, 130 interrupted (143 on SIGTERM).
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
    parser.add_argument(
        "--model", help="model id the scenarios use (default openai/gpt-4o; sets models.default)"
    )
    parser.add_argument(
        "--provider",
        action="append",
        metavar="DIALECT=MODEL",
        help="a provider route: the mock dialect (openai, anthropic, gemini) a model id reaches "
        "through the target (repeatable; replaces the config's providers)",
    )
    parser.add_argument(
        "--header",
        action="append",
        metavar="'NAME: VALUE'",
        help="a header sent on every request (repeatable; adds to target.extra_headers)",
    )
    parser.add_argument(
        "--key-passthrough",
        action="store_const",
        const=True,
        help="the target forwards the caller's key to the provider by design (target.key_passthrough)",
    )
    parser.add_argument(
        "--no-auth-required",
        dest="auth_required",
        action="store_const",
        const=False,
        help="the target runs without authentication by design (target.auth_required: false)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="warnings fail the run too (default: only errors do)"
    )
    parser.add_argument(
        "--mock-url", help="base URL of the gateproof mock behind the target (enables journal checks)"
    )
    parser.add_argument(
        "--max-examples", type=int, help="generated examples per operation in the property layer"
    )
    parser.add_argument(
        "--layers",
        default="scenario,property",
        help="comma-separated layers to run: scenario (includes the stream grammar), property "
        "(includes the generated multi-turn conversations)",
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
    """None when the option was not given; else the names it lists (possibly none: "" or ",")."""
    if value is None:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _refuse(option: str, problem: str, valid: Iterable[str]) -> ConfigError:
    return ConfigError(f"{option}: {problem}; valid names: {', '.join(sorted(valid))}")


def selection(
    layers: str | None, checks: str | None, scenarios: str | None, *, strict: bool = False
) -> RunOptions:
    """The run options for ``--layers/--checks/--scenarios``, refused when they select no check.

    An unknown name, an empty list, or checks that belong to none of the chosen layers would
    otherwise run nothing, and a run of nothing passes: that must be bad input (exit 2), naming
    the valid choices, before any request is sent.
    """
    layer_names = {layer.value for layer in Layers}
    chosen_layers = _split(layers)
    if chosen_layers is None:
        chosen_layers = frozenset(layer_names)
    if not chosen_layers:
        raise _refuse("--layers", "selects no layer", layer_names)
    if chosen_layers - layer_names:
        raise _refuse(
            "--layers", f"unknown layer(s) {', '.join(sorted(chosen_layers - layer_names))}", layer_names
        )
    by_layer: dict[str, set[str]] = {}
    for layer, name, _ in describe_checks():
        # The scenario layer runs the scenario checks and the stream grammar's rules.
        by_layer.setdefault(Layers.PROPERTY if layer == Layers.PROPERTY else Layers.SCENARIO, set()).add(name)
    all_checks = set().union(*by_layer.values())
    chosen_checks = _split(checks)
    if chosen_checks is not None:
        if not chosen_checks:
            raise _refuse("--checks", "selects no check", all_checks)
        if chosen_checks - all_checks:
            raise _refuse(
                "--checks", f"unknown check(s) {', '.join(sorted(chosen_checks - all_checks))}", all_checks
            )
        runnable = set().union(*(by_layer[layer] for layer in chosen_layers))
        if not chosen_checks & runnable:
            raise _refuse(
                "--checks",
                f"none of these checks belongs to the chosen layers ({', '.join(sorted(chosen_layers))})",
                runnable,
            )
    scenario_names = {scenario.name for scenario in SCENARIOS}
    chosen_scenarios = _split(scenarios)
    if chosen_scenarios is not None:
        if not chosen_scenarios:
            raise _refuse("--scenarios", "selects no scenario", scenario_names)
        if chosen_scenarios - scenario_names:
            raise _refuse(
                "--scenarios",
                f"unknown scenario(s) {', '.join(sorted(chosen_scenarios - scenario_names))}",
                scenario_names,
            )
    return RunOptions(
        layers=frozenset(Layers(layer) for layer in chosen_layers),
        checks=chosen_checks,
        scenarios=chosen_scenarios,
        strict=strict,
        run_id=time.strftime("run-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3),
    )


def interrupted_run(config: TargetConfig, run_id: str, started_at: float) -> RunResult:
    """What an interrupted run reports: who and when, flagged interrupted, so it can never pass.

    The results recorded before the interrupt went down with the runner's stack; claiming
    anything about the checks would be a guess.
    """
    return RunResult(
        run_id=run_id,
        target=config.name,
        base_url=config.base_url,
        profile=config.profile.value,
        started_at=started_at,
        finished_at=time.time(),
        interrupted=True,
        metadata={"seed": config.seed, "property_examples": config.property_examples},
    )


def print_summary(run: RunResult) -> None:
    out = sys.stdout
    if run.interrupted:
        print(
            f"INTERRUPTED: the run was stopped before it finished ({len(run.results)} results recorded); "
            "not a pass",
            file=out,
        )
        return
    if run.unreachable:
        print(f"UNREACHABLE: {run.unreachable}", file=out)
        return
    from gateproof.reports import verdict_of  # the one verdict the report files show too

    counts = run.counts
    verdict = verdict_of(run, None).label
    warnings = len(run.warnings)
    print(
        f"{verdict}: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed "
        f"({warnings} warning{'' if warnings == 1 else 's'}{', strict' if run.strict else ''}), "
        f"{counts.get('error', 0)} errors, {counts.get('skipped', 0)} skipped, "
        f"{counts.get('not_applicable', 0)} not applicable "
        f"({run.profile} profile, {run.finished_at - run.started_at:.1f} s)",
        file=out,
    )
    from gateproof.reports import failure_matrix_headline, provider_headline

    routes = provider_headline(run.results)
    if routes:
        print(f"  {routes}", file=out)
    matrix = failure_matrix_headline(run.results)
    if matrix:
        print(f"  {matrix}", file=out)
    for result in run.results:
        if result.outcome in (Outcome.FAILED, Outcome.ERROR):
            label = result.outcome.value.upper()
            if result.outcome is Outcome.FAILED and result.severity is Severity.WARNING:
                label = "WARN"
            print(f"  {label:6} {result.check} [{result.scenario}] {result.reason}", file=out)


def main(args: argparse.Namespace) -> int:
    from gateproof.cli.progress import ProgressLine

    if args.list_checks:
        for layer, name, description in describe_checks():
            print(f"{layer:9} {name:36} {description}")
        return 0
    progress = ProgressLine()
    try:
        config = load_target_config(
            args.config,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            profile=args.profile,
            name=args.name,
            mock_url=args.mock_url,
            property_examples=args.max_examples,
            model=args.model,
            extra_headers=dict(parse_header(text) for text in args.header or ()),
            providers=dict(parse_provider(text) for text in args.provider or ()),
            key_passthrough=args.key_passthrough,
            auth_required=args.auth_required,
        )
        options = selection(args.layers, args.checks, args.scenarios, strict=args.strict)
        config.api_key()
        started_at = time.time()
        try:
            run = run_contract(config, options, progress=progress)
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: say so in every output asked for, and never as a pass.
            progress.done()
            print("gateproof contract: interrupted", file=sys.stderr)
            run = interrupted_run(config, options.run_id or "interrupted", started_at)
        progress.done()
        if not (run.results or run.unreachable or run.interrupted):
            raise ConfigError(
                "the selection ran no check: the chosen scenarios do not run the chosen checks "
                "(see --list-checks and the scenario names in the docs)"
            )
    except ConfigError as exc:
        progress.done()
        print(f"gateproof contract: {exc}", file=sys.stderr)
        return 2
    write_outputs(run, out=args.out, junit=args.junit, json_path=args.json, secrets=config.secret_values())
    print_summary(run)
    return run.exit_code()


def write_outputs(
    run: RunResult,
    *,
    out: Path | None,
    junit: Path | None,
    json_path: Path | None,
    secrets: Iterable[str] = (),
) -> None:
    """Write the outputs asked for, each scrubbed of ``secrets`` (the run's key values) once more."""
    from gateproof.reports import render_junit, write_report

    secrets = tuple(secrets)
    if out is not None:
        files = write_report(out, run, None, secrets=secrets)
        print(f"report: {files.index_html}")
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(render_junit(run, secrets=secrets), encoding="utf-8")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        redact_run(run, secrets).write_json(json_path)
