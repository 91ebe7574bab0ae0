"""Load scenarios for a gateway: locust in a child process, figures in gateproof's own results.

Importing this package never imports locust (which patches the network stack
with gevent at import time); only the locustfile, run by the child process, does.
"""

from gateproof.load._duration import parse_duration
from gateproof.load._options import LoadOptions, check_loopback_url
from gateproof.load._runner import LoadError, run_load
from gateproof.load.results import (
    LOAD_SCHEMA_VERSION,
    CompressionCell,
    CompressionResult,
    LatencySummary,
    LoadResult,
    TimelinePoint,
)

__all__ = [
    "LOAD_SCHEMA_VERSION",
    "CompressionCell",
    "CompressionResult",
    "LatencySummary",
    "LoadError",
    "LoadOptions",
    "LoadResult",
    "TimelinePoint",
    "check_loopback_url",
    "parse_duration",
    "run_load",
]
