"""Running the suite: scenarios, then the property layer, into one RunResult.

The runner is the only part that talks to the target. Checks only read what it
recorded; the property layer runs schemathesis' engine. A target that cannot be
reached at all ends the run early with ``RunResult.unreachable`` set, so the
report says what broke instead of listing a hundred identical errors.

One failure per root cause: a check may name checks it ``depends_on`` (they must pass on
the same answer for it to be judged; when one failed it is reported ``skipped`` with
``because`` naming that check, and so are the checks that depend on it) and checks it
``defers_to`` (they judge part of what it judges: it leaves out what their failures already
report). The runner judges each scenario's checks in that order. A target that refuses the
configured key fails ``configured_key_accepted`` once and every scenario sent with the key
is skipped, unsent; a target that declares auth off fails ``auth_enforced`` once. The
property layer's ``ignored_auth`` is skipped when an auth scenario's status check failed.

Every failure carries the check's fixed severity, or none (then the client-impact replay,
``gateproof.contract._impact.assess``, measures it from the answer kept in ``raw``).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from gateproof.contract._bad_days import MATRIX_WORKERS, played, unplayable
from gateproof.contract._config import ConfigError, TargetConfig
from gateproof.contract._exchange import (
    DEADLINE_EXTENSION,
    Sent,
    WireError,
    bounded_client,
    parse_chunks,
    send,
)
from gateproof.contract._leave import send_and_leave
from gateproof.contract._profiles import validators_for
from gateproof.contract._redaction import redact_headers
from gateproof.contract._scenarios import CHAT, FIRST, SCENARIOS, Auth, Scenario, for_providers
from gateproof.contract._wire import TransportFailure, loads_bounded
from gateproof.contract.checks import (
    CHECKS,
    Check,
    CheckContext,
    CheckFailed,
    NotApplicable,
    Observed,
    Profile,
    Redundant,
    Requirement,
    load_all_checks,
)
from gateproof.contract.checks._context import NOTHING_FORWARDED
from gateproof.contract.checks.bad_days import CANCEL_WITHIN_S
from gateproof.contract.results import (
    CheckResult,
    Exchange,
    Layer,
    Outcome,
    RawResponse,
    RunResult,
    redact_run,
)
from gateproof.contract.stream import RULES
from gateproof.openapi import (
    CORRELATION_HEADER,
    DIRECTIVE_MARKER,
    HEALTH_PATH,
    JOURNAL_PATH,
    JournalRecord,
    SchemaKind,
    Validators,
    format_directive,
    is_edgee_header,
    is_gateway_field,
)

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
    #: warnings fail the run too (``--strict``)
    strict: bool = False


#: judged on the first answer to a valid-key request: a refused key makes every other result moot
KEY_CHECK = "configured_key_accepted"
#: judged on the auth scenarios of a target that declares auth off (auth_required: false)
AUTH_CHECK = "auth_enforced"
#: the check a pass-through target (key_passthrough: true) is judged by instead of its opposite
_KEY_SWAP = {"client_key_not_forwarded": "client_key_forwarded_unchanged"}
#: judged on every per-provider scenario: the model reached the dialect its route declares
_ROUTED = "routed_to_declared_provider"
#: how long the mock's health probe waits
_MOCK_PROBE_S = 3.0
#: how long after a client left the runner waits for the provider's request to end (the judged
#: bound, ``CANCEL_WITHIN_S``, plus a margin: a later end is reported with its time, not missed)
_SETTLE_S = CANCEL_WITHIN_S + 1.0
#: the checks a failure-matrix cell is still judged by when no answer reached the client: they read
#: the provider's side only (a gateway retrying without end is named by its attempts)
_JUDGED_UNANSWERED = frozenset({"upstream_attempts_bounded"})
#: one client-impact replay at a time per process (see run_contract)
_ASSESS_TURN = threading.Lock()

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
        #: the scenario on which the target refused the configured key (KEY_CHECK failed), if it did
        self.key_refused_on: str | None = None
        #: the scenario on which a target with auth off served a request without a valid key
        self.auth_off_on: str | None = None

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
        if scenario.bad_day is not None and scenario.bad_day.needs_fallback and self.config.fallback_model:
            return self.config.fallback_model
        if scenario.provider_model is not None and (
            scenario.name != scenario.family or scenario.family not in self.config.models
        ):
            # a route's model, unless the primary route's scenario names its own model
            return scenario.provider_model
        return self.config.model_for(scenario.family)

    def build(self, scenario: Scenario, cid: str) -> tuple[Sent, dict[str, Any] | None]:
        body = scenario.build_body(
            self._model_for(scenario), cid, with_directive=Requirement.MOCK_JOURNAL in self.satisfied
        )
        parsed: dict[str, Any] | None = None
        if body is not None and isinstance(scenario.body, dict):
            parsed = json.loads(body)
            if self.config.profile is Profile.OPENAI_CORE:
                # Edgee-only fields would be rejected by a strict OpenAI-compatible gateway.
                for key in [k for k in parsed if is_gateway_field(k)]:
                    del parsed[key]
                body = json.dumps(parsed).encode()
        headers = {"Accept": "application/json", CORRELATION_HEADER: cid}
        headers.update(self.config.extra_headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for name, value in scenario.headers.items():
            if self.config.profile is Profile.OPENAI_CORE and is_edgee_header(name):
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
        return unplayable(scenario, self.config.timeouts, self.config.fallback_model)

    def check_names(self, scenario: Scenario) -> list[str]:
        names = list(scenario.checks_for(self.config.profile))
        if self.config.key_passthrough:
            names = [_KEY_SWAP.get(name, name) for name in names]
        expects_clean_stream = (
            scenario.stream
            and scenario.expect.status == 200
            and "stream_error_propagated" not in names
            # a bad day that breaks the stream on purpose is judged by its row's own check
            and not (scenario.bad_day is not None and scenario.bad_day.judges_stream)
        )
        if expects_clean_stream:
            names += [rule for rule in RULES if rule not in names]
        if scenario.provider is not None and _ROUTED not in names:
            # every request of a provider route must reach that route's provider, whatever else it judges
            names.append(_ROUTED)
        return names

    def gate(self, scenario: Scenario) -> str | None:
        """The check every other check of ``scenario`` depends on, when the scenario has one.

        A basic valid-key request first asks whether the target accepts the configured key; the
        auth scenarios of a target that declares auth off ask whether it is enforced all the same.
        """
        if scenario.auth is not Auth.VALID:
            return None if self.config.auth_required else AUTH_CHECK
        if scenario.path == CHAT and scenario.expect.status == 200:
            return KEY_CHECK
        return None

    def _blocked(self, scenario: Scenario) -> tuple[str, str] | None:
        """(check, reason) when an earlier scenario's failure makes sending this one moot."""
        if scenario.auth is Auth.VALID and self.key_refused_on is not None:
            return KEY_CHECK, (
                f"skipped because {KEY_CHECK} failed ({self.key_refused_on}): the target refuses the "
                f"key in ${self.config.api_key_env}, so no answer to it says anything about the target"
            )
        if scenario.auth is not Auth.VALID and self.auth_off_on is not None:
            return AUTH_CHECK, (
                f"skipped because {AUTH_CHECK} failed ({self.auth_off_on}): the target does not "
                "authenticate requests at all"
            )
        return None

    def run(self, scenario: Scenario, selected: frozenset[str] | None) -> list[CheckResult]:
        cid = f"{self.run_id}-{scenario.correlation_name}"
        # a failure-matrix cell's stall or delay is sized to the timeouts the target declares
        scenario = played(scenario, self.config.timeouts, key_passthrough=self.config.key_passthrough)
        checks = [CHECKS.get(name) for name in self.check_names(scenario)]
        if selected is not None:
            checks = [c for c in checks if c.name in selected]
        if not checks:
            return []
        gate = self.gate(scenario)
        if gate is not None and gate not in {c.name for c in checks}:
            # judged whatever the selection: without it a refused key would read as N other failures
            checks.insert(0, CHECKS.get(gate))
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
        blocked = self._blocked(scenario)
        if blocked is not None:
            because, reason = blocked
            return results + [
                self._result(
                    scenario, c, Outcome.SKIPPED, reason=reason, because=because, exchange=exchange_base
                )
                for c in runnable
            ]
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
        left_at: float | None = None
        try:
            if scenario.bad_day is not None and scenario.bad_day.client_leaves:
                observed, left_at = send_and_leave(self.client, sent)
                report = None
            else:
                observed, report = send(self.client, sent)
        except httpx.HTTPError as exc:
            # no complete answer (deadline, body too large, redirect, reset, ...): no check judges
            # part of one, and a redirect is not the answer either, so every check is an error
            if not (isinstance(exc, WireError) and exc.local):
                self.transport_failures += 1
            reason = self.last_transport_error = _wire_reason(exc)
            status = exc.status if isinstance(exc, WireError) else None
            broken = dataclasses.replace(
                exchange_base, status=status, elapsed_ms=(time.perf_counter() - started) * 1000.0
            )
            errors = [
                self._result(scenario, c, Outcome.ERROR, reason=reason, exchange=broken) for c in runnable
            ]
            if scenario.bad_day is not None and Requirement.MOCK_JOURNAL in self.satisfied:
                errors = self._judged_unanswered(scenario, cid, runnable, errors, broken, reason)
            return results + errors
        self.transport_failures = 0
        if report is not None:
            observed.chunks = parse_chunks(observed.body)
        companion = self._companion(scenario, sent) if scenario.companion else None
        journal = self._journal(cid) if Requirement.MOCK_JOURNAL in self.satisfied else None
        if left_at is not None and journal is not None:
            journal = self._journal_settled(cid, left_at) or journal
        steps = self._steps(scenario, sent, parsed, observed, cid, journal)
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
        sent_model = parsed.get("model") if isinstance(parsed, dict) else None
        ctx = CheckContext(
            scenario=scenario,
            profile=self.config.profile,
            validators=self.validators,
            observed=observed,
            stream=report,
            journal=journal,
            companion=companion,
            steps=steps.answers,
            step_journals=steps.journals,
            step_requests=steps.requests,
            request_body=parsed,
            client_key=self.api_key,
            declared_upstream_model=(
                self.config.upstream_model_for(sent_model) if isinstance(sent_model, str) else None
            ),
            client_key_env=self.config.api_key_env,
            request_log=self.config.request_log,
            declared_input_price=(
                self.config.input_prices.get(sent_model) if isinstance(sent_model, str) else None
            ),
            route=scenario.provider,
            route_model=sent_model if isinstance(sent_model, str) else scenario.provider_model,
            client_left_at=left_at,
        )
        raw = RawResponse(
            status=observed.status,
            headers=tuple(observed.headers.items()),
            body=observed.body,
            stream=sent.stream,
            request=parsed,
            expected_statuses=scenario.expect.statuses(self.config.profile),
        )
        judged: dict[str, CheckResult] = {}
        failed: set[str] = set()
        #: check -> the failed check at the root of it: itself when it failed, its cause when skipped
        root: dict[str, str] = {}
        #: the check that reported "nothing reached the provider" first
        unforwarded: str | None = None
        for item in judging_order(runnable):
            prerequisites = [*item.depends_on, *([gate] if gate and item.name != gate else [])]
            blocker = next((root[name] for name in prerequisites if name in root), None)
            if blocker is not None:
                result = self._result(
                    scenario,
                    item,
                    Outcome.SKIPPED,
                    reason=f"skipped because {blocker} failed",
                    because=blocker,
                    exchange=exchange,
                )
            else:
                ctx.failed = frozenset(failed)
                result = self._judge(scenario, item, ctx, exchange, raw)
                if result.outcome is Outcome.FAILED and result.reason == NOTHING_FORWARDED:
                    # one root cause: nothing reached the provider; reported by the first check that
                    # saw it, or by the wrong status the gateway answered on its own
                    first = unforwarded or (
                        "status_code_expected" if "status_code_expected" in failed else None
                    )
                    if first is not None:
                        result = result.skipped_because(
                            first, f"skipped because {first} failed: {NOTHING_FORWARDED}"
                        )
                    else:
                        unforwarded = item.name
            if result.outcome is Outcome.FAILED:
                failed.add(item.name)
                root[item.name] = item.name
            elif result.outcome is Outcome.SKIPPED and result.because in root:
                root[item.name] = root[result.because]
            judged[item.name] = result
        if KEY_CHECK in failed:
            self.key_refused_on = scenario.name
        if AUTH_CHECK in failed:
            self.auth_off_on = scenario.name
        return results + [judged[item.name] for item in runnable]

    def _judge(
        self,
        scenario: Scenario,
        item: Check,
        ctx: CheckContext,
        exchange: Exchange,
        raw: RawResponse,
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
                raw=raw,
            )
        except Redundant as redundant:
            return self._result(
                scenario,
                item,
                Outcome.SKIPPED,
                reason=redundant.reason,
                because=redundant.because,
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
        because: str = "",
        raw: RawResponse | None = None,
    ) -> CheckResult:
        failed = outcome is Outcome.FAILED
        return CheckResult(
            check=item.name,
            description=item.description,
            layer=item.layer,
            profile=self.config.profile.value,
            target=self.config.name,
            route=scenario.route,
            scenario=scenario.name,
            provider=scenario.provider or "",
            outcome=outcome,
            required=item.required,
            expected=expected,
            actual=actual,
            reason=reason,
            exchange=exchange if outcome is not Outcome.PASSED else _light(exchange),
            duration_ms=(time.perf_counter() - started) * 1000.0 if started else 0.0,
            severity=item.severity if failed else None,
            because=because,
            failed_cases=1 if failed else 0,
            raw=raw if failed else None,
            fault=scenario.bad_day.row if scenario.bad_day is not None else "",
            mode=scenario.bad_day.mode(scenario.stream) if scenario.bad_day is not None else "",
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

    def _steps(
        self,
        scenario: Scenario,
        sent: Sent,
        parsed: dict[str, Any] | None,
        first: Observed,
        cid: str,
        journal: list[JournalRecord] | None,
    ) -> _StepAnswers:
        """Send the scenario's further requests in order, each built from the answers so far.

        What the provider received during a step is the part of the scenario's journal that is new
        since the step before (all requests of a scenario share its correlation id).
        """
        done = _StepAnswers()
        if not scenario.steps or parsed is None:
            return done
        answers: dict[str, Observed] = {FIRST: first}
        seen = len(journal) if journal is not None else 0
        for step in scenario.steps:
            try:
                body = step.build(json.loads(json.dumps(parsed)), dict(answers))
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                body = None  # an answer without what the step needs: its checks report the gap
            if body is None:
                continue
            if journal is not None:
                _carry_directive(body, format_directive(**{**scenario.mock, "cid": cid}))
            headers = {name: value for name, value in sent.headers.items() if name not in scenario.headers}
            for name, value in (scenario.headers if step.headers is None else step.headers).items():
                if self.config.profile is Profile.OPENAI_CORE and is_edgee_header(name):
                    continue
                headers[name] = value
            stream = bool(body.get("stream"))
            request = Sent(
                method="POST",
                url=self.config.base_url + step.path,
                headers=headers,
                body=json.dumps(body).encode(),
                stream=stream,
                include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
            )
            try:
                observed, report = send(self.client, request)
            except httpx.HTTPError:
                continue
            if report is not None:
                observed.chunks = parse_chunks(observed.body)
            answers[step.name] = observed
            done.answers[step.name] = observed
            done.requests[step.name] = body
            if journal is not None:
                now = self._journal(cid) or []
                done.journals[step.name] = now[seen:]
                seen = len(now)
        return done

    def _judged_unanswered(
        self,
        scenario: Scenario,
        cid: str,
        runnable: list[Check],
        errors: list[CheckResult],
        exchange: Exchange,
        reason: str,
    ) -> list[CheckResult]:
        """A bad day the client got no answer to, judged on what the provider's side saw.

        A gateway that retries without end keeps its client waiting until the deadline; the
        journal still counts its attempts, so the failure is named (``upstream_attempts_bounded``)
        instead of being only the client's deadline. Every other check stays an error.
        """
        journal = self._journal(cid)
        if not journal:
            return errors
        ctx = CheckContext(
            scenario=scenario,
            profile=self.config.profile,
            validators=self.validators,
            observed=Observed(status=0, headers={}, body=b""),
            journal=journal,
            client_key=self.api_key,
        )
        judged: list[CheckResult] = []
        for item, error in zip(runnable, errors, strict=True):
            if item.name not in _JUDGED_UNANSWERED:
                judged.append(error)
                continue
            try:
                item.function(ctx)
            except CheckFailed as failure:
                error = self._result(
                    scenario,
                    item,
                    Outcome.FAILED,
                    reason=f"{failure.reason}; and no answer reached the client ({reason})",
                    expected=failure.expected,
                    actual=failure.actual,
                    exchange=exchange,
                )
            except (NotApplicable, Redundant):
                pass
            judged.append(error)
        return judged

    def _journal_settled(self, cid: str, left_at: float) -> list[JournalRecord] | None:
        """The journal once the first provider request has ended, waited for a bounded time.

        A client that left asks whether the gateway closed its provider request: the journal is
        read until that request is no longer pending, or until the judged bound (plus a margin
        for the mock to notice) has passed.
        """
        deadline = left_at + _SETTLE_S
        while True:
            records = self._journal(cid)
            if records and records[0].outcome != "pending":
                return records
            if time.time() >= deadline:
                return records
            time.sleep(0.05)

    def _journal(self, cid: str) -> list[JournalRecord] | None:
        assert self.config.mock_url is not None
        try:
            response = self.client.get(
                self.config.mock_url.rstrip("/") + JOURNAL_PATH, params={"cid": cid}, timeout=5.0
            )
            response.raise_for_status()
            entries = loads_bounded(response.content).get("entries", [])
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        try:
            records = [JournalRecord.from_json(entry) for entry in entries]
        except ValueError:
            return None
        # every POST the mock journals is a generation request, in whatever dialect and path
        return [record for record in records if record.method == "POST"]


def _carry_directive(body: dict[str, Any], directive: str) -> None:
    """Give a step's last user message the scenario's directive when it has none.

    The mock reads its directive (and the correlation id that files the request under the
    scenario) from the last user message only; a step that adds a user turn would otherwise
    reach the mock unnamed.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str) and DIRECTIVE_MARKER not in content:
                message["content"] = f"{content} {directive}"
            return


@dataclass
class _StepAnswers:
    """What the steps of one scenario sent and got back, by step name."""

    answers: dict[str, Observed] = dataclasses.field(default_factory=dict)
    journals: dict[str, list[JournalRecord]] = dataclasses.field(default_factory=dict)
    requests: dict[str, Any] = dataclasses.field(default_factory=dict)


def judging_order(checks: list[Check]) -> list[Check]:
    """``checks`` with every check after those it depends on or defers to (when they are in the list).

    Stable otherwise, so results read in the scenario's own order. A cycle is a registry bug.
    """
    present = {c.name: c for c in checks}
    placed: list[Check] = []
    done: set[str] = set()
    pending = list(checks)
    while pending:
        ready = [
            c for c in pending if all(d in done or d not in present for d in (*c.depends_on, *c.defers_to))
        ]
        if not ready:
            raise ValueError(f"the checks {[c.name for c in pending]} depend on each other in a cycle")
        for c in ready:
            placed.append(c)
            done.add(c.name)
        pending = [c for c in pending if c.name not in done]
    return placed


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
        headers=config.extra_headers,
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


def _probe_mock(client: httpx.Client, mock_url: str) -> str | None:
    """None when the gateproof mock answers its health route; otherwise why not.

    Without the mock every journal check would read "not applicable" and the run could pass
    having judged nothing of what reached the provider: a wrong --mock-url is bad wiring, not a pass.
    """
    url = mock_url.rstrip("/") + HEALTH_PATH
    try:
        response = client.get(url, timeout=_MOCK_PROBE_S, extensions={DEADLINE_EXTENSION: _MOCK_PROBE_S})
    except httpx.HTTPError as exc:
        return f"the gateproof mock at {mock_url} does not answer GET {HEALTH_PATH} ({_wire_reason(exc)})"[
            :400
        ]
    if response.status_code != 200:
        return (
            f"the gateproof mock at {mock_url} answers GET {HEALTH_PATH} with HTTP "
            f"{response.status_code}: is --mock-url the mock's address?"
        )
    return None


#: the property check whose failure is the auth scenarios' failure, seen through generated requests
_PROPERTY_AUTH = "ignored_auth"


def _fold_property_auth(results: list[CheckResult], scenario_results: list[CheckResult]) -> list[CheckResult]:
    """Property ``ignored_auth`` failures become skipped when an auth scenario already failed on it.

    Both say the target serves requests without a valid key: one root cause, one failure.
    """
    auth_scenarios = {s.name for s in SCENARIOS if s.auth is not Auth.VALID}
    cause = next(
        (
            r
            for r in scenario_results
            if r.outcome is Outcome.FAILED
            and r.scenario in auth_scenarios
            and r.check in ("status_code_expected", AUTH_CHECK)
        ),
        None,
    )
    if cause is None:
        return results
    return [
        r.skipped_because(
            cause.check,
            f"skipped because {cause.check} failed on {cause.scenario}: the same root cause "
            "(the target serves requests without a valid key)",
        )
        if r.check == _PROPERTY_AUTH and r.outcome is Outcome.FAILED
        else r
        for r in results
    ]


#: the stream rule whose failure the property layer's chunk schema repeats on the usage chunk
_USAGE_RULE = "usage_chunk_empty_choices"
_PROPERTY_SCHEMA = "response_schema_conformance"


def _only_usage_chunk_choices(raw: RawResponse, validators: Validators) -> bool:
    """True when the stream's only invalid chunks are usage chunks made valid by ``choices: []``."""
    invalid = [c for c in parse_chunks(raw.body) if not validators.is_valid(SchemaKind.CHUNK, c)]
    return bool(invalid) and all(
        isinstance(chunk, dict)
        and chunk.get("usage") is not None
        and bool(chunk.get("choices"))
        and validators.is_valid(SchemaKind.CHUNK, {**chunk, "choices": []})
        for chunk in invalid
    )


def _fold_property_usage_chunk(
    results: list[CheckResult], scenario_results: list[CheckResult], validators: Validators
) -> list[CheckResult]:
    """Property schema failures that are the usage chunk's choices again become skipped.

    The scenario layer's ``usage_chunk_empty_choices`` names that deviation precisely; the
    property layer's event schema reports the same chunk as "not valid under any of the
    schemas". Only a failure whose recorded stream has no other invalid chunk is folded.
    """
    cause = next(
        (r for r in scenario_results if r.outcome is Outcome.FAILED and r.check == _USAGE_RULE), None
    )
    if cause is None:
        return results
    return [
        r.skipped_because(
            _USAGE_RULE,
            f"skipped because {_USAGE_RULE} failed on {cause.scenario}: the failing stream's only "
            "invalid chunk is the usage chunk, whose choices are not [] (the same root cause)",
        )
        if r.check == _PROPERTY_SCHEMA
        and r.outcome is Outcome.FAILED
        and r.raw is not None
        and r.raw.stream
        and _only_usage_chunk_choices(r.raw, validators)
        else r
        for r in results
    ]


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
        strict=options.strict,
    )
    api_key = config.api_key()
    with bounded_client(config.timeout_s) as client:
        unreachable = _probe(client, config)
        if unreachable is None and config.mock_url:
            unreachable = _probe_mock(client, config.mock_url)
        if unreachable is not None:
            run.unreachable = unreachable
            run.finished_at = time.time()
            return redact_run(run, config.secret_values())
        satisfied = config.satisfied()
        run.metadata["requirements_met"] = sorted(r.value for r in satisfied)
        runner = _ScenarioRun(config, client, api_key, satisfied, run.run_id)
        if Layers.SCENARIO in options.layers:
            scenarios: Iterable[Scenario] = for_providers(SCENARIOS, config.provider_routes())
            if options.scenarios is not None:
                known = {s.name for s in scenarios} | {s.family for s in scenarios}
                unknown = options.scenarios - known
                if unknown:
                    raise ConfigError(f"unknown scenario(s): {', '.join(sorted(unknown))}")
                # a family name selects the scenario on every route, a routed name that route only
                scenarios = [
                    s for s in scenarios if s.name in options.scenarios or s.family in options.scenarios
                ]
            chosen = [s for s in scenarios if s.bad_day is None]
            matrix = [s for s in scenarios if s.bad_day is not None]
            for number, scenario in enumerate(chosen, start=1):
                say(f"scenario {number}/{len(chosen)}: {scenario.name}")
                run.results.extend(runner.run(scenario, options.checks))
            if matrix:
                # the failure matrix's cells are mostly waits (a Retry-After, a stall, a timeout):
                # played side by side, each on its own correlation id, results kept in order
                say(f"failure matrix: {len(matrix)} cells, {MATRIX_WORKERS} at a time")
                with ThreadPoolExecutor(MATRIX_WORKERS, thread_name_prefix="gateproof-matrix") as pool:
                    for results in pool.map(lambda s: runner.run(s, options.checks), matrix):
                        run.results.extend(results)
    if Layers.PROPERTY in options.layers and (options.checks is None or options.checks & _property_names()):
        from gateproof.contract._property import run_property, skipped_property_layer

        blocked = _generated_blocked(runner, "request")
        if blocked is not None:
            results = _unsent(skipped_property_layer(config, blocked[0]), *blocked)
        else:
            say("property layer: schemathesis")
            layer = run_property(config, api_key, only=options.checks, progress=say)
            results = layer.results
            # each operation's wall time, counted once (its checks share its requests)
            run.metadata["property_operations"] = layer.operations
            run.metadata["property_seconds"] = round(layer.seconds, 3)
        if options.checks is not None:
            results = [r for r in results if r.check in options.checks]
        results = _fold_property_auth(results, run.results)
        run.results.extend(_fold_property_usage_chunk(results, run.results, runner.validators))
    if Layers.PROPERTY in options.layers and (
        options.checks is None or options.checks & _conversation_names()
    ):
        run.results.extend(_conversation_layer(config, api_key, options, runner, run, say))
    from gateproof.contract._impact import assess

    # What the official clients make of every failure whose severity is measured (drops the raw bytes).
    # A replay silences process-wide state (warning filters, the SDK's loggers), so runs in threads
    # of one process (the fault self-test) take turns.
    with _ASSESS_TURN:
        run.results = assess(run.results)
    run.finished_at = time.time()
    # Every key of the run, in every encoding, out of everything recorded (a target may echo them).
    return redact_run(run, [*config.secret_values(), *runner.issued_keys])


