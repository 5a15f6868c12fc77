"""Who may start a handshake now: a fair share of the door for every source address.

A handshake costs the server a 2048-bit exponentiation and a thread
until it ends (or times out), and it is the one thing a *stranger* can
make the server do. So a class server bounds, per source address:

* how many of its connections are still in the handshake at once
  (``max_per_source``): 60 idle sockets from one laptop cannot take every
  slot of the server, and the next student still gets in;
* how fast it may fail: after ``free_failures`` failed handshakes within
  ``window`` seconds, each new handshake from that address starts only
  after a pause (``pause_for``) — first ``first_pause`` seconds, doubling
  with each further failure, at most ``longest_pause``. With the cap above
  that bounds the exponentiations one address can cost the server
  (``max_per_source / longest_pause`` a second). The source is slowed,
  not refused: classmates behind the same address (a JupyterHub, a
  classroom's NAT) still get in, a little later.

A connection over the cap is refused *in words* (``Admission.admit``
returns the reason; the server sends it before closing), never with a bare
reset. Used by ``ChatServer`` (``ChatSettings``) and ``FileServer``; no
sockets here, only counting, so the rules are tested without a network.

Past the door, ``HeldPerKey`` counts what each *authenticated* key holds
(the chat's conversations, the file service's requests under way), so one
student's stuck loop cannot take what the whole class shares.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["Admission", "AdmissionRules", "HeldPerKey"]


@dataclass(frozen=True)
class AdmissionRules:
    """The limits of ``Admission``; ``None`` turns the cap or the slow-down off."""

    max_per_source: int | None = 32
    free_failures: int | None = 10  # None: never slow a source down
    window: float = 60.0
    first_pause: float = 0.25
    longest_pause: float = 2.0


class Admission:
    """Counts, per source address, handshakes in progress and recent failures.

    Call ``admit(source)`` for each new connection; if it returns None,
    call ``finished(source, ok)`` exactly once when its handshake ends
    (``ok=None``: it ended without a verdict, e.g. the server stopped).
    Safe to use from several threads.
    """

    def __init__(self, rules: AdmissionRules | None = None) -> None:
        self.rules = rules or AdmissionRules()
        self._lock = threading.Lock()
        self._waiting: Counter[str] = Counter()
        self._failures: dict[str, deque[float]] = {}
        self._pause: dict[str, float] = {}

    def admit(self, source: str) -> str | None:
        """Count a new connection from ``source``: None if it may go on, else why not."""
        with self._lock:
            cap = self.rules.max_per_source
            if cap is not None and self._waiting[source] >= cap:
                return (
                    f"server busy: {cap} connections from {source} are already in their "
                    "handshake; try again in a moment"
                )
            self._waiting[source] += 1
            return None

    def finished(self, source: str, ok: bool | None) -> None:
        """The handshake of one admitted connection from ``source`` ended."""
        now = time.monotonic()
        with self._lock:
            self._waiting[source] -= 1
            if self._waiting[source] <= 0:
                del self._waiting[source]
            if ok is False:
                self._record_failure(source, now)
            elif ok:
                self._pause.pop(source, None)  # a success: this address is not guessing
                self._failures.pop(source, None)
            self._forget_old(now)

    def pause_for(self, source: str) -> float:
        """Seconds an admitted connection from ``source`` waits before its handshake."""
        with self._lock:
            return self._pause.get(source, 0.0)

    def waiting(self, source: str) -> int:
        """How many connections from ``source`` are in their handshake now."""
        with self._lock:
            return self._waiting[source]

    def _record_failure(self, source: str, now: float) -> None:
        """One more failure; slow the source down if it is over its free ones (lock held)."""
        failures = self._failures.setdefault(source, deque())
        while failures and now - failures[0] > self.rules.window:
            failures.popleft()
        failures.append(now)
        if self.rules.free_failures is None:
            return
        over = len(failures) - self.rules.free_failures  # 0: the last free one failed
        if over >= 0:
            exponent = min(over, 32)  # 2**32 times any pause is past any longest_pause
            pause = min(self.rules.first_pause * 2**exponent, self.rules.longest_pause)
            self._pause[source] = pause

    def _forget_old(self, now: float) -> None:
        """Drop what no longer matters, so a crowd of addresses cannot grow these forever."""
        for source in [s for s, f in self._failures.items() if now - f[-1] > self.rules.window]:
            del self._failures[source]
            self._pause.pop(source, None)


class HeldPerKey:
    """How many of something (conversations, requests) each key holds at once.

    ``take(key, limit)`` counts one more for ``key`` unless it holds
    ``limit`` already (None: no limit); each successful ``take`` is matched
    by one ``give_back(key)`` when that thing ends. Safe from several threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[Hashable] = Counter()

    def take(self, key: Hashable, limit: int | None) -> bool:
        """One more for ``key``; False (and nothing counted) if it holds ``limit``."""
        with self._lock:
            if limit is not None and self._held[key] >= limit:
                return False
            self._held[key] += 1
            return True

    def give_back(self, key: Hashable) -> None:
        """One fewer for ``key``."""
        with self._lock:
            self._held[key] -= 1
            if self._held[key] <= 0:
                del self._held[key]

    def held(self, key: Hashable) -> int:
        """How many ``key`` holds now."""
        with self._lock:
            return self._held[key]
