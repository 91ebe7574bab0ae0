"""locust users that load a chat completions endpoint and time what each stream delivers.

This is the only module that imports locust. locust monkey-patches the socket
layer with gevent when it is imported, so this file only ever runs inside the
child process that ``gateproof load`` starts (``python -m locust -f <this file>
StreamingChatUser ...``); nothing in gateproof imports it.

Two user classes on ``FastHttpUser`` (geventhttpclient, several times cheaper per
request than the requests-based ``HttpUser``), each sending the same request in a
closed loop (no wait between requests):

- ``StreamingChatUser``: ``stream: true`` with ``stream_options.include_usage``. The
  body is read line by line from geventhttpclient's socket response
  (``response.stream.readline``), each line stamped with ``time.perf_counter()`` the
  moment it is handed over; parsing and grammar checks run only after the last
  byte (``gateproof.load._analysis``), so they never inflate a timing.
- ``ChatUser``: a plain request; TTFB when the headers are in, e2e when the body is.

Each request is reported to locust once under its own name (response time = e2e,
failure message = gateproof's failure reason), plus the stream timings as extra
entries (request type ``stream``: ``ttfb``, ``ttft``, ``inter_chunk``, ``e2e``) so
locust's CSV carries them too. gateproof's own figures come from the recorder's
HDR histograms, dumped as JSON when the test stops (see ``gateproof.load._recorder``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import locust.stats
from geventhttpclient.response import HTTPParseError
from locust import FastHttpUser, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

from gateproof.load._analysis import analyze_completion, analyze_stream
from gateproof.load._measurement import Measurement
from gateproof.load._recorder import Recorder
from gateproof.load._settings import LocustSettings

SETTINGS = LocustSettings.from_env()
_API_KEY = os.environ.get(SETTINGS.api_key_env, "")
if not _API_KEY:
    raise RuntimeError(f"environment variable {SETTINGS.api_key_env} (the API key) is not set")

RECORDER = Recorder(scenario="")


def _failure_reason(response: Any) -> str:
    """Name a failure that happened before any body was read."""
    status = int(getattr(response, "status_code", 0) or 0)
    if status >= 400 or (status and status < 200):
        return f"http_{status}"
    # geventhttpclient wraps socket errors (RetriesExceeded(..., original=...)); look underneath
    error = getattr(response, "error", None)
    seen: list[BaseException] = []
    while isinstance(error, BaseException) and error not in seen:
        seen.append(error)
        if isinstance(error, TimeoutError):
            return "timeout"
        if isinstance(error, ConnectionRefusedError):
            return "connection_refused"
        if isinstance(error, ConnectionResetError):
            return "connection_reset"
        original = getattr(error, "original", None)
        error = original if isinstance(original, BaseException) else error.__cause__ or error.__context__
    return "connection_error"


def _headers(accept: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {_API_KEY}",
        "Content-Type": "application/json",
        "Accept": accept,
        # a compressed event stream would hide chunk boundaries from the timings
        "Accept-Encoding": "identity",
    }


#: takes a good response's body: (response, measurement, sent_at, headers_at) -> None
BodyReader = Callable[[Any, Measurement, float, float], None]


class _ChatUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    network_timeout = SETTINGS.timeout
    connection_timeout = SETTINGS.connect_timeout
    #: the entry name of the request itself in locust's statistics
    entry_name = "chat"
    #: the request body, JSON-encoded once per class
    _body = ""

    def _finish(self, response: Any, measurement: Measurement) -> None:
        """Settle the request's own locust entry: response time = e2e, pass or fail with gateproof's reason."""
        if measurement.e2e is not None:
            response.request_meta["response_time"] = measurement.e2e * 1000.0
        if measurement.ok:
            response.success()
        else:
            response.failure(measurement.reason or "unknown")

    def _exchange(self, accept: str, request_type: str, read: BodyReader) -> None:
        """One request, shared by both users: post, check the status, let ``read`` take the body
        (timed from ``sent_at``/``headers_at``), then settle locust's entry and record the figures."""
        measurement = Measurement(started_wall=time.time())
        sent_at = time.perf_counter()
        with self.client.post(
            SETTINGS.path,
            data=self._body,
            headers=_headers(accept),
            name=self.entry_name,
            stream=True,
            catch_response=True,
        ) as response:
            headers_at = time.perf_counter()
            measurement.status = int(response.status_code or 0)
            measurement.got_response = measurement.status > 0
            if getattr(response, "error", None) is not None or not 200 <= measurement.status < 300:
                measurement.fail(_failure_reason(response))
                with contextlib.suppress(Exception):
                    _ = response.content  # drain an error body so the connection can be reused
            else:
                read(response, measurement, sent_at, headers_at)
            self._finish(response, measurement)
        self._record(measurement, request_type)

    def _record(self, measurement: Measurement, request_type: str) -> None:
        """Hand the request to the recorder; fire a successful one's timings as locust entries."""
        RECORDER.add(measurement)
        if not measurement.ok:
            return
        fire = self.environment.events.request.fire
        entries: list[tuple[str, float | None]] = [("ttfb", measurement.ttfb), ("ttft", measurement.ttft)]
        entries += [("inter_chunk", gap) for gap in measurement.inter_chunk]
        entries.append(("e2e", measurement.e2e))
        for name, seconds in entries:
            if seconds is not None:
                fire(
                    request_type=request_type,
                    name=name,
                    response_time=seconds * 1000.0,
                    response_length=0,
                    exception=None,
                    context={},
                )


