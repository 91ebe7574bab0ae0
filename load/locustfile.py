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

import itertools
import json
import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.pool
import locust.stats
from locust import User, constant, events, task
from locust.exception import CatchResponseError, StopUser
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
from gateproof.load._measurement import METRICS, Measurement
from gateproof.load._recorder import Recorder
from gateproof.load._records import RequestLog
from gateproof.load._schedule import START_DELAY_S, Schedule
from gateproof.load._settings import LocustSettings
from gateproof.load._transport import ExchangeFailed, Response, Target, build_request
from gateproof.load._workload import PlannedCall, load_workload
from gateproof.openapi import CORRELATION_HEADER

SETTINGS = LocustSettings.from_env()
_API_KEY = os.environ.get(SETTINGS.api_key_env, "")
if not _API_KEY:
    raise RuntimeError(f"environment variable {SETTINGS.api_key_env} (the API key) is not set")
_BASELINE_KEY = os.environ.get(SETTINGS.baseline_api_key_env or SETTINGS.api_key_env, "")
if SETTINGS.paired and not _BASELINE_KEY:
    raise RuntimeError(
        f"environment variable {SETTINGS.baseline_api_key_env} (the baseline's key) is not set"
    )

RECORDER = Recorder(scenario="")
#: a paired run's baseline leg, counted apart from the target's
BASELINE = Recorder(scenario="")
_LOG = logging.getLogger("gateproof.load")
#: an open loop's schedule (None: a closed loop)
SCHEDULE = (
    Schedule(SETTINGS.arrival, SETTINGS.rate, SETTINGS.duration, SETTINGS.seed)
    if SETTINGS.arrival != "closed"
    else None
)
#: the workload file's mix, planned per request (None: the scenario's one request)
WORKLOAD = load_workload(SETTINGS.workload, default_model=SETTINGS.model) if SETTINGS.workload else None
if WORKLOAD is not None:
    WORKLOAD.prepare()
#: the directive keys of the run (timing, cid, stamps, extras) a workload call adds its own to
_DIRECTIVE_KEYS: dict[str, object] = json.loads(SETTINGS.directive_keys) if SETTINGS.directive_keys else {}
#: a closed loop's request numbers, per process (an open loop numbers by schedule index)
_NUMBERS = itertools.count()
_REQUEST_LOG: RequestLog | None = None


def _headers(accept: str, key: str = _API_KEY) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Accept": accept,
        # a compressed event stream would hide chunk boundaries from the timings
        "Accept-Encoding": "identity",
    }


#: takes a good response's body: (response, measurement, sent_at, headers_at) -> None
BodyReader = Callable[[Response, Measurement, float, float], None]


def _target(origin_text: str) -> Target:
    origin = urlsplit(origin_text)
    if origin.hostname is None:
        raise ValueError("the locustfile needs --host (it is started by `gateproof load`)")
    scheme = origin.scheme or "http"
    return Target(
        scheme,
        origin.hostname,
        origin.port or (443 if scheme == "https" else 80),
        connect_timeout=SETTINGS.connect_timeout,
    )


