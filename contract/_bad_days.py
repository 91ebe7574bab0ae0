"""The failure matrix (decision D48): a provider's bad days, played through the target.

Each row of D48 is a provider fault the gateproof mock serves on demand (``scenario=error
status=...``, ``fault=...``, ``fail_first=N`` for a failure that clears); each cell is that
fault with or without streaming, a scenario like any other, judged by the same runner on
any gateway wired to the mock. A cell's scenario carries its ``BadDay``: the row's name and
mode (what ``CheckResult.fault`` and ``CheckResult.mode`` report, so the failure-matrix table
groups by them) and what the row owes beyond its status: how many upstream attempts an
edgee gateway makes (D44), which declared timeout the fault outlasts (D46), whether the
client leaves after the first chunk.

The scenarios are built by ``bad_day_scenarios`` (called once by ``_scenarios``, which merges
them into ``SCENARIOS``): this module imports the scenario model only inside that function,
so either module may be imported first.

Cost: a row that outlasts a timeout takes that timeout, a 429 or 503 with ``Retry-After: 1``
about a second; the runner plays the matrix's cells concurrently (``MATRIX_WORKERS``), so the
whole matrix takes about as long as its slowest cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from gateproof.contract._config import TIMEOUT_NAMES

if TYPE_CHECKING:
    from gateproof.contract._scenarios import Expectation, Scenario

__all__ = [
    "BAD_DAY_ROWS",
    "MATRIX_WORKERS",
    "MAX_UPSTREAM_ATTEMPTS",
    "BadDay",
    "bad_day_scenarios",
    "played",
]

#: more upstream requests than this for one client request amplify an overloaded provider's load (D44)
MAX_UPSTREAM_ATTEMPTS: Final = 5
#: how many cells of the matrix the runner plays at once (each is one slow, mostly idle request)
MATRIX_WORKERS: Final = 8
#: the first-byte and idle timeouts (``TargetConfig.timeouts``) a row may outlast
FIRST_BYTE, STREAM_IDLE = TIMEOUT_NAMES
#: how much longer than the declared timeout the mock stalls (D46)
_OUTLAST_S: Final = 1.0

# The rows of D48, in its order (``CheckResult.fault``); the report's table lists them so.
RATE_LIMITED = "429 persistent"
RATE_LIMITED_ONCE = "429 transient"
SERVER_ERROR = "500/502/503 persistent"
UNAVAILABLE_ONCE = "503 transient"
OVERLOADED = "overload (529, 503 elsewhere)"
CREDENTIAL_REFUSED = "provider 401/403"
RESET_BEFORE_STATUS = "reset before the status line"
SLOW_HEADERS = "slow headers beyond first_byte_s"
ERROR_EVENT = "error event in the stream"
STREAM_CUT = "stream cut without terminator"
RESET_MID_ANSWER = "reset after N chunks"
MALFORMED_CHUNK = "malformed chunk"
STALL = "stall beyond stream_idle_s"
DRIP = "slow drip"
CLIENT_LEAVES = "client leaves after the first chunk"
#: not a row of D48's table but its consequence (D44): a model with a fallback whose primary is down
FALLBACK = "primary down, fallback configured"

BAD_DAY_ROWS: Final = (
    RATE_LIMITED,
    RATE_LIMITED_ONCE,
    SERVER_ERROR,
    UNAVAILABLE_ONCE,
    OVERLOADED,
    CREDENTIAL_REFUSED,
    RESET_BEFORE_STATUS,
    SLOW_HEADERS,
    ERROR_EVENT,
    STREAM_CUT,
    RESET_MID_ANSWER,
    MALFORMED_CHUNK,
    STALL,
    DRIP,
    CLIENT_LEAVES,
    FALLBACK,
)


@dataclass(frozen=True)
class BadDay:
    """The failure-matrix cell a scenario plays, and what its row owes beyond the status."""

    #: the row of D48 (one of ``BAD_DAY_ROWS``)
    row: str
    #: upstream attempts an edgee gateway makes on this row (D44: 2 on the primary, 1 per
    #: fallback, 1 for a failure that is not retried); None: the row does not judge them
    attempts: int | None = None
    #: the declared timeout (a ``TIMEOUT_NAMES`` entry) the provider's fault outlasts: the mock
    #: waits that long plus one second, and the cell is not applicable when it is not declared
    outlasts: str | None = None
    #: the row's own check judges the whole stream (the fault breaks it on purpose, so the
    #: grammar rules a clean stream is held to would report the fault instead of the gateway)
    judges_stream: bool = False
    #: the client reads the first content chunk and closes the connection
    client_leaves: bool = False
    #: the request names the target's ``fallback_model``; not applicable when none is declared
    needs_fallback: bool = False

    def mode(self, stream: bool) -> str:
        """The cell's column: ``stream`` or ``non-stream`` (``CheckResult.mode``)."""
        return "stream" if stream else "non-stream"