def _generated_blocked(runner: _ScenarioRun, what: str) -> tuple[str, str | None] | None:
    """(reason, the check whose failure it is) when generated requests must not be sent at all.

    A target that stopped answering gets nothing more; one that refuses the configured key would
    refuse every generated ``what`` too: one root cause, already reported by the scenarios.
    """
    if runner.gave_up:
        return f"not run: the target stopped answering (last: {runner.last_transport_error})", None
    if runner.key_refused_on is not None:
        return (
            f"skipped because {KEY_CHECK} failed ({runner.key_refused_on}): the target refuses "
            f"the configured key, so every generated {what} would be refused too"
        ), KEY_CHECK
    return None


def _unsent(results: list[CheckResult], reason: str, because: str | None) -> list[CheckResult]:
    """A generated layer's results when it was not sent: errors, or skipped because ``because``."""
    return results if because is None else [r.skipped_because(because, reason) for r in results]


def _property_names() -> frozenset[str]:
    from gateproof.contract._property import PROPERTY_CHECKS

    return frozenset(PROPERTY_CHECKS)


def _conversation_names() -> frozenset[str]:
    from gateproof.contract._conversations import CONVERSATION_CHECKS

    return frozenset(CONVERSATION_CHECKS)


def _conversation_layer(
    config: TargetConfig,
    api_key: str,
    options: RunOptions,
    runner: _ScenarioRun,
    run: RunResult,
    say: Progress,
) -> list[CheckResult]:
    """The generated conversations (part of the property layer), gated like schemathesis' run."""
    from gateproof.contract._conversations import (
        CONVERSATION_EXAMPLES,
        run_conversations,
        skipped_conversations,
    )

    blocked = _generated_blocked(runner, "conversation")
    if blocked is not None:
        results = _unsent(skipped_conversations(config, blocked[0]), *blocked)
    else:
        say("property layer: generated conversations")
        started = time.monotonic()
        examples = min(config.property_examples, CONVERSATION_EXAMPLES)
        results = run_conversations(config, api_key, examples=examples, progress=say)
        run.metadata["conversation_examples"] = examples
        run.metadata["conversation_seconds"] = round(time.monotonic() - started, 3)
    if options.checks is not None:
        results = [r for r in results if r.check in options.checks]
    return results


def describe_checks() -> list[tuple[str, str, str]]:
    """(layer, name, description) of every check, scenario/stream registry and property layer alike."""
    from gateproof.contract._conversations import CONVERSATION_CHECKS
    from gateproof.contract._property import PROPERTY_CHECKS

    load_all_checks()
    rows = [(c.layer.value, c.name, c.description) for c in CHECKS]
    rows += [(Layer.PROPERTY.value, name, text) for name, text in PROPERTY_CHECKS.items()]
    rows += [(Layer.PROPERTY.value, name, text) for name, text in CONVERSATION_CHECKS.items()]
    return sorted(rows)
