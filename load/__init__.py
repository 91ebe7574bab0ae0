"""Load scenarios for a gateway: locust in a child process, figures in gateproof's own results.

Importing this package never imports locust (which patches the network stack
with gevent at import time); only the locustfile, run by the child process, does.
"""

from gateproof.load.results import LOAD_SCHEMA_VERSION, LatencySummary, LoadResult, TimelinePoint

__all__ = ["LOAD_SCHEMA_VERSION", "LatencySummary", "LoadResult", "TimelinePoint"]
