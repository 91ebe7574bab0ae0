"""Running the suite: scenarios, then the property layer, into one RunResult.

The runner is the only part that talks to the target. Checks only read what it
recorded; the property layer runs schemathesis' engine. A target that cannot be
reached at all ends the run early with ``RunResult.unreachable`` set, so the
report says what broke instead of listing a hundred identical errors.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from gateproof.contract._config import ConfigError, TargetConfig
from gateproof.contract._exchange import (
    DEADLINE_EXTENSION,
    Sent,
    WireError,
    bounded_client,
    parse_chunks,
    send,
)
from gateproof.contract._profiles import validators_for
from gateproof.contract._redaction import redact_headers
from gateproof.contract._scenarios import SCENARIOS, Auth, Scenario
from gateproof.contract._wire import TransportFailure, loads_bounded
from gateproof.contract.checks import (
    CHECKS,
    Check,
    CheckContext,
    CheckFailed,
    NotApplicable,
    Observed,
    Profile,
    Requirement,
    load_all_checks,
)
from gateproof.contract.results import CheckResult, Exchange, Layer, Outcome, RunResult, redact_run
from gateproof.contract.stream import RULES, StreamReport

__all__ = ["Layers", "RunOptions", "describe_checks", "run_contract"]

Progress = Callable[[str], None]


class Layers(StrEnum):
    SCENARIO = "scenario"
    PROPERTY = "property"


@dataclass(frozen=True)
class RunOptions:
    """What to run: layers, and optionally only some checks or scenarios (by name)."""

    layers: frozenset[Layers] = frozenset(Layers)
    checks: frozenset[str] | None = None
    scenarios: frozenset[str] | None = None
    run_id: str | None = None


_EDGEE_BODY_FIELDS = ("tags", "enable_debug")

#: after this many scenario requests in a row fail at the transport level (any TransportFailure:
#: timeout, deadline, body too large, reset, ...), the rest of the run is not sent: a hanging or
#: hostile target must not keep CI waiting for every deadline
GIVE_UP_AFTER = 3

#: excerpts nested deeper than this stay text: reports walk an excerpt recursively (redaction,
#: pretty-printing), and a deeper excerpt is no easier to read as JSON than as text
_EXCERPT_DEPTH = 64


def _new_run_id() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def _excerpt(body: bytes | None, limit: int = 2048) -> Any:
    """A body as a report shows it: parsed JSON when short and shallow, else (a prefix of) its text."""
    if body is None:
        return None
    if len(body) > limit:
        return body[:limit].decode("utf-8", "replace") + f"... [{len(body)} bytes in all]"
    try:
        return loads_bounded(body, _EXCERPT_DEPTH)
    except ValueError:  # not JSON, or nested too deep (JSONTooDeep)
        return body.decode("utf-8", "replace")


def _wire_reason(exc: httpx.HTTPError) -> str:
    """The reason a result gives for a broken exchange: the failure's name first."""
    if isinstance(exc, WireError):
        return str(exc)
    return f"{TransportFailure.CONNECTION_ERROR.value}: {type(exc).__name__}: {exc}"[:400]


