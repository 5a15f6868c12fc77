"""Two small jobs every socket-holding module needs, done once for the whole package.

* ``close_stream(stream)`` shuts a stream down, then closes it. On Linux,
  ``close()`` alone does not wake a thread blocked in ``recv()`` or
  ``accept()`` on the same socket; ``shutdown()`` does. Errors are ignored:
  the peer may be gone, the socket closed already.
* ``set_timeout(stream, seconds)`` sets a timeout on anything that has one
  (a socket does; an in-memory stream in a test may not).

Both take *any* object with the socket-like method, so the protocol layer
(``channel``) can use them without importing ``socket``.
"""

from __future__ import annotations

import contextlib

__all__ = ["SHUT_RDWR", "close_stream", "set_timeout"]

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
