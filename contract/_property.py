"""The property layer: schemathesis drives generated requests from the reference spec.

This is the only module that imports schemathesis. It runs schemathesis' engine
(examples, coverage and fuzzing phases, deterministic, bounded) against the
target and folds its per-case check outcomes into one result per (check,
operation): failed when any case failed, with the smallest failing request and
the response as the evidence.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateproof.contract._config import TargetConfig
from gateproof.contract._exchange import WireForwarder
from gateproof.contract._redaction import redact_headers
from gateproof.contract.checks import Profile
from gateproof.contract.results import CheckResult, Exchange, Layer, Outcome
from gateproof.openapi import spec_path

__all__ = ["PROPERTY_CHECKS", "run_property_layer", "skipped_property_layer"]

#: schemathesis checks we run, with the sentence our registry shows for each
PROPERTY_CHECKS: dict[str, str] = {
    "not_a_server_error": "No generated request, valid or not, gets a 5xx.",
    "status_code_conformance": "Every status the target answers is documented in the spec.",
    "content_type_conformance": "Every Content-Type the target answers is documented for that status.",
    "response_schema_conformance": "Every response body (and every SSE event) validates against the spec.",
    "response_headers_conformance": "Documented response headers are present and valid.",
    "negative_data_rejection": "Requests that violate the spec are rejected with a 4xx.",
    "positive_data_acceptance": "Requests that satisfy the spec are accepted with a 200.",
    "ignored_auth": "The operation's declared authentication is enforced (no key or a bad key gets 401).",
    "unsupported_method": "Undeclared methods on a known path get 405 with an Allow header.",
}

#: what an openai-core target is held to: the Edgee spec's extra rules do not bind it
_CORE_CHECKS = ("not_a_server_error", "positive_data_acceptance", "ignored_auth")


def _origin_base(base_url: str) -> str:
    """The spec's paths start with /v1, so schemathesis gets the base URL without it."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


#: seconds schemathesis waits for the forwarder beyond the target's own deadline, so that the
#: forwarder's bound (which names the failure) always fires first
_FORWARDER_MARGIN_S = 5.0


