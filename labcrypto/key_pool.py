"""Fresh ephemeral key pairs made while we wait, each handed out once.

In secure mode every handshake makes a new ephemeral key pair: a secret
exponent ``x`` and ``X = g^x mod p``, one 2048-bit exponentiation. The
file service makes one for every request on both sides, and the peer
waits while it is made. But each side also *waits* in every handshake:
the client while the server works out its half, the server while the
client works out its own. An ``EphemeralPool`` uses that time: the
channel calls ``refill()`` right after sending its hello, and the *next*
handshake takes the pair made then, instead of making one while the
peer waits::

    pool = EphemeralPool(FFDHE2048)
    SecureChannel.client(sock, my_key, ephemeral_pool=pool)  # take, then refill

What keeps this as safe as making the key on the spot:

* **Each key pair is used once.** ``take`` removes it from the pool
  before handing it out (one ``deque.popleft``, which two threads cannot
  both win), and keeps no copy: no two handshakes ever get the same one.
  The handshake also refuses a pair it has seen before.
* **Nothing is stored.** The pool holds at most ``size`` pairs (one by
  default), in this process's memory only, never in a file; ``clear()``
  drops them (a server does on stop).
* **Forward secrecy is unchanged.** A taken pair lives in its handshake,
  which forgets ``x`` as soon as the session keys are made. A thief who
  reads the process's memory later finds at most the pair waiting for
  the next handshake, which has protected nothing yet (and, as without
  a pool, the long-term key): no past session.
* The exponents come from ``secrets``, as for every other key.

When the pool is empty (the first request, or a burst of them), ``take``
makes a pair on the spot, as a handshake without a pool does. The pool
never changes what the handshake computes and costs the same CPU; it
only moves one exponentiation from the time the peer waits for us into
the time we wait for the peer. No thread: the work happens in the
caller's own waits. Used by ``ftp.FileServer`` and ``ftp.FileClient``.
"""

from __future__ import annotations

from collections import deque

from .groups import FFDHE2048, Group
from .keys import KeyPair, generate

__all__ = ["EphemeralPool"]


class EphemeralPool:
    """Up to ``size`` fresh ephemeral key pairs of ``group``, made ahead, each taken once."""

    def __init__(self, group: Group = FFDHE2048, size: int = 1) -> None:
        if size < 1:
            raise ValueError(f"a pool holds at least one key pair, not {size}")
        self.group = group
        self.size = size
        self._ready: deque[KeyPair] = deque()
        #: How many pairs ``take`` found made ahead, and how many it made on the spot
        #: (counted without a lock: figures for a benchmark, not for decisions).
        self.taken_ready = 0
        self.made_on_the_spot = 0

    def take(self) -> KeyPair:
        """A fresh key pair that no one else has had or will have (made now if none waits)."""
        try:
            pair = self._ready.popleft()
        except IndexError:
            self.made_on_the_spot += 1
            return generate(self.group)
        self.taken_ready += 1
        return pair

    def refill(self) -> None:
        """Make one pair for a later ``take``, unless ``size`` already wait.

        Call it when this side waits for its peer anyway (the channel does,
        after sending its hello). One pair per call: with one ``take`` and
        one ``refill`` per handshake the pool stays full, and several threads
        refilling at once overshoot ``size`` by at most one pair each.
        """
        if len(self._ready) < self.size:
            self._ready.append(generate(self.group))

    def clear(self) -> None:
        """Drop every pair not taken (they protected nothing yet)."""
        self._ready.clear()

    @property
    def ready(self) -> int:
        """How many pairs wait now."""
        return len(self._ready)

    def __repr__(self) -> str:
        return f"EphemeralPool({self.group.name}, {self.ready}/{self.size} ready)"