class StreamingChatUser(_ChatUser):
    """Streams a chat completion and times the stream (see the module docstring)."""

    entry_name = "chat stream"
    _body = json.dumps(SETTINGS.body(stream=True))

    @task
    def stream_chat(self) -> None:
        self._exchange("text/event-stream", "stream", self._take_stream)

    def _take_stream(
        self, response: Any, measurement: Measurement, sent_at: float, headers_at: float
    ) -> None:
        reads: list[tuple[float, bytes]] = []
        ended_at = self._read_stream(response.stream, reads, sent_at, measurement)
        analyze_stream(measurement, reads, sent_at=sent_at, headers_at=headers_at, ended_at=ended_at)

    @staticmethod
    def _read_stream(
        stream: Any, reads: list[tuple[float, bytes]], sent_at: float, measurement: Measurement
    ) -> float:
        """Read the body line by line, stamping each line on arrival; return when it ended."""
        deadline = sent_at + SETTINGS.timeout
        readline = stream.readline
        clock = time.perf_counter
        append = reads.append
        try:
            while True:
                line = readline(b"\n")
                now = clock()
                if not line:
                    break
                append((now, line))
                if now > deadline:
                    measurement.fail("timeout")
                    return now
            # readline() gives up on a last line without a newline; keep it for the grammar
            rest = stream.read()
            if rest:
                append((now, rest))
            return now
        except TimeoutError:
            measurement.fail("timeout")
        except (HTTPParseError, OSError):
            measurement.fail("connection_closed")
        finally:
            stream.release()
        return clock()


class ChatUser(_ChatUser):
    """Sends a non-streamed chat completion; TTFB, e2e, output tokens, JSON validity."""

    entry_name = "chat"
    _body = json.dumps(SETTINGS.body(stream=False))

    @task
    def chat(self) -> None:
        self._exchange("application/json", "chat", self._take_completion)

    @staticmethod
    def _take_completion(response: Any, measurement: Measurement, sent_at: float, headers_at: float) -> None:
        body = b""
        try:
            body = response.stream.read()
        except TimeoutError:
            measurement.fail("timeout")
        except (HTTPParseError, OSError):
            measurement.fail("connection_closed")
        finally:
            response.stream.release()
        ended_at = time.perf_counter()
        if measurement.ok:
            analyze_completion(measurement, body, sent_at=sent_at, headers_at=headers_at, ended_at=ended_at)
        else:
            measurement.ttfb = headers_at - sent_at
            measurement.e2e = ended_at - sent_at


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
    path = Path(SETTINGS.dump)
    if isinstance(runner, WorkerRunner):
        path = path.with_name(f"{path.stem}.worker-{os.getpid()}{path.suffix}")
    RECORDER.dump().write(path)


# locust's EventHook.add_listener carries no annotations, hence the ignores
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_test_stop)  # type: ignore[no-untyped-call]
