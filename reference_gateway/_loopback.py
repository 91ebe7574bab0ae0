"""Loopback only: where the local servers may listen and where the gateway may forward.

gateproof promises to run entirely on loopback. Both servers it ships (the mock provider and
this gateway) keep that promise here: ``listen_socket`` refuses to bind anything but a
loopback address, and the gateway's config refuses a provider URL off loopback
(``is_loopback_url``), so a typo such as ``--host 0.0.0.0`` or a real provider's URL is a
start-up error, not traffic leaving the machine.

``listen_socket`` also binds the port itself, before the server starts, and hands the bound
socket to uvicorn: a port that is taken is then one clear message and exit 2 (bad options)
instead of uvicorn's own exit 3, and there is no gap between checking the port and using it.

``serve_on`` also stops a server whose launcher is gone (``OWNER_ENV``): the launcher puts the
servers it starts in sessions of their own, so no signal of its own end reaches them, and a
launcher killed outright (a cancelled CI job, a test runner terminated) would leave them running.

This module imports nothing from gateproof (the mock imports it through the gateway's
package). It applies the same rule as ``gateproof.contract.is_loopback_url``: 127.0.0.0/8,
``::1`` or ``localhost`` in any case.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import threading
import time
from typing import Protocol
from urllib.parse import urlsplit

__all__ = ["OWNER_ENV", "ListenError", "is_loopback_host", "is_loopback_url", "listen_socket", "serve_on"]

#: how to say where traffic may go, in every refusal
LOOPBACK_WORDS = "127.0.0.1 (or any 127.x.y.z), ::1 or localhost"
#: the launcher's process id, set by whoever starts a server (``gateproof.cli.launch``): the server
#: stops once its parent is no longer that process
OWNER_ENV = "GATEPROOF_OWNER_PID"
#: how often a server looks for its launcher, and how long it then has to stop by itself
OWNER_POLL_S = 0.5
OWNER_GRACE_S = 10.0


class ListenError(ValueError):
    """The server cannot listen where it was asked to; the message says why, for the user."""


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` (any case), an address in 127.0.0.0/8 or ``::1`` (brackets allowed)."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is a loopback host (see :func:`is_loopback_host`)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host is not None and is_loopback_host(host)


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``, ready for ``uvicorn.Server.run(sockets=[...])``.

    ``localhost`` binds 127.0.0.1. Raises :class:`ListenError` for a host off loopback, a port
    out of range, a port already in use, or any other reason the bind fails.
    """
    if not is_loopback_host(host):
        raise ListenError(f"--host {host}: refusing to listen off loopback; use {LOOPBACK_WORDS}")
    if not 0 <= port <= 65535:
        raise ListenError(f"--port {port}: not a TCP port (0-65535)")
    address = host.strip().strip("[]")
    if address.lower() == "localhost":
        address = "127.0.0.1"
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a port whose last connections are in TIME_WAIT is free to reuse;
        # a port another socket listens on still fails with EADDRINUSE.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        where = f"[{address}]" if family == socket.AF_INET6 else address
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"port {port} on {where} is already in use") from None
        raise ListenError(f"cannot listen on {where}:{port}: {exc.strerror or exc}") from None
    return sock


class _Server(Protocol):
    """What ``serve_on`` needs of a server: uvicorn's ``Server`` has all three."""

    started: bool
    should_exit: bool

    def run(self, sockets: list[socket.socket] | None = None) -> None: ...


def serve_on(server: _Server, listener: socket.socket) -> int:
    """Run ``server`` on the socket ``listen_socket`` bound, until it stops; the process exit code.

    0 when it started and stopped cleanly, 1 when it failed. uvicorn ends a failed start-up with
    ``SystemExit(3)``, a code gateproof does not document, so it is mapped to 1 here.
    """
    owner = os.environ.get(OWNER_ENV, "")
    if owner.isdigit():
        threading.Thread(
            target=_watch_owner, args=(server, int(owner)), name="owner-watch", daemon=True
        ).start()
    try:
        server.run(sockets=[listener])
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 1
    finally:
        listener.close()
    return 0 if server.started else 1


def _watch_owner(server: _Server, owner: int) -> None:
    """Stop ``server`` once this process's parent is not ``owner`` (it died and we were adopted).

    A graceful stop first (uvicorn's own, as on SIGTERM); a server still running
    ``OWNER_GRACE_S`` later (a stream that will not end) leaves at once.
    """
    while os.getppid() == owner:
        time.sleep(OWNER_POLL_S)
    server.should_exit = True
    time.sleep(OWNER_GRACE_S)
    os._exit(1)
