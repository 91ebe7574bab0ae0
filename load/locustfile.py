"""locust users that load a chat completions endpoint and time what each stream delivers.

This is the only module that imports locust. locust monkey-patches the socket
layer with gevent when it is imported, so this file only ever runs inside the
child process that ``gateproof load`` starts (``python -m locust -f <this file>
StreamingChatUser ...``); nothing in gateproof imports it.

Three user classes, each sending its requests in a closed loop (no wait between
requests) over its own bounded HTTP/1.1 exchange (``gateproof.load._transport``: one
origin, no redirects followed, capped header block and body, an overall deadline,
a turn for the gevent hub after every read):

- ``StreamingChatUser``: ``stream: true`` with ``stream_options.include_usage``. Each
  piece of the body is stamped with ``time.perf_counter()`` the moment its read
  returns (before the hub gets its turn); parsing and grammar checks run only after the last byte
  (``gateproof.load._analysis``), so they never inflate a timing.
- ``ChatUser``: a plain request; TTFB when the headers are in, e2e when the body is.
- ``CompressionUser``: agent transcripts with compression on, to chat completions and
  ``/compress`` in turn (``gateproof.load._compression``); the gateway's reported compression
  time is judged and recorded after the last byte, like everything else.

Before the body is judged, the status (3xx is ``redirect``, 1xx/4xx/5xx ``http_<code>``)
and the media type (``content_type_matches_mode``) are. Every failure name is listed
in ``gateproof.load._failures``.

Each request is reported to locust exactly once, under its own name (response time =
e2e, failure message = gateproof's failure reason), so locust's statistics (its CSV
files, its summary) count real requests only. The stream timings (``ttfb``, ``ttft``,
``inter_chunk``, ``e2e``) are never fired as locust request events, which locust would
count as requests (a 15-chunk stream would be 19 "requests"); they live in the
recorder's HDR histograms, dumped as JSON when the test stops (see
``gateproof.load._recorder``), and reach ``load.json`` from there.
A request still in flight when locust stops the users (run time + stop timeout) is
counted too, as ``deadline``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import locust.stats
from locust import User, constant, events, task
from locust.exception import CatchResponseError
from locust.runners import MasterRunner, WorkerRunner

from gateproof.load._analysis import analyze_completion, analyze_stream
from gateproof.load._compression import (
    COMPRESSION_HEADER,
    PlannedRequest,
    analyze_compress,
    compression_plan,
    judge_chat_compression,
    parse_transcript_sizes,
)
from gateproof.load._failures import IN_FLIGHT_AT_END, INTERNAL_ERROR, media_type_failure, status_failure
from gateproof.load._measurement import Measurement
from gateproof.load._recorder import Recorder
from gateproof.load._settings import LocustSettings
from gateproof.load._transport import ExchangeFailed, Response, Target, build_request

SETTINGS = LocustSettings.from_env()
_API_KEY = os.environ.get(SETTINGS.api_key_env, "")
if not _API_KEY:
    raise RuntimeError(f"environment variable {SETTINGS.api_key_env} (the API key) is not set")

RECORDER = Recorder(scenario="")
_LOG = logging.getLogger("gateproof.load")


def _headers(accept: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {_API_KEY}",
        "Content-Type": "application/json",
        "Accept": accept,
        # a compressed event stream would hide chunk boundaries from the timings
        "Accept-Encoding": "identity",
    }


#: takes a good response's body: (response, measurement, sent_at, headers_at) -> None
BodyReader = Callable[[Response, Measurement, float, float], None]


class _ChatUser(User):
    abstract = True
    wait_time = constant(0)
    #: the entry name of the request itself in locust's statistics
    entry_name = "chat"
    #: what the request asks for, and so the media type the answer must have
    stream = False

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        origin = urlsplit(self.host or "")
        if origin.hostname is None:
            raise ValueError("the locustfile needs --host (it is started by `gateproof load`)")
        scheme = origin.scheme or "http"
        self.target = Target(
            scheme,
            origin.hostname,
            origin.port or (443 if scheme == "https" else 80),
            connect_timeout=SETTINGS.connect_timeout,
        )
        body = json.dumps(SETTINGS.body(stream=self.stream)).encode()
        accept = "text/event-stream" if self.stream else "application/json"
        self._request = build_request(SETTINGS.path, origin.netloc, _headers(accept), body)

    def on_stop(self) -> None:
        self.target.close()

    def _exchange(self, read: BodyReader, request: bytes | None = None) -> None:
        """One request, shared by both users: send, judge the head, let ``read`` take the body
        (timed from ``sent_at``/``headers_at``), then report it to locust and the recorder.

        A request the run stops (locust kills the user's greenlet once the stop timeout is up)
        is still reported, as ``deadline``, before the kill goes on.
        """
        # locust stops a user that is between tasks by killing its greenlet; a kill decided while
        # the user was waiting is only delivered at the user's next yield, which would otherwise
        # fall inside this request and cut it off as it starts. Yield first, so such a stop lands
        # here, before anything is sent or counted.
        gevent.sleep(0)
        measurement = Measurement(started_wall=time.time())
        RECORDER.begin(measurement)
        sent_at = time.perf_counter()
        response: Response | None = None
        try:
            response = self.target.send(request or self._request, sent_at + SETTINGS.timeout)
            headers_at = response.head_at
            measurement.status = response.status
            measurement.got_response = True
            failure = status_failure(response.status) or media_type_failure(
                response.header("content-type"), stream=self.stream
            )
            if failure is None:
                read(response, measurement, sent_at, headers_at)
            else:
                measurement.fail(failure)
                measurement.ttfb = headers_at - sent_at
        except ExchangeFailed as exc:
            measurement.got_response = measurement.got_response or exc.answered
            measurement.fail(exc.reason)
        except gevent.GreenletExit:
            measurement.fail(IN_FLIGHT_AT_END)
            self._report(measurement, sent_at)
            raise
        except Exception:
            # a bug of ours, not a verdict on the target: counted under its own name, the
            # traceback goes to locust.log only
            _LOG.exception("gateproof's load user failed on an answer")
            measurement.fail(INTERNAL_ERROR)
        finally:
            if response is not None:
                response.close()
        self._report(measurement, sent_at)

    def _report(self, measurement: Measurement, sent_at: float) -> None:
        """Settle the request's one locust entry (response time = e2e) and hand it to the recorder,
        which keeps the stream timings in gateproof's own histograms."""
        if measurement.e2e is None:
            measurement.e2e = time.perf_counter() - sent_at
        self.environment.events.request.fire(
            request_type="POST",
            name=self.entry_name,
            response_time=measurement.e2e * 1000.0,
            response_length=0,
            exception=None if measurement.ok else CatchResponseError(measurement.reason or "unknown"),
            context={},
            start_time=measurement.started_wall,
            url=SETTINGS.path,
            response=None,
        )
        RECORDER.add(measurement)


class StreamingChatUser(_ChatUser):
    """Streams a chat completion and times the stream (see the module docstring)."""

    entry_name = "chat stream"
    stream = True

    @task
    def stream_chat(self) -> None:
        self._exchange(self._take_stream)

    @staticmethod
    def _take_stream(response: Response, measurement: Measurement, sent_at: float, headers_at: float) -> None:
        """Read the body piece by piece, stamping each piece on arrival, then replay it."""
        reads: list[tuple[float, bytes]] = []
        append = reads.append
        read_some = response.read_some
        try:
            while True:
                arrived, data = read_some()
                if not data:
                    break
                append((arrived, data))
        except ExchangeFailed as exc:
            measurement.fail(exc.reason)
        ended_at = response.arrived_at
        analyze_stream(measurement, reads, sent_at=sent_at, headers_at=headers_at, ended_at=ended_at)


class ChatUser(_ChatUser):
    """Sends a non-streamed chat completion; TTFB, e2e, output tokens, JSON validity."""

    entry_name = "chat"
    stream = False

    @task
    def chat(self) -> None:
        self._exchange(self._take_completion)

    @staticmethod
    def _take_completion(
        response: Response, measurement: Measurement, sent_at: float, headers_at: float
    ) -> None:
        pieces: list[bytes] = []
        try:
            while data := response.read_some()[1]:
                pieces.append(data)
        except ExchangeFailed as exc:
            measurement.fail(exc.reason)
        ended_at = response.arrived_at
        if measurement.ok:
            body = b"".join(pieces)
            pieces.clear()
            analyze_completion(measurement, body, sent_at=sent_at, headers_at=headers_at, ended_at=ended_at)
        else:
            measurement.ttfb = headers_at - sent_at
            measurement.e2e = ended_at - sent_at


class CompressionUser(_ChatUser):
    """Sends agent transcripts for compression, to chat completions and /compress in turn.

    Each user walks the (endpoint, size) cycle of ``gateproof.load._compression`` from its own
    starting point; the requests are built once per process. The entry name in locust's
    statistics is ``<endpoint> <size>``, so locust's CSV has one row per cell too.
    """

    entry_name = "compression"
    stream = False
    _plan: list[tuple[PlannedRequest, bytes]] = []
    _users = 0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if not CompressionUser._plan:
            sizes = parse_transcript_sizes(SETTINGS.transcript_sizes)
            host = urlsplit(self.host or "").netloc
            headers = {**_headers("application/json"), COMPRESSION_HEADER: "true"}
            planned = compression_plan(
                sizes, model=SETTINGS.model, directive=SETTINGS.directive, max_tokens=SETTINGS.max_tokens
            )
            CompressionUser._plan = [
                (
                    entry,
                    build_request(
                        SETTINGS.path if entry.endpoint == "chat" else SETTINGS.compress_path,
                        host,
                        headers,
                        json.dumps(entry.body).encode(),
                    ),
                )
                for entry in planned
            ]
        self._turn = CompressionUser._users
        CompressionUser._users += 1

    @task
    def compress(self) -> None:
        entry, request = self._plan[self._turn % len(self._plan)]
        self._turn += 1
        self.entry_name = f"{entry.endpoint} {entry.size}"

        def take(response: Response, measurement: Measurement, sent_at: float, headers_at: float) -> None:
            body, ended_at = _read_body(response, measurement)
            if not measurement.ok:
                measurement.ttfb = headers_at - sent_at
                measurement.e2e = ended_at - sent_at
            elif entry.endpoint == "chat":
                analyze_completion(
                    measurement, body, sent_at=sent_at, headers_at=headers_at, ended_at=ended_at
                )
                judge_chat_compression(
                    measurement, body, size=entry.size, original_tokens=entry.original_tokens
                )
            else:
                analyze_compress(
                    measurement,
                    body,
                    sent_at=sent_at,
                    headers_at=headers_at,
                    ended_at=ended_at,
                    size=entry.size,
                    original_tokens=entry.original_tokens,
                )

        self._exchange(take, request)


def _read_body(response: Response, measurement: Measurement) -> tuple[bytes, float]:
    """The whole body and when its last byte arrived (a transport failure is recorded, body cut)."""
    pieces: list[bytes] = []
    try:
        while data := response.read_some()[1]:
            pieces.append(data)
    except ExchangeFailed as exc:
        measurement.fail(exc.reason)
    return b"".join(pieces), response.arrived_at


def _on_init(**_kwargs: Any) -> None:
    """Refresh gevent's cached loop time before locust arms its run-time timer.

    libev schedules timers from a cached "now" that is only refreshed when the loop
    runs; locust imports this file and sets up for a while before the loop ever
    runs, so ``--run-time`` would otherwise expire early by that set-up time
    (about 0.6 s of a 2 s run, measured; the libev behaviour is gevent/gevent#97).
    """
    gevent.get_hub().loop.update_now()


def _report_progress(path: Path) -> None:
    """Refresh the progress file twice a second (a greenlet; file writes are quick)."""
    while True:
        RECORDER.write_progress(path)
        gevent.sleep(0.5)


_progress_greenlet: gevent.Greenlet | None = None


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    global _progress_greenlet
    RECORDER.start()
    RECORDER.scenario = ",".join(sorted(cls.__name__ for cls in environment.user_classes))
    if SETTINGS.progress and not isinstance(environment.runner, MasterRunner):
        _progress_greenlet = gevent.spawn(_report_progress, Path(SETTINGS.progress))


def _on_test_stop(environment: Any, **_kwargs: Any) -> None:
    """Write gateproof's measurements; a master (no users of its own) writes nothing."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        return
    if _progress_greenlet is not None:
        _progress_greenlet.kill(block=False)
    parsed = getattr(environment, "parsed_options", None)
    if getattr(parsed, "csv_prefix", None):
        # locust's CSV writer refreshes its files once per CSV_STATS_INTERVAL_SEC and does not
        # write again at shutdown, so requests that finished after its last tick would be
        # missing from locust_stats.csv; wait for one more tick (every user has stopped by now).
        gevent.sleep(locust.stats.CSV_STATS_INTERVAL_SEC + 0.1)
    # locust has stopped (and if need be killed) every user by now; anything still open was cut off
    RECORDER.settle_in_flight(IN_FLIGHT_AT_END)
    path = Path(SETTINGS.dump)
    if isinstance(runner, WorkerRunner):
        path = path.with_name(f"{path.stem}.worker-{os.getpid()}{path.suffix}")
    RECORDER.dump().write(path)


# locust's EventHook.add_listener carries no annotations, hence the ignores
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_test_stop)  # type: ignore[no-untyped-call]
