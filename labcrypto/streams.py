"""Two small jobs every socket-holding module needs, done once for the whole package.

* ``close_stream(stream)`` shuts a stream down, then closes it. On Linux,
  ``close()`` alone does not wake a thread blocked in ``recv()`` or
  ``accept()`` on the same socket; ``shutdown()`` does. Errors are ignored:
  the peer may be gone, the socket closed already.
* ``set_timeout(stream, seconds)`` sets a timeout on anything that has one
  (a socket does; an in-memory stream in a test may not).
* ``close_after_peer(stream, seconds)`` waits (a bounded time) for the peer
  to close its end first, then closes ours: a server's port then stays free.

All three take *any* object with the socket-like method, so the protocol layer
(``channel``) can use them without importing ``socket``.
"""

from __future__ import annotations

import contextlib
import time

__all__ = ["SHUT_RDWR", "close_after_peer", "close_stream", "set_timeout"]

SHUT_RDWR = 2
"""``socket.SHUT_RDWR``, without importing ``socket`` here (the value is fixed by POSIX)."""


def close_stream(stream: object) -> None:
    """Shut ``stream`` down (waking any thread blocked on it), then close it; never raise."""
    shutdown = getattr(stream, "shutdown", None)
    if shutdown is not None:
        with contextlib.suppress(OSError):  # not connected, or closed already
            shutdown(SHUT_RDWR)
    close = getattr(stream, "close", None)
    if close is not None:
        with contextlib.suppress(OSError):
            close()


def set_timeout(stream: object, timeout: float | None) -> None:
    """Give ``stream`` a timeout in seconds (``None``: block) if it supports one."""
    settimeout = getattr(stream, "settimeout", None)
    if settimeout is not None:
        settimeout(timeout)


def close_after_peer(stream: object, timeout: float, max_bytes: int = 65536) -> None:
    """Wait until the peer closes its end (at most ``timeout`` s), then close ours.

    TCP keeps the side that closes *first* in TIME_WAIT for about a minute,
    and while it lasts a plain ``bind`` to that side's port fails with
    "Address already in use". After a goodbye both sides are about to
    close; if the server goes first, its port (a conversation port of a
    pool) is lost for a minute to any pool that binds without
    ``SO_REUSEADDR``, the students' included. So a server that has said
    goodbye reads (and drops, at most ``max_bytes``) until the peer's end
    of stream, and only then closes. A peer that never closes costs
    ``timeout`` seconds, not more.
    """
    recv = getattr(stream, "recv", None)
    if recv is not None:
        deadline = time.monotonic() + timeout
        left = max_bytes
        with contextlib.suppress(OSError):  # a reset, a timeout: the peer is done too
            while left > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                set_timeout(stream, remaining)
                data = recv(min(4096, left))
                if not data:
                    break  # the peer closed first
                left -= len(data)
    close_stream(stream)
