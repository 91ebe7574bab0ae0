"""A mock provider behind the reference gateway, on a bad day, for the bad-days battery.

Run as a script inside the battery's loopback-only network namespace (where the test
process itself cannot reach, so it cannot wait for readiness itself):
``python bad_day_stack.py READY.json LOG_DIR '{"mock": [...], "gateway": [...]}'``.
It starts the stack exactly as ``gateproof run`` does (``gateproof.cli.launch.local_stack``:
free ports, the provider keys of the environment, the stack's short first-byte and idle
timeouts), with the extra mock arguments (the chaos) and gateway arguments (a ``--fault``),
writes the two URLs to READY.json once both answer their health check, and holds them up
until SIGTERM (or the namespace is torn down).

The client key is the battery's own (``GATEPROOF_API_KEY``), so the CLI under test and the
gateway agree on it; the provider keys come from the ``GATEPROOF_UPSTREAM_*`` variables the
battery sets, so the battery knows every key that must never be written out.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from gateproof.cli.launch import API_KEY_ENV, local_stack


def main() -> int:
    ready, log_dir, extra = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    stop = threading.Event()

    def stopped(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGINT, stopped)
    with local_stack(
        log_dir=log_dir,
        mock_args=extra.get("mock", []),
        gateway_args=extra.get("gateway", []),
        api_key=os.environ[API_KEY_ENV],
    ) as stack:
        partial = ready.with_suffix(".tmp")
        partial.write_text(json.dumps({"gateway": stack.base_url, "mock": stack.mock.url}))
        partial.rename(ready)
        # bounded: the battery tears the namespace down long before this
        stop.wait(timeout=900)
    return 0


if __name__ == "__main__":
    sys.exit(main())