class _Leg:
    """Where one leg of the run's requests goes: a connection, its request bytes, its recorder.

    An unpaired run has one leg, the target; a paired run a second one, the baseline, with its
    own origin, path, model and key, counted in its own recorder.
    """

    def __init__(self, name: str, origin: str, request: Callable[[str], bytes], recorder: Recorder) -> None:
        self.name = name
        self.connection = _target(origin)
        self.request = request
        self.recorder = recorder


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
        self.target = _target(self.host or "")
        accept = "text/event-stream" if self.stream else "application/json"
        body = json.dumps(SETTINGS.body(stream=self.stream)).encode()
        headers = _headers(accept)
        self._request = build_request(SETTINGS.path, origin.netloc, headers, body)
        self._pool: gevent.pool.Pool | None = None
        self._legs: list[_Leg] = []
        if SETTINGS.paired:
            base = urlsplit(SETTINGS.baseline_origin).netloc
            base_body = json.dumps(SETTINGS.body(stream=self.stream, model=SETTINGS.baseline_model)).encode()
            base_headers = _headers(accept, _BASELINE_KEY)

            def baseline_request(cid: str) -> bytes:
                return build_request(
                    SETTINGS.baseline_path, base, {**base_headers, CORRELATION_HEADER: cid}, base_body
                )

            def target_request(cid: str) -> bytes:
                return build_request(SETTINGS.path, origin.netloc, {**headers, CORRELATION_HEADER: cid}, body)

            self._legs = [
                _Leg("baseline", SETTINGS.baseline_origin, baseline_request, BASELINE),
                _Leg("target", self.host or "", target_request, RECORDER),
            ]

    def on_stop(self) -> None:
        if self._pool is not None:
            # an open loop's requests run in their own greenlets: stop them as locust stops the
            # user, so each is reported (as ``deadline``) before the process writes its dump
            self._pool.kill(block=True, timeout=5)
        self.target.close()
        for leg in self._legs:
            leg.connection.close()

    def one(self, index: int, due: float | None) -> None:
        """One scheduled unit of work (a request, or a pair of them); ``due`` is the intended send
        time (``time.perf_counter()``) in an open loop, None in a closed one."""
        raise NotImplementedError

    @task
    def work(self) -> None:
        if SCHEDULE is None:
            self.one(next(_NUMBERS), None)
        else:
            self._run_schedule(SCHEDULE)

    def _run_schedule(self, schedule: Schedule) -> None:
        """Send this process's share of the schedule, each request in its own greenlet at its
        intended time whatever the earlier ones are doing, then stop this user."""
        runner = self.environment.runner
        worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        share = schedule.share(worker, SETTINGS.workers)
        RECORDER.scheduled += len(share)
        pool = self._pool = gevent.pool.Pool(SETTINGS.max_in_flight)
        start = time.perf_counter() + START_DELAY_S
        for index, offset in share:
            due = start + offset
            wait = due - time.perf_counter()
            if wait > 0:
                gevent.sleep(wait)
            # a full pool blocks here: the sends after it go late, and their lag says so
            pool.spawn(self.one, index, due)
        pool.join()
        raise StopUser()

    def _unit(self, read: BodyReader, index: int, due: float | None) -> None:
        """An unpaired request, or a pair (baseline and target, in a seeded random order, the
        second sent when the first has ended) whose difference the recorder keeps."""
        cid = f"{SETTINGS.cid}-{index}"
        if not self._legs:
            self._exchange(read, index=index, due=due, cid=cid)
            return
        self._send_pair(read, index, due, cid, {leg.name: leg.request(cid) for leg in self._legs})

    def _send_pair(
        self,
        read: BodyReader,
        index: int,
        due: float | None,
        cid: str,
        payloads: dict[str, bytes],
        *,
        stream: bool | None = None,
        entry: str | None = None,
    ) -> None:
        """Send one pair (``payloads`` by leg name) in a seeded random order, the second leg when
        the first has ended, and let the recorder keep their difference."""
        legs = list(self._legs)
        if random.Random(f"{SETTINGS.seed}:pair:{index}").random() < 0.5:
            legs.reverse()
        measured: dict[str, Measurement] = {}
        for k, leg in enumerate(legs):
            measured[leg.name] = self._exchange(
                read,
                payloads[leg.name],
                index=index,
                due=due if k == 0 else None,
                cid=cid,
                leg=leg,
                stream=stream,
                entry=entry,
            )
        RECORDER.pair(measured["baseline"], measured["target"])

    def _exchange(
        self,
        read: BodyReader,
        request: bytes | None = None,
        *,
        index: int | None = None,
        due: float | None = None,
        cid: str = "",
        leg: _Leg | None = None,
        stream: bool | None = None,
        entry: str | None = None,
    ) -> Measurement:
        """One request, shared by all users: send, judge the head, let ``read`` take the body
        (timed from ``origin``/``headers_at``), then report it to locust and the recorder.

        ``origin`` is the send time, or in an open loop the intended send time, so a late send's
        wait counts in every latency (``lag`` keeps it apart too). A request the run stops (locust
        kills the user's greenlet once the stop timeout is up) is still reported, as
        ``deadline``, before the kill goes on.
        """
        # locust stops a user that is between tasks by killing its greenlet; a kill decided while
        # the user was waiting is only delivered at the user's next yield, which would otherwise
        # fall inside this request and cut it off as it starts. Yield first, so such a stop lands
        # here, before anything is sent or counted.
        gevent.sleep(0)
        recorder = RECORDER if leg is None else leg.recorder
        connection = self.target if leg is None else leg.connection
        measurement = Measurement(
            started_wall=time.time(), index=index, cid=cid, leg="target" if leg is None else leg.name
        )
        streamed = self.stream if stream is None else stream
        recorder.begin(measurement)
        sent_at = time.perf_counter()
        origin = sent_at
        if due is not None:
            measurement.lag = max(sent_at - due, 0.0)
            origin = sent_at - measurement.lag
            measurement.scheduled_wall = measurement.started_wall - measurement.lag
        response: Response | None = None
        try:
            response = connection.send(request or self._request, sent_at + SETTINGS.timeout)
            headers_at = response.head_at
            measurement.status = response.status
            measurement.got_response = True
            failure = status_failure(response.status) or media_type_failure(
                response.header("content-type"), stream=streamed
            )
            if failure is None:
                read(response, measurement, origin, headers_at)
            else:
                measurement.fail(failure)
                measurement.ttfb = headers_at - origin
        except ExchangeFailed as exc:
            measurement.got_response = measurement.got_response or exc.answered
            measurement.fail(exc.reason)
        except gevent.GreenletExit:
            measurement.fail(IN_FLIGHT_AT_END)
            self._report(measurement, origin, recorder, entry)
            raise
        except Exception:
            # a bug of ours, not a verdict on the target: counted under its own name, the
            # traceback goes to locust.log only
            _LOG.exception("gateproof's load user failed on an answer")
            measurement.fail(INTERNAL_ERROR)
        finally:
            if response is not None:
                response.close()
        self._report(measurement, origin, recorder, entry)
        return measurement

    def _report(
        self, measurement: Measurement, origin: float, recorder: Recorder, entry: str | None = None
    ) -> None:
        """Settle the request's one locust entry (response time = e2e) and hand it to the recorder,
        which keeps the stream timings in gateproof's own histograms."""
        if measurement.e2e is None:
            measurement.e2e = time.perf_counter() - origin
        entry = entry or self.entry_name
        name = entry if measurement.leg == "target" else f"baseline {entry}"
        self.environment.events.request.fire(
            request_type="POST",
            name=name,
            response_time=measurement.e2e * 1000.0,
            response_length=0,
            exception=None if measurement.ok else CatchResponseError(measurement.reason or "unknown"),
            context={},
            start_time=measurement.started_wall,
            url=SETTINGS.path,
            response=None,
        )
        recorder.add(measurement)