def _settings(config: TargetConfig, api_key: str, enabled: tuple[str, ...], proxy: str) -> dict[str, Any]:
    checks: dict[str, Any] = {"enabled": False}
    for name in enabled:
        checks[name] = {"enabled": True}
    if "positive_data_acceptance" in enabled:
        checks["positive_data_acceptance"]["expected-statuses"] = ["200"]
    if "negative_data_rejection" in enabled:
        checks["negative_data_rejection"]["expected-statuses"] = ["400", "401", "403", "404", "413", "422"]
    return {
        "base-url": _origin_base(config.base_url),
        "headers": {"Authorization": f"Bearer {api_key}"},
        "seed": config.seed,
        "workers": 1,
        # every request goes through the WireForwarder, which bounds it (deadline, size, no redirect)
        "proxy": proxy,
        "max-redirects": 0,
        "request-timeout": config.timeout_s + _FORWARDER_MARGIN_S,
        "max-stream-events": 2000,
        "generation": {
            "max-examples": config.property_examples,
            "deterministic": True,
            "mode": "all" if config.profile is Profile.EDGEE else "positive",
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": config.profile is Profile.EDGEE},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": checks,
        "output": {"sanitization": {"enabled": True}},
    }


#: body fields whose valid values are server state (which models exist, which Edge Tools are
#: activated, which pending operations are stored): a schema-valid random value is still rightly
#: refused, so positive cases use known values for them
_STATEFUL_FIELDS = ("edgee_tool_ids", "edgee_pending_id")


def _server_state_pinned(model: str) -> Callable[[Any, Any], Any]:
    """A schemathesis ``map_case`` hook: positive bodies get the target's model and no stateful ids.

    Negative bodies are left alone, so an invalid ``model`` or ``edgee_tool_ids`` is still sent
    and must still be rejected.
    """
    from schemathesis.core.parameters import ParameterLocation

    def pin(_context: Any, case: Any) -> Any:
        meta = getattr(case, "_meta", None)
        if meta is None or meta.is_negative_at(ParameterLocation.BODY) or not isinstance(case.body, dict):
            return case
        body = dict(case.body)
        if "model" in body:
            body["model"] = model
        for key in _STATEFUL_FIELDS:
            body.pop(key, None)
        case.body = body
        return case

    return pin


@dataclass
class _Tally:
    """Per (check, operation): how many cases ran, the first failure seen."""

    cases: int = 0
    failures: int = 0
    reason: str = ""
    detail: str = ""
    exchange: Exchange | None = None
    elapsed: float = 0.0
    operations: set[str] = field(default_factory=set)


def _exchange_from(recorder: Any, case_id: str) -> Exchange | None:
    interaction = recorder.interactions.get(case_id)
    if interaction is None:
        return None
    request, response = interaction.request, interaction.response
    body: Any = None
    if request.body:
        body = request.body[:2048].decode("utf-8", "replace")
    headers = {k: ", ".join(v) if isinstance(v, list) else str(v) for k, v in dict(request.headers).items()}
    result_body: Any = None
    status: int | None = None
    response_headers: dict[str, str] = {}
    if response is not None:
        status = response.status_code
        result_body = (response.content or b"")[:2048].decode("utf-8", "replace")
        response_headers = {k: ", ".join(v) for k, v in response.headers.items()}
    return Exchange(
        method=request.method,
        url=request.uri,
        request_headers=redact_headers(headers),
        request_body=body,
        status=status,
        response_headers=redact_headers(response_headers),
        response_body=result_body,
    )


def run_property_layer(
    config: TargetConfig,
    api_key: str,
    *,
    only: frozenset[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """Run schemathesis against the target and return one result per (check, operation).

    ``only`` restricts the checks schemathesis runs (not just those reported): schemathesis stops
    testing an operation at its first failure, so an unwanted check could hide a wanted one.

    schemathesis reaches the target only through a :class:`WireForwarder`, which holds each
    request to the wire rules. When the target breaks one (a deadline, a body too large, a
    redirect, JSON nested too deep, ...) the forwarder stops relaying, schemathesis ends, and
    every check that had not already found a failure is an error naming the failure.
    """
    _keep_hypothesis_out_of_the_working_directory()
    with WireForwarder(config.timeout_s) as wire, _environment_proxies_hidden():
        results = _run_engine(config, api_key, wire.url, only=only, progress=progress)
    if wire.stop_reason is None:
        return results
    reason = f"{wire.stop_reason}; the property layer stopped there"
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    found = {r.check for r in failed}
    return failed + [
        _result(config, name, "all operations", Outcome.ERROR, reason)
        for name in PROPERTY_CHECKS
        if name not in found and (only is None or name in only)
    ]


def hypothesis_home() -> Path:
    """Where hypothesis keeps its caches for gateproof: a per-user cache folder.

    hypothesis' default is ``.hypothesis/`` in the current directory, so every ``gateproof
    contract`` would leave a folder in the user's working tree (or CI checkout). The cache is
    worth keeping across runs (schemathesis' generation warms it; a cold run peaks ~150 MiB
    higher), so it goes under ``$XDG_CACHE_HOME`` (or ``~/.cache``), unless the user chose a
    place with ``HYPOTHESIS_STORAGE_DIRECTORY``.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gateproof" / "hypothesis"


def _keep_hypothesis_out_of_the_working_directory() -> None:
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    home = hypothesis_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable home: a throwaway folder still keeps the working tree clean
        home = Path(tempfile.mkdtemp(prefix="gateproof-hypothesis-"))
    set_hypothesis_home_dir(home)


#: the environment variables ``requests`` reads a proxy from (in either case)
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


@contextlib.contextmanager
def _environment_proxies_hidden() -> Iterator[None]:
    """Hide proxy settings of the environment from ``requests`` while schemathesis runs.

    ``requests`` adds an ``http_proxy`` from the environment under the ``http`` key, which wins
    over the ``all`` key schemathesis gives the forwarder: traffic would bypass the wire rules
    and could leave loopback. The variables are restored afterwards.
    """
    hidden = {name: os.environ.pop(name) for name in list(os.environ) if name.lower() in _PROXY_VARIABLES}
    try:
        yield
    finally:
        os.environ.update(hidden)


def _run_engine(
    config: TargetConfig,
    api_key: str,
    proxy: str,
    *,
    only: frozenset[str] | None,
    progress: Callable[[str], None] | None,
) -> list[CheckResult]:
    """One schemathesis run, every request sent through ``proxy``; results per (check, operation)."""
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import Status, events, from_schema

    enabled = tuple(PROPERTY_CHECKS) if config.profile is Profile.EDGEE else _CORE_CHECKS
    if only is not None:
        enabled = tuple(name for name in enabled if name in only)
    st_config = SchemathesisConfig.from_dict(_settings(config, api_key, enabled, proxy))
    schema = schemathesis.openapi.from_path(spec_path(), config=st_config)
    schema.hook("map_case")(_server_state_pinned(config.model))
    tallies: dict[tuple[str, str], _Tally] = {}
    fatal: str | None = None
    started = time.monotonic()
    interrupted = False
    stream = from_schema(schema).execute()
    for event in stream:
        if isinstance(event, events.Interrupted) or getattr(event, "status", None) is Status.INTERRUPTED:
            # schemathesis swallows Ctrl-C (and the CLI's SIGTERM, a KeyboardInterrupt too) and reports
            # it as an Interrupted event, or only as an interrupted status when it lands while a phase
            # winds down; the cases it never ran would then read as "not applicable" in a green run.
            # Tell the engine to stop, let it wind down (its next events are the last), then pass the
            # interrupt on.
            interrupted = True
            stream.stop()
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            label = recorder.label
            if progress is not None:
                progress(f"property: {label} ({event.phase.value})")
            timed: set[str] = set()
            for case_id, nodes in recorder.checks.items():
                for node in nodes:
                    tally = tallies.setdefault((node.name, label), _Tally())
                    tally.cases += 1
                    if node.name not in timed:
                        # the phase's wall time, counted once per check: the checks of a case share it
                        tally.elapsed += event.elapsed_time
                        timed.add(node.name)
                    if node.status == Status.FAILURE and node.failure_info is not None:
                        tally.failures += 1
                        if tally.failures == 1:
                            failure = node.failure_info.failure
                            tally.reason = f"{failure.title}: {failure.message}".strip().splitlines()[0][:300]
                            tally.detail = failure.message[:2000]
                            tally.exchange = _exchange_from(recorder, case_id)
        elif isinstance(event, events.FatalError):
            fatal = f"{type(event.exception).__name__}: {event.exception}"
        elif isinstance(event, events.NonFatalError):
            fatal = fatal or f"{event.label}: {event.info.title if hasattr(event, 'info') else event.value}"
    if interrupted:
        raise KeyboardInterrupt("the property layer was interrupted")
    results: list[CheckResult] = []
    for name in PROPERTY_CHECKS:
        if only is not None and name not in only:
            continue
        applicable = name in enabled
        seen = {label: t for (check, label), t in tallies.items() if check == name}
        if not applicable:
            results.append(
                _result(
                    config, name, "all operations", Outcome.NOT_APPLICABLE, "outside the openai-core profile"
                )
            )
            continue
        if not seen:
            outcome = Outcome.ERROR if fatal else Outcome.PASSED
            reason = fatal or "no generated case exercised this check"
            if not fatal:
                outcome = Outcome.NOT_APPLICABLE
            results.append(_result(config, name, "all operations", outcome, reason))
            continue
        for label, tally in sorted(seen.items()):
            if tally.failures:
                results.append(
                    _result(
                        config,
                        name,
                        label,
                        Outcome.FAILED,
                        f"{tally.failures} of {tally.cases} generated cases failed; first: {tally.reason}",
                        actual=tally.detail,
                        exchange=tally.exchange,
                        elapsed=tally.elapsed,
                    )
                )
            else:
                results.append(
                    _result(
                        config,
                        name,
                        label,
                        Outcome.PASSED,
                        f"{tally.cases} generated cases passed",
                        elapsed=tally.elapsed,
                    )
                )
    if progress is not None:
        progress(f"property layer done in {time.monotonic() - started:.1f} s")
    return results


def skipped_property_layer(config: TargetConfig, reason: str) -> list[CheckResult]:
    """One error result per property check, for a run that could not reach the target any more."""
    return [_result(config, name, "all operations", Outcome.ERROR, reason) for name in PROPERTY_CHECKS]


def _result(
    config: TargetConfig,
    name: str,
    label: str,
    outcome: Outcome,
    reason: str,
    *,
    actual: str = "",
    exchange: Exchange | None = None,
    elapsed: float = 0.0,
) -> CheckResult:
    return CheckResult(
        check=name,
        description=PROPERTY_CHECKS[name],
        layer=Layer.PROPERTY,
        profile=config.profile.value,
        target=config.name,
        route=label,
        scenario="generated",
        outcome=outcome,
        expected=PROPERTY_CHECKS[name],
        actual=actual,
        reason=reason,
        exchange=exchange,
        duration_ms=elapsed * 1000.0,
    )