class _ScenarioRun:
    """Builds, sends and judges one scenario."""

    def __init__(
        self,
        config: TargetConfig,
        client: httpx.Client,
        api_key: str,
        satisfied: frozenset[Requirement],
        run_id: str,
    ) -> None:
        self.config = config
        self.client = client
        self.api_key = api_key
        self.satisfied = satisfied
        self.run_id = run_id
        self.validators = validators_for(config.profile)
        #: transport failures in a row; at GIVE_UP_AFTER the target is taken as gone
        self.transport_failures = 0
        self.last_transport_error = ""
        #: the wrong keys made up for the auth scenarios: a target may echo them, so they are redacted too
        self.issued_keys: set[str] = set()

    @property
    def gave_up(self) -> bool:
        return self.transport_failures >= GIVE_UP_AFTER

    # -- building the request -------------------------------------------------------------
    def _key_for(self, scenario: Scenario) -> str | None:
        match scenario.auth:
            case Auth.VALID:
                return self.api_key
            case Auth.MISSING:
                return None
            case Auth.WRONG:
                wrong = "gp-wrong-" + secrets.token_hex(12)
                self.issued_keys.add(wrong)
                return wrong
            case Auth.INACTIVE:
                return self.config.optional_key(self.config.inactive_key_env)
            case Auth.RESTRICTED:
                return self.config.optional_key(self.config.restricted_key_env)

    def _model_for(self, scenario: Scenario) -> str:
        if scenario.auth is Auth.RESTRICTED and self.config.restricted_model:
            return self.config.restricted_model
        return self.config.model

    def build(self, scenario: Scenario, cid: str) -> tuple[Sent, dict[str, Any] | None]:
        body = scenario.build_body(
            self._model_for(scenario), cid, with_directive=Requirement.MOCK_JOURNAL in self.satisfied
        )
        parsed: dict[str, Any] | None = None
        if body is not None and isinstance(scenario.body, dict):
            parsed = json.loads(body)
            if self.config.profile is Profile.OPENAI_CORE:
                # Edgee-only fields would be rejected by a strict OpenAI-compatible gateway.
                for key in [k for k in parsed if k.startswith("edgee_") or k in _EDGEE_BODY_FIELDS]:
                    del parsed[key]
                body = json.dumps(parsed).encode()
        headers = {"Accept": "application/json", "X-Gateproof-Correlation-Id": cid}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for name, value in scenario.headers.items():
            if self.config.profile is Profile.OPENAI_CORE and name.lower().startswith("x-edgee-"):
                continue
            headers[name] = value
        key = self._key_for(scenario)
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        url = self.config.base_url + scenario.path
        sent = Sent(
            method=scenario.method,
            url=url,
            headers=headers,
            body=body,
            stream=scenario.stream,
            include_usage=scenario.expect.include_usage,
            expect_tool_call=True if scenario.expect.tool_call else None,
        )
        return sent, parsed

    # -- judging -----------------------------------------------------------------------------
    def unmet(self, scenario: Scenario, check: Check) -> str | None:
        if self.config.profile not in scenario.profiles or not check.applies_to(self.config.profile):
            return f"outside the {self.config.profile.value} profile"
        missing = (scenario.requires | check.requires) - self.satisfied
        if scenario.auth is Auth.INACTIVE and not self.config.optional_key(self.config.inactive_key_env):
            missing |= {Requirement.FORBIDDEN_KEY}
        if scenario.auth is Auth.RESTRICTED and not (
            self.config.optional_key(self.config.restricted_key_env) and self.config.restricted_model
        ):
            missing |= {Requirement.FORBIDDEN_KEY}
        if missing:
            return "needs " + ", ".join(sorted(m.value for m in missing))
        return None

    def check_names(self, scenario: Scenario) -> list[str]:
        names = list(scenario.checks)
        expects_clean_stream = (
            scenario.stream and scenario.expect.status == 200 and "stream_error_propagated" not in names
        )
        if expects_clean_stream:
            names += [rule for rule in RULES if rule not in names]
        return names

    def run(self, scenario: Scenario, selected: frozenset[str] | None) -> list[CheckResult]:
        cid = f"{self.run_id}-{scenario.name}"
        checks = [CHECKS.get(name) for name in self.check_names(scenario)]
        if selected is not None:
            checks = [c for c in checks if c.name in selected]
        if not checks:
            return []
        sent, parsed = self.build(scenario, cid)
        exchange_base = Exchange(
            method=sent.method,
            url=sent.url,
            request_headers=redact_headers(sent.headers),
            request_body=_excerpt(sent.body),
        )
        runnable = [c for c in checks if self.unmet(scenario, c) is None]
        results = [
            self._result(scenario, c, Outcome.NOT_APPLICABLE, reason=self.unmet(scenario, c) or "")
            for c in checks
            if c not in runnable
        ]
        if not runnable:
            return results
        if self.gave_up:
            reason = (
                f"not sent: the target stopped answering ({GIVE_UP_AFTER} requests in a row failed; "
                f"last: {self.last_transport_error})"
            )
            return results + [
                self._result(scenario, c, Outcome.ERROR, reason=reason, exchange=exchange_base)
                for c in runnable
            ]
        started = time.perf_counter()
        try:
            observed, report = send(self.client, sent)
        except httpx.HTTPError as exc:
            # no complete answer (deadline, body too large, redirect, reset, ...): no check judges
            # part of one, and a redirect is not the answer either, so every check is an error
            if not (isinstance(exc, WireError) and exc.local):
                self.transport_failures += 1
            reason = self.last_transport_error = _wire_reason(exc)
            status = exc.status if isinstance(exc, WireError) else None
            failed = dataclasses.replace(
                exchange_base, status=status, elapsed_ms=(time.perf_counter() - started) * 1000.0
            )
            return results + [
                self._result(scenario, c, Outcome.ERROR, reason=reason, exchange=failed) for c in runnable
            ]
        self.transport_failures = 0
        if report is not None:
            observed.chunks = parse_chunks(observed.body)
        companion = self._companion(scenario, sent) if scenario.companion else None
        journal = self._journal(cid) if Requirement.MOCK_JOURNAL in self.satisfied else None
        exchange = Exchange(
            method=sent.method,
            url=sent.url,
            request_headers=exchange_base.request_headers,
            request_body=exchange_base.request_body,
            status=observed.status,
            response_headers=redact_headers(observed.headers),
            response_body=_excerpt(observed.body, 4096),
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )
        ctx = CheckContext(
            scenario=scenario,
            profile=self.config.profile,
            validators=self.validators,
            observed=observed,
            stream=report,
            journal=journal,
            companion=companion,
            request_body=parsed,
            client_key=self.api_key,
        )
        for item in runnable:
            results.append(self._judge(scenario, item, ctx, exchange, report))
        return results

    def _judge(
        self,
        scenario: Scenario,
        item: Check,
        ctx: CheckContext,
        exchange: Exchange,
        report: StreamReport | None,
    ) -> CheckResult:
        started = time.perf_counter()
        try:
            item.function(ctx)
        except CheckFailed as failure:
            return self._result(
                scenario,
                item,
                Outcome.FAILED,
                reason=failure.reason,
                expected=failure.expected,
                actual=failure.actual,
                exchange=exchange,
                started=started,
            )
        except NotApplicable as na:
            return self._result(scenario, item, Outcome.NOT_APPLICABLE, reason=na.reason, exchange=exchange)
        except Exception as exc:  # a bug in a check must not hide the other results
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return self._result(
                scenario, item, Outcome.ERROR, reason=f"the check crashed: {last}", exchange=exchange
            )
        return self._result(scenario, item, Outcome.PASSED, exchange=exchange, started=started)

    def _result(
        self,
        scenario: Scenario,
        item: Check,
        outcome: Outcome,
        *,
        reason: str = "",
        expected: str = "",
        actual: str = "",
        exchange: Exchange | None = None,
        started: float | None = None,
    ) -> CheckResult:
        return CheckResult(
            check=item.name,
            description=item.description,
            layer=item.layer,
            profile=self.config.profile.value,
            target=self.config.name,
            route=scenario.route,
            scenario=scenario.name,
            outcome=outcome,
            required=item.required,
            expected=expected,
            actual=actual,
            reason=reason,
            exchange=exchange if outcome is not Outcome.PASSED else _light(exchange),
            duration_ms=(time.perf_counter() - started) * 1000.0 if started else 0.0,
        )

    def _companion(self, scenario: Scenario, sent: Sent) -> Observed | None:
        if sent.body is None:
            return None
        body = json.loads(sent.body)
        body.pop("stream", None)
        body.pop("stream_options", None)
        plain = Sent(method=sent.method, url=sent.url, headers=sent.headers, body=json.dumps(body).encode())
        try:
            observed, _ = send(self.client, plain)
        except httpx.HTTPError:
            return None
        return observed

    def _journal(self, cid: str) -> list[dict[str, Any]] | None:
        assert self.config.mock_url is not None
        try:
            response = self.client.get(
                self.config.mock_url.rstrip("/") + "/_gateproof/journal", params={"cid": cid}, timeout=5.0
            )
            response.raise_for_status()
            entries = loads_bounded(response.content).get("entries", [])
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return [e for e in entries if isinstance(e, dict) and e.get("path", "").endswith("/chat/completions")]


