"""Logs every outgoing connect() of this Python process (and its Python children) to a file.

Put this folder first on ``PYTHONPATH`` and set ``GATEPROOF_CONNECT_LOG``: every
``socket.connect`` / ``connect_ex`` (gevent's sockets included, they wrap the C socket)
raises the ``socket.connect`` audit event, and this hook appends ``pid host port`` for it.
The battery reads the file to prove that no connection left loopback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_LOG = os.environ.get("GATEPROOF_CONNECT_LOG", "")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or len(args) < 2:
        return
    address = args[1]
    if isinstance(address, tuple) and address:
        host, port = str(address[0]), address[1] if len(address) > 1 else ""
    else:
        host, port = f"unix:{address!r}", ""
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {host} {port}\n")


if _LOG:
    sys.addaudithook(_hook)
