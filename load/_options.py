"""The settings of one load run, as the CLI and the tests give them to :func:`run_load`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gateproof.contract import is_loopback_url
from gateproof.load._compression import DEFAULT_TRANSCRIPT_SIZES
from gateproof.openapi import STAMP_DIRECTIVE_KEY, format_directive

__all__ = [
    "MAX_REQUEST_TIMEOUT_S",
    "SCENARIOS",
    "LoadOptions",
    "check_loopback_url",
    "directive_keys",
    "mock_directive",
]

#: the longest default request timeout (a longer run still gives each request at most this)
MAX_REQUEST_TIMEOUT_S = 60.0

#: scenario name -> what it sends
SCENARIOS = {
    "stream": "streamed chat completions (TTFT, inter-chunk gaps)",
    "chat": "non-streamed chat completions",
    "compression": (
        "agent transcripts with X-Edgee-Enable-Compression: true, chat completions and /compress "
        "alternating (server compression time_ms next to client latency)"
    ),
    "workload": "the workload file's mix of chat, stream, tools and compression requests (--workload)",
}


@dataclass(frozen=True)
class LoadOptions:
    """Everything one run needs. The API key is read from ``api_key_env``, never passed around."""

    base_url: str
    out_dir: Path
    scenario: str = "stream"
    users: int = 10
    spawn_rate: float = 10.0
    duration_s: float = 30.0
    model: str = "openai/gpt-4o"
    max_tokens: int | None = None
    api_key_env: str = "GATEPROOF_API_KEY"
    #: send a ``[[gateproof ...]]`` directive for a gateproof mock behind the target
    use_directive: bool = True
    tokens: int = 64
    ttft_ms: int = 100
    itl_ms: int = 10
    cid: str = "load"
    #: further directive keys (e.g. ``{"fault": "no_done"}``), appended as given
    directive_extra: Mapping[str, str] = field(default_factory=dict)
    #: seconds locust lets running requests finish after the run time is up
    stop_timeout_s: float = 10.0
    #: seconds one request may take, send to last byte; None: :data:`MAX_REQUEST_TIMEOUT_S` or
    #: the run time plus the stop timeout, whichever is shorter (see :attr:`request_timeout`)
    request_timeout_s: float | None = None
    #: seconds allowed for locust to start before the hard deadline counts as exceeded
    startup_margin_s: float = 30.0
    #: the compression scenario's transcript sizes (corpus names), cycled by every user
    transcript_sizes: tuple[str, ...] = DEFAULT_TRANSCRIPT_SIZES
    #: "closed" (``users`` users, each sending when its last request ended) or an open loop's
    #: arrival mode ("constant", "poisson") at ``rate`` requests/s; ``seed`` fixes the schedule
    #: and a paired run's leg order
    arrival: str = "closed"
    rate: float = 0.0
    seed: int = 1
    #: an open loop's cap on requests in flight per locust process
    max_in_flight: int = 1000
    #: a paired run: the baseline's base URL (the mock provider directly, or another gateway),
    #: the model name it takes and the variable holding its key ("": the target's)
    baseline_url: str = ""
    baseline_model: str = ""
    baseline_api_key_env: str = ""
    #: ask a gateproof mock behind the target to stamp every streamed chunk (``stamp=1``)
    stamp: bool = False
    #: locust worker processes (1: a single process, no master)
    workers: int = 1
    #: write the per-request JSON-lines log (``requests.jsonl``)
    records: bool = True
    #: the workload file (the "workload" scenario plans each request from it)
    workload: Path | None = None

    @property
    def request_timeout(self) -> float:
        """The request timeout in force: the one given, else one that fits the run.

        A request can never outlive the run (locust stops every user at run time + stop
        timeout), so a default longer than that would only mean that a stuck request is cut
        off by the run's end instead of timing out on its own.
        """
        if self.request_timeout_s is not None:
            return self.request_timeout_s
        return min(MAX_REQUEST_TIMEOUT_S, self.duration_s + self.stop_timeout_s)

    @property
    def open_loop(self) -> bool:
        return self.arrival != "closed"

    @property
    def paired(self) -> bool:
        return bool(self.baseline_url)

    @property
    def offered_rate(self) -> float:
        """Requests/s the generator must send (a paired run sends each scheduled request twice)."""
        return self.rate * (2 if self.paired else 1) if self.open_loop else 0.0

    @property
    def directive(self) -> str:
        return mock_directive(self) if self.use_directive else ""


def directive_keys(options: LoadOptions) -> dict[str, str]:
    """The run's own directive keys, to which a workload call adds its own (which win)."""
    return {
        "tokens": str(options.tokens),
        "ttft_ms": str(options.ttft_ms),
        "itl_ms": str(options.itl_ms),
        "cid": options.cid,
        **({STAMP_DIRECTIVE_KEY: "1"} if options.stamp else {}),
        **options.directive_extra,
    }


def mock_directive(options: LoadOptions) -> str:
    """The directive a gateproof mock behind the target reads from the last user message."""
    pairs = {
        "scenario": "text",
        "tokens": str(options.tokens),
        "ttft_ms": str(options.ttft_ms),
        "itl_ms": str(options.itl_ms),
        "cid": options.cid,
        **({STAMP_DIRECTIVE_KEY: "1"} if options.stamp else {}),
        **options.directive_extra,
    }
    return format_directive(**pairs)


def check_loopback_url(url: str) -> tuple[str, str]:
    """Split a base URL into (origin, path) and make sure it points at this machine.

    gateproof sends load only to loopback (127.0.0.0/8, ::1, localhost); anything else
    raises ``ValueError`` before a single request is made.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"base URL must start with http:// or https://, got {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"base URL has no host: {url!r}")
    if parts.username or parts.password:
        raise ValueError("base URL must not carry credentials; give the key through --api-key-env")
    if not is_loopback_url(url):
        raise ValueError(
            f"refusing to send load to {host!r}: gateproof load only targets loopback "
            "(127.0.0.0/8, ::1 or localhost)"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"base URL has a bad port: {url!r}") from exc
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if parts.query or parts.fragment:
        raise ValueError(f"base URL must not have a query or fragment: {url!r}")
    return f"{parts.scheme}://{netloc}", parts.path.rstrip("/")