def _light(exchange: Exchange | None) -> Exchange | None:
    """Passed results keep the (redacted) request and the status, not the response: reports stay small."""
    if exchange is None:
        return None
    return Exchange(
        method=exchange.method,
        url=exchange.url,
        request_headers=exchange.request_headers,
        request_body=exchange.request_body,
        status=exchange.status,
        elapsed_ms=exchange.elapsed_ms,
    )


#: the most the reachability probe waits for a status line and headers
_PROBE_DEADLINE_S = 5.0


def _probe(client: httpx.Client, config: TargetConfig) -> str | None:
    """None when the target answers HTTP at all; otherwise why not.

    Any status line and header block means reachable, a redirect or an oversized header block
    included (the scenarios then report those). The body is never read: the probe only asks
    whether something answers, and a model list that never ends must not be waited for.
    """
    request = client.build_request(
        "GET",
        config.base_url + "/models",
        timeout=min(config.timeout_s, _PROBE_DEADLINE_S),
        extensions={DEADLINE_EXTENSION: min(config.timeout_s, _PROBE_DEADLINE_S)},
    )
    try:
        response = client.send(request, stream=True)
    except WireError as exc:
        if exc.failure in (TransportFailure.REDIRECT, TransportFailure.HEADERS_TOO_LARGE):
            return None
        return f"{exc}; {config.base_url} cannot be reached"[:400]
    except httpx.HTTPError as exc:
        return f"{_wire_reason(exc)}; {config.base_url} cannot be reached"[:400]
    response.close()
    return None