def played(scenario: Scenario, timeouts: Mapping[str, float], *, key_passthrough: bool = False) -> Scenario:
    """``scenario`` with its mock directive sized to the target's declared timeouts.

    A stall or slow headers last the declared timeout plus one second (D46); a drip makes
    each frame take under a third of the idle timeout, so no event is late while the whole
    answer takes longer than the idle timeout (a gateway that times the whole stream fails).
    A target that passes the client's key to the provider (``key_passthrough``) owes the
    provider's 401 / 403 to the client as it is: the refused credential is the client's own.
    """
    day = scenario.bad_day
    if day is None:
        return scenario
    if key_passthrough and day.row == CREDENTIAL_REFUSED:
        from gateproof.contract._scenarios import Expectation  # here: _scenarios imports this module

        status = scenario.mock.get("status")
        if isinstance(status, int):
            scenario = dataclasses.replace(
                scenario,
                expect=Expectation(status=status, core_statuses=frozenset({status})),
                description=f"The provider refuses the key ({status}); the target passes the client's key "
                "through, so the client is owed the same refusal.",
            )
    mock: dict[str, object] = dict(scenario.mock)
    if day.outlasts is not None and day.outlasts in timeouts:
        mock["fault_ms"] = round((timeouts[day.outlasts] + _OUTLAST_S) * 1000)
    if mock.get("fault") == "drip" and STREAM_IDLE in timeouts:
        mock["fault_ms"] = round(timeouts[STREAM_IDLE] * 1000 * 0.3)
    return dataclasses.replace(scenario, mock=mock)


def unplayable(scenario: Scenario, timeouts: Mapping[str, float], fallback_model: str | None) -> str | None:
    """Why the target's declarations leave this cell unplayable (the result is not applicable), or None."""
    day = scenario.bad_day
    if day is None:
        return None
    if day.outlasts is not None and day.outlasts not in timeouts:
        return f"needs the target's declared timeouts.{day.outlasts} (D46: the suite stalls 1 s beyond it)"
    if day.needs_fallback and not fallback_model:
        return "needs the target's declared fallback_model (a model with a fallback route, D44)"
    return None


# -- the cells -----------------------------------------------------------------------------------

_ERROR_ANSWER = (
    "status_code_expected",
    "content_type_matches_mode",
    "error_body_conforms",
    "error_code_expected",
    "no_duplicate_json_keys",
)
#: judged on every cell whose fault strikes before the first byte
_BEFORE_FIRST_BYTE = ("upstream_attempts_bounded", "retries_as_decided", "fallback_header_truthful")
#: a cell whose failure clears: what any answer owes (openai-core may pass the failure on, D48)...
_TRANSIENT = {
    False: ("status_code_expected", "content_type_matches_mode", "no_duplicate_json_keys"),
    # a stream's chunks are judged only when one came (the grammar rules join a 200 stream too)
    True: (
        "status_code_expected",
        "content_type_matches_mode",
        "chunk_schema_conformance",
        "no_duplicate_json_keys",
    ),
}
#: ...and what the 200 an edgee gateway owes holds
_SERVED_BODY = {
    False: ("response_schema_conformance", "finish_reason_expected", "provider_header_present"),
    True: ("provider_header_present",),
}
#: judged on every cell whose fault strikes after the stream started
_AFTER_FIRST_BYTE = (
    "status_code_expected",
    "content_type_matches_mode",
    "no_retry_after_first_chunk",
    "upstream_attempts_bounded",
    "no_duplicate_json_keys",
)
_SERVER_ERRORS = frozenset(range(500, 600))
_MOCK_ERROR: Final[dict[str, object]] = {"scenario": "error"}