class StreamingChatUser(_ChatUser):
    """Streams a chat completion and times the stream (see the module docstring)."""

    entry_name = "chat stream"
    stream = True

    def one(self, index: int, due: float | None) -> None:
        self._unit(self._take_stream, index, due)

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

    def one(self, index: int, due: float | None) -> None:
        self._unit(self._take_completion, index, due)

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

    def one(self, index: int, due: float | None) -> None:
        entry, request = self._plan[self._turn % len(self._plan)]
        self._turn += 1
        self._exchange(
            _compression_reader(entry.endpoint, entry.size, entry.original_tokens),
            request,
            index=index,
            due=due,
            entry=f"{entry.endpoint} {entry.size}",
        )


def _compression_reader(endpoint: str, size: str, original_tokens: int) -> BodyReader:
    """Reads a compressed request's answer: a chat completion with its ``compression`` object,
    or the ``/compress`` body, judged against the transcript's own token count."""

    def take(response: Response, measurement: Measurement, sent_at: float, headers_at: float) -> None:
        body, ended_at = _read_body(response, measurement)
        if not measurement.ok:
            measurement.ttfb = headers_at - sent_at
            measurement.e2e = ended_at - sent_at
        elif endpoint == "chat":
            analyze_completion(measurement, body, sent_at=sent_at, headers_at=headers_at, ended_at=ended_at)
            judge_chat_compression(measurement, body, size=size, original_tokens=original_tokens)
        else:
            analyze_compress(
                measurement,
                body,
                sent_at=sent_at,
                headers_at=headers_at,
                ended_at=ended_at,
                size=size,
                original_tokens=original_tokens,
            )

    return take