def run_contract(
    config: TargetConfig,
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
) -> RunResult:
    """Run the conformance suite against ``config``'s target."""
    options = options or RunOptions()
    load_all_checks()
    say = progress or (lambda _msg: None)
    run = RunResult(
        run_id=options.run_id or _new_run_id(),
        target=config.name,
        base_url=config.base_url,
        profile=config.profile.value,
        started_at=time.time(),
        metadata={"seed": config.seed, "property_examples": config.property_examples},
    )
    api_key = config.api_key()
    with bounded_client(config.timeout_s) as client:
        unreachable = _probe(client, config)
        if unreachable is not None:
            run.unreachable = unreachable
            run.finished_at = time.time()
            return redact_run(run, config.secret_values())
        satisfied = config.satisfied()
        run.metadata["requirements_met"] = sorted(r.value for r in satisfied)
        runner = _ScenarioRun(config, client, api_key, satisfied, run.run_id)
        if Layers.SCENARIO in options.layers:
            scenarios: Iterable[Scenario] = SCENARIOS
            if options.scenarios is not None:
                unknown = options.scenarios - {s.name for s in SCENARIOS}
                if unknown:
                    raise ConfigError(f"unknown scenario(s): {', '.join(sorted(unknown))}")
                scenarios = [s for s in SCENARIOS if s.name in options.scenarios]
            chosen = list(scenarios)
            for number, scenario in enumerate(chosen, start=1):
                say(f"scenario {number}/{len(chosen)}: {scenario.name}")
                run.results.extend(runner.run(scenario, options.checks))
    if Layers.PROPERTY in options.layers and (options.checks is None or options.checks & _property_names()):
        from gateproof.contract._property import run_property_layer, skipped_property_layer

        if runner.gave_up:
            reason = f"not run: the target stopped answering (last: {runner.last_transport_error})"
            results = skipped_property_layer(config, reason)
        else:
            say("property layer: schemathesis")
            results = run_property_layer(config, api_key, only=options.checks, progress=say)
        if options.checks is not None:
            results = [r for r in results if r.check in options.checks]
        run.results.extend(results)
    run.finished_at = time.time()
    # Every key of the run, in every encoding, out of everything recorded (a target may echo them).
    return redact_run(run, [*config.secret_values(), *runner.issued_keys])


def _property_names() -> frozenset[str]:
    from gateproof.contract._property import PROPERTY_CHECKS

    return frozenset(PROPERTY_CHECKS)


def describe_checks() -> list[tuple[str, str, str]]:
    """(layer, name, description) of every check, scenario/stream registry and property layer alike."""
    from gateproof.contract._property import PROPERTY_CHECKS

    load_all_checks()
    rows = [(c.layer.value, c.name, c.description) for c in CHECKS]
    rows += [(Layer.PROPERTY.value, name, text) for name, text in PROPERTY_CHECKS.items()]
    return sorted(rows)