def _body(stream: bool, **extra: Any) -> dict[str, Any]:
    text = "Tell me about the weather." if stream else "Say hello."
    return {"messages": [{"role": "user", "content": text}], "max_tokens": 32, "stream": stream, **extra}


def bad_day_scenarios() -> tuple[Scenario, ...]:
    """Every cell of the failure matrix as a scenario, row by row, non-stream before stream."""
    from gateproof.contract._scenarios import Expectation, Scenario
    from gateproof.contract.checks import Requirement

    mock_only = frozenset({Requirement.MOCK_JOURNAL})
    cells: list[Scenario] = []

    def cell(
        name: str,
        day: BadDay,
        *,
        stream: bool,
        description: str,
        mock: Mapping[str, object],
        expect: Expectation,
        checks: tuple[str, ...],
        per_provider: bool = False,
        provider_mock: Mapping[str, Mapping[str, object]] | None = None,
        body: dict[str, Any] | None = None,
        edgee_checks: tuple[str, ...] = (),
    ) -> None:
        cells.append(
            Scenario(
                name=name,
                description=description,
                body=body or _body(stream),
                checks=checks,
                edgee_checks=edgee_checks,
                mock=dict(mock),
                provider_mock=dict(provider_mock or {}),
                expect=expect,
                requires=mock_only,
                per_provider=per_provider,
                bad_day=day,
            )
        )

    def error_cells(
        name: str,
        day: BadDay,
        *,
        description: str,
        mock: Mapping[str, object],
        status: int,
        code: str,
        core: frozenset[int],
        modes: tuple[bool, ...] = (False, True),
        per_provider: bool = False,
        provider_mock: Mapping[str, Mapping[str, object]] | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        for stream in modes:
            cell(
                f"{name}_stream" if stream else name,
                day,
                stream=stream,
                description=description,
                mock=mock,
                expect=Expectation(status=status, core_statuses=core, error_code=code),
                checks=(*_ERROR_ANSWER, *extra, *_BEFORE_FIRST_BYTE),
                per_provider=per_provider,
                provider_mock=provider_mock,
            )

    def transient_cells(
        name: str,
        day: BadDay,
        *,
        description: str,
        mock: Mapping[str, object],
        core: frozenset[int],
        per_provider: bool = False,
    ) -> None:
        for stream in (False, True):
            cell(
                f"{name}_stream" if stream else name,
                day,
                stream=stream,
                description=description,
                mock={**mock, "fail_first": 1, "tokens": 6},
                expect=Expectation(finish_reason="stop", core_statuses=frozenset({200}) | core),
                checks=(*_TRANSIENT[stream], *_BEFORE_FIRST_BYTE),
                # the served answer's body is owed in edgee; openai-core may pass the failure on
                # (shown, not judged), so there only the status and the attempts are judged
                edgee_checks=_SERVED_BODY[stream],
                per_provider=per_provider,
            )

    def mid_stream_cell(
        name: str,
        day: BadDay,
        *,
        description: str,
        mock: Mapping[str, object],
        own: str,
        per_provider: bool,
    ) -> None:
        cell(
            name,
            day,
            stream=True,
            description=description,
            mock={"scenario": "text", "tokens": 12, **mock},
            expect=Expectation(),
            checks=(*_AFTER_FIRST_BYTE, own),
            per_provider=per_provider,
        )

    error_cells(
        "upstream_rate_limited",
        BadDay(RATE_LIMITED, attempts=2),
        description="The provider answers 429 with Retry-After: 1 every time: after one retry the client "
        "gets 429 provider_rate_limited with Retry-After (D44, D16).",
        mock={**_MOCK_ERROR, "status": 429, "retry_after": 1},
        status=429,
        code="provider_rate_limited",
        core=frozenset({429}),
        per_provider=True,
        extra=("retry_after_passed_on",),
    )
    transient_cells(
        "upstream_rate_limited_transient",
        BadDay(RATE_LIMITED_ONCE, attempts=2),
        description="The provider's first attempt is a 429 (Retry-After: 1), the second answers: the client "
        "gets one clean 200 answer after 2 upstream attempts (D44; openai-core may pass the 429 on).",
        mock={**_MOCK_ERROR, "status": 429, "retry_after": 1},
        core=frozenset({429}),
        per_provider=True,
    )
    error_cells(
        "upstream_server_error",
        BadDay(SERVER_ERROR, attempts=2),
        description="The provider answers 500 every time: after one retry, 502 provider_error.",
        mock={**_MOCK_ERROR, "status": 500},
        status=502,
        code="provider_error",
        core=frozenset({500, 502, 503}),
        per_provider=True,
    )
    for status in (502, 503):
        error_cells(
            f"upstream_server_error_{status}",
            BadDay(SERVER_ERROR, attempts=2),
            description=f"The provider answers {status} every time: after one retry, 502 provider_error.",
            mock={**_MOCK_ERROR, "status": status},
            status=502,
            code="provider_error",
            core=frozenset({500, 502, 503}),
            modes=(False,),
        )
    transient_cells(
        "upstream_unavailable_transient",
        BadDay(UNAVAILABLE_ONCE, attempts=2),
        description="The provider's first attempt is a 503, the second answers: 200 after 2 attempts (D44; "
        "openai-core may pass a 5xx on).",
        mock={**_MOCK_ERROR, "status": 503},
        core=frozenset({500, 502, 503}),
    )
    error_cells(
        "upstream_overloaded",
        BadDay(OVERLOADED, attempts=2),
        description="The provider is overloaded (Anthropic's 529, a 503 elsewhere) every time: after one "
        "retry, 502 provider_error.",
        mock={**_MOCK_ERROR, "status": 503},
        provider_mock={"anthropic": {"status": 529}},
        status=502,
        code="provider_error",
        core=frozenset({500, 502, 503}),
        per_provider=True,
    )
    error_cells(
        "upstream_credential_refused",
        BadDay(CREDENTIAL_REFUSED, attempts=1),
        description="The provider refuses the gateway's own credential (401): not retried, 502 "
        "provider_error; a 401 to the client would blame the client's key.",
        mock={**_MOCK_ERROR, "status": 401},
        status=502,
        code="provider_error",
        core=_SERVER_ERRORS,
    )
    error_cells(
        "upstream_credential_forbidden",
        BadDay(CREDENTIAL_REFUSED, attempts=1),
        description="The provider forbids the gateway's own credential (403): not retried, 502 provider_error.",
        mock={**_MOCK_ERROR, "status": 403},
        status=502,
        code="provider_error",
        core=_SERVER_ERRORS,
        modes=(False,),
    )
    error_cells(
        "upstream_connection_reset",
        BadDay(RESET_BEFORE_STATUS, attempts=2),
        description="The provider resets the connection before its status line: after one retry, 502 "
        "provider_error.",
        mock={"scenario": "text", "tokens": 6, "fault": "reset"},
        status=502,
        code="provider_error",
        core=_SERVER_ERRORS,
    )
    error_cells(
        "upstream_slow_headers",
        BadDay(SLOW_HEADERS, attempts=1, outlasts=FIRST_BYTE),
        description="The provider sends nothing for 1 s longer than the declared first-byte timeout: 504 "
        "provider_timeout, not retried (D46, D44). Streams only: a non-streamed answer's headers come "
        "with the whole answer, so only the provider timeout bounds them.",
        mock={"scenario": "text", "tokens": 6, "fault": "slow_headers"},
        status=504,
        code="provider_timeout",
        core=frozenset({502, 504}),
        modes=(True,),
    )
    mid_stream_cell(
        "upstream_mid_stream_error",
        BadDay(ERROR_EVENT, judges_stream=True),
        description="The provider fails after the stream started: an error event, then the end, no [DONE], "
        "no retry (D45).",
        mock={"fault": "mid_stream_error"},
        own="stream_error_propagated",
        per_provider=True,
    )
    mid_stream_cell(
        "upstream_stream_cut",
        BadDay(STREAM_CUT, judges_stream=True),
        description="The provider's stream ends cleanly mid-answer, without finish or terminator: the client "
        "gets an error event and no [DONE] (D45).",
        mock={"fault": "cut", "fault_after": 3},
        own="stream_error_propagated",
        per_provider=True,
    )
    cell(
        "upstream_reset_mid_answer",
        BadDay(RESET_MID_ANSWER, attempts=2),
        stream=False,
        description="The provider drops the connection halfway through a non-streamed body: a connection "
        "failure, retried, then 502 provider_error (D45, D44).",
        mock={"scenario": "text", "tokens": 12, "fault": "truncate"},
        expect=Expectation(
            status=502, core_statuses=frozenset({200}) | _SERVER_ERRORS, error_code="provider_error"
        ),
        checks=(*_ERROR_ANSWER, *_BEFORE_FIRST_BYTE),
    )
    mid_stream_cell(
        "upstream_reset_mid_answer_stream",
        BadDay(RESET_MID_ANSWER, judges_stream=True),
        description="The provider drops the connection after some chunks: an error event, no [DONE] (D45).",
        mock={"fault": "truncate", "fault_after": 3},
        own="stream_error_propagated",
        per_provider=False,
    )
    cell(
        "upstream_malformed_chunk",
        BadDay(MALFORMED_CHUNK, attempts=1),
        stream=False,
        description="The provider's non-streamed body is not JSON: an unusable answer, 502 provider_error, "
        "not retried (D45, D44).",
        mock={"scenario": "text", "tokens": 12, "fault": "malformed_chunk"},
        expect=Expectation(status=502, core_statuses=_SERVER_ERRORS, error_code="provider_error"),
        checks=(*_ERROR_ANSWER, *_BEFORE_FIRST_BYTE),
    )
    mid_stream_cell(
        "upstream_malformed_chunk_stream",
        BadDay(MALFORMED_CHUNK, judges_stream=True),
        description="A chunk of the provider's stream is not JSON: an error event, no [DONE] (D45).",
        mock={"fault": "malformed_chunk", "fault_after": 3},
        own="stream_error_propagated",
        per_provider=False,
    )
    mid_stream_cell(
        "upstream_stream_stall",
        BadDay(STALL, outlasts=STREAM_IDLE, judges_stream=True),
        description="The provider's stream pauses 1 s longer than the declared idle timeout: a "
        "provider_timeout error event, no [DONE] (D46, D45).",
        mock={"fault": "stall", "fault_after": 2},
        own="idle_stall_cut_off",
        per_provider=False,
    )
    cell(
        "upstream_stream_drip",
        BadDay(DRIP, judges_stream=True),
        stream=True,
        description="Every frame of the provider's stream trickles in, none later than the idle timeout: "
        "the whole answer arrives, [DONE] included.",
        mock={"scenario": "text", "tokens": 3, "fault": "drip"},
        expect=Expectation(finish_reason="stop"),
        checks=(
            "status_code_expected",
            "content_type_matches_mode",
            "drip_delivered_whole",
            "no_retry_after_first_chunk",
            "fallback_header_truthful",
            "no_duplicate_json_keys",
        ),
    )
    cell(
        "client_leaves_mid_stream",
        BadDay(CLIENT_LEAVES, judges_stream=True, client_leaves=True),
        stream=True,
        description="The client reads the first content chunk and hangs up: the gateway closes the "
        "provider's request at once (D46).",
        mock={"scenario": "text", "tokens": 40, "itl_ms": 100},
        expect=Expectation(),
        checks=("status_code_expected", "upstream_cancelled_on_disconnect", "no_duplicate_json_keys"),
        body=_body(True, max_tokens=64),
    )
    for stream in (False, True):
        cell(
            "upstream_fallback_stream" if stream else "upstream_fallback",
            BadDay(FALLBACK, attempts=3, needs_fallback=True),
            stream=stream,
            description="The fallback model's primary route answers 500 every time, its fallback route is up: "
            "the fallback answers 200, with X-Edgee-Fallback-Used: true and X-Edgee-Provider naming it (D44).",
            mock={**_MOCK_ERROR, "status": 500, "route_down": 1, "tokens": 6},
            expect=Expectation(finish_reason="stop"),
            checks=(
                "fallback_served",
                "fallback_header_truthful",
                "upstream_attempts_bounded",
                "retries_as_decided",
                "content_type_matches_mode",
                "no_duplicate_json_keys",
            ),
        )
    return tuple(cells)