class WorkloadUser(_ChatUser):
    """Sends the workload file's mix: each request planned from its index and the run's seed
    (``gateproof.load._workload``), so every process and both legs of a pair plan the same one."""

    entry_name = "workload"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if WORKLOAD is None:
            raise RuntimeError("the workload user needs GATEPROOF_LOAD_WORKLOAD (gateproof load --workload)")
        self._netloc = urlsplit(self.host or "").netloc

    def _directive(self, call: PlannedCall) -> str:
        return call.directive(**_DIRECTIVE_KEYS) if SETTINGS.directive else ""

    def _reader(self, call: PlannedCall) -> BodyReader:
        if call.scenario == "compression":
            return _compression_reader(call.endpoint, call.size, call.prompt_tokens or 0)
        return StreamingChatUser._take_stream if call.stream else ChatUser._take_completion

    def one(self, index: int, due: float | None) -> None:
        assert WORKLOAD is not None
        call = WORKLOAD.plan(index, SETTINGS.seed)
        cid = f"{SETTINGS.cid}-{index}"
        accept = "text/event-stream" if call.stream else "application/json"
        body = call.body(self._directive, max_tokens=SETTINGS.max_tokens)
        path = SETTINGS.path if call.endpoint == "chat" else SETTINGS.compress_path
        headers = {**_headers(accept), **call.headers, CORRELATION_HEADER: cid}
        request = build_request(path, self._netloc, headers, json.dumps(body).encode())
        read = self._reader(call)
        if not self._legs or call.scenario == "compression":
            # unpaired: compression is the gateway's own work, a provider has nothing to pair it with
            self._exchange(read, request, index=index, due=due, cid=cid, stream=call.stream, entry=call.label)
            return
        base_body = call.body(self._directive, model=SETTINGS.baseline_model, max_tokens=SETTINGS.max_tokens)
        base_headers = {**_headers(accept, _BASELINE_KEY), **call.headers, CORRELATION_HEADER: cid}
        base_netloc = urlsplit(SETTINGS.baseline_origin).netloc
        base_request = build_request(
            SETTINGS.baseline_path, base_netloc, base_headers, json.dumps(base_body).encode()
        )
        self._send_pair(
            read, index, due, cid, {"baseline": base_request, "target": request}, stream=call.stream,
            entry=call.label,
        )  # fmt: skip


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


def _own_file(path: Path, runner: Any) -> Path:
    """A worker's own copy of a per-process file (several workers share one results folder)."""
    if isinstance(runner, WorkerRunner):
        return path.with_name(f"{path.stem}.worker-{os.getpid()}{path.suffix}")
    return path


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    global _progress_greenlet, _REQUEST_LOG
    runner = environment.runner
    scenario = ",".join(sorted(cls.__name__ for cls in environment.user_classes))
    # the histograms an open loop records into are made before its first send
    metrics = (*METRICS, "lag", "chunk_delay") if SCHEDULE is not None else ()
    RECORDER.start(metrics)
    BASELINE.start(metrics if SETTINGS.paired else ())
    for recorder in (RECORDER, BASELINE):
        recorder.scenario = scenario
    if isinstance(runner, MasterRunner):
        return
    if SETTINGS.records:
        _REQUEST_LOG = RequestLog(_own_file(Path(SETTINGS.records), runner))
        RECORDER.on_record = BASELINE.on_record = _REQUEST_LOG
    if SETTINGS.progress:
        _progress_greenlet = gevent.spawn(_report_progress, _own_file(Path(SETTINGS.progress), runner))


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
    BASELINE.settle_in_flight(IN_FLIGHT_AT_END)
    if _REQUEST_LOG is not None:
        _REQUEST_LOG.close()
    dump = RECORDER.dump()
    if SETTINGS.paired:
        dump.baseline = BASELINE.dump()
    dump.write(_own_file(Path(SETTINGS.dump), runner))


# locust's EventHook.add_listener carries no annotations, hence the ignores
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_test_stop)  # type: ignore[no-untyped-call]
