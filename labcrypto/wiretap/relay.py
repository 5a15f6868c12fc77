"""The wiretap's relay: a TCP proxy that records every chunk, and may change frames.

The client connects to the *tap's* port; the tap opens its own connection
to the real server and passes the bytes along, both ways, writing each
chunk down (``capture.TapRecord``). Passive (no policy), the bytes go
through exactly as they came. Active, each whole frame goes through
``policy(frame)`` first, which answers::

    None            pass the frame on unchanged
    bytes           send this instead
    [bytes, ...]    send these (or [] to drop it)

and may call ``frame.send_back(bytes)`` to answer the sender.

Used by notebooks 02–05; the ready-made policies are in ``wiretap.attacks``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from ..channel import DEFAULT_MAX_FRAME, encode_frame
from ..errors import LabCryptoError, in_english
from ..server import ThreadedServer, connect
from ..streams import close_stream, set_timeout
from .capture import C2S, S2C, FrameCutter, TapConnection, TapFrame, TapRecord

__all__ = ["Policy", "PolicyResult", "Wiretap"]

_CHUNK = 64 * 1024


PolicyResult = bytes | Sequence[bytes] | None


class Policy(Protocol):
    """Anything callable as ``policy(frame)``; see the module docstring for the answers."""

    def __call__(self, frame: TapFrame, /) -> PolicyResult: ...


# --- the relay ---------------------------------------------------------------------


class Wiretap(ThreadedServer):
    """A recording TCP relay to ``target`` = ``(host, port)`` of the real server.

    ``tap = Wiretap(server.address).start()``, then point the client at
    ``tap.address``. Without ``policy`` the bytes pass unchanged; with one,
    every frame goes through ``policy(frame)`` first. ``max_records`` bounds
    how many chunks are kept (the rest are relayed but not recorded).
    """

    def __init__(
        self,
        target: tuple[str, int],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        policy: Policy | None = None,
        name: str | None = None,
        connection_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_records: int = 100_000,
    ) -> None:
        super().__init__(host, port, name=name, connection_timeout=connection_timeout)
        self.target = target
        self.policy = policy
        self.connect_timeout = connect_timeout
        self.max_frame = max_frame
        self.max_records = max_records
        self._tap_lock = threading.Lock()
        self._tap_connections: list[TapConnection] = []
        self._records: list[TapRecord] = []
        self._next_id = 0

    # --- what it saw -----------------------------------------------------------

    @property
    def records(self) -> list[TapRecord]:
        """Every chunk so far, in the order the tap received them (a copy)."""
        with self._tap_lock:
            return list(self._records)

    @property
    def connections(self) -> list[TapConnection]:
        """Every connection so far, oldest first."""
        with self._tap_lock:
            return list(self._tap_connections)

    def frames(self, direction: str | None = None, connection: int | None = None) -> list[TapFrame]:
        """Every whole frame so far, optionally of one direction or one connection."""
        with self._tap_lock:
            found = [f for c in self._tap_connections for f in c.frames]
        found.sort(key=lambda f: f.time)
        return [
            f
            for f in found
            if (direction is None or f.direction == direction)
            and (connection is None or f.connection == connection)
        ]

    def stream(self, direction: str, connection: int | None = None) -> bytes:
        """All bytes of one direction joined, as one long byte string."""
        return b"".join(
            r.data
            for r in self.records
            if r.direction == direction and (connection is None or r.connection == connection)
        )

    def clear(self) -> None:
        """Forget what was recorded so far (connections still open keep relaying)."""
        with self._tap_lock:
            self._records.clear()
            for conn in self._tap_connections:
                conn.records.clear()
                conn.frames.clear()
            self._tap_connections[:] = [c for c in self._tap_connections if c.ended is None]

    # --- one connection --------------------------------------------------------

    def handle(self, conn: socket.socket, address: tuple[str, int]) -> None:
        """Open our own connection to the target, then relay until one side is done."""
        with self._tap_lock:
            self._next_id += 1
            tap_conn = TapConnection(self._next_id, address, time.time())
            self._tap_connections.append(tap_conn)
        try:
            upstream = connect(*self.target, timeout=self.connect_timeout)
        except OSError as exc:
            where = f"{self.target[0]}:{self.target[1]}"
            tap_conn.error = f"cannot reach the server {where}: {in_english(exc)}"
            tap_conn.ended = time.time()
            self.emit("error", f"#{tap_conn.id}: {tap_conn.error}")
            return
        self.emit("connect", f"#{tap_conn.id}: {address[0]}:{address[1]} → {self.target[1]}")
        try:
            set_timeout(upstream, self.connection_timeout)
            self._relay(tap_conn, conn, upstream)
        except (OSError, LabCryptoError) as exc:
            tap_conn.error = f"{type(exc).__name__}: {in_english(exc)}"
            self.emit("error", f"#{tap_conn.id}: {tap_conn.error}")
        finally:
            tap_conn.ended = time.time()
            close_stream(upstream)
            self.emit("close", f"#{tap_conn.id} closed")

    def _relay(self, tap_conn: TapConnection, client: socket.socket, server: socket.socket) -> None:
        """Move bytes both ways in this one thread until both sides are done.

        ``select`` wakes us when either socket has bytes (or every
        ``poll_interval`` to check whether the tap is stopping). The loop
        ends when both directions reached end of stream, the tap stops, or
        nothing moved for ``connection_timeout`` seconds.
        """
        sides = {C2S: (client, server), S2C: (server, client)}
        state = {d: FrameCutter(self.max_frame) for d in sides}
        open_directions = {C2S, S2C}
        last_activity = time.monotonic()
        while self.running and open_directions:
            watch = [sides[d][0] for d in open_directions]
            readable, _, _ = select.select(watch, [], [], self.poll_interval)
            if not readable:
                if time.monotonic() - last_activity > self.connection_timeout:
                    self.emit("timeout", f"#{tap_conn.id}: idle, closed")
                    return
                continue
            last_activity = time.monotonic()
            for direction in [d for d in open_directions if sides[d][0] in readable]:
                source, dest = sides[direction]
                try:
                    data = source.recv(_CHUNK)
                except OSError:
                    return  # reset or shut down (stop()): end both directions
                if not data:
                    open_directions.discard(direction)
                    with contextlib.suppress(OSError):
                        dest.shutdown(socket.SHUT_WR)  # pass the end of stream along
                    continue
                self._record(tap_conn, direction, data)
                self._pass_on(tap_conn, direction, data, state[direction], source, dest)

    def _record(self, tap_conn: TapConnection, direction: str, data: bytes) -> None:
        with self._tap_lock:
            if len(self._records) >= self.max_records:
                return
            record = TapRecord(tap_conn.id, direction, time.time(), data)
            self._records.append(record)
            tap_conn.records.append(record)

    def _pass_on(
        self,
        tap_conn: TapConnection,
        direction: str,
        data: bytes,
        state: FrameCutter,
        source: socket.socket,
        dest: socket.socket,
    ) -> None:
        """Cut ``data`` into frames; forward raw (passive) or per the policy (active)."""
        frames: list[bytes] = []
        if state.decoder is not None:
            try:
                frames = state.decoder.feed(data)
            except LabCryptoError:
                state.decoder = None  # not our protocol (or an attack): stop framing
                if self.policy is not None:
                    raise
        if self.policy is None:
            dest.sendall(data)  # passive: exactly the bytes that came
        out: list[bytes] = []
        for payload in frames:
            frame = self._new_frame(tap_conn, direction, payload, state, source)
            if self.policy is not None:
                replacement = _as_frames(self.policy(frame), payload)
                frame.verdict = _verdict(payload, replacement)
                frame._send_back = None
                out.extend(replacement)
        if out:
            dest.sendall(b"".join(encode_frame(p, self.max_frame) for p in out))

    def _new_frame(
        self,
        tap_conn: TapConnection,
        direction: str,
        payload: bytes,
        state: FrameCutter,
        source: socket.socket,
    ) -> TapFrame:
        kind, data_index = state.classify(payload)
        frame = TapFrame(
            tap_conn.id, direction, state.frames, time.time(), payload, kind, data_index
        )
        frame._send_back = lambda p: source.sendall(encode_frame(p, self.max_frame))
        state.frames += 1
        with self._tap_lock:
            if len(tap_conn.frames) < self.max_records:
                tap_conn.frames.append(frame)
        return frame

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.running else "stopped"
        mode = "passive" if self.policy is None else f"active ({type(self.policy).__name__})"
        target = f"{self.target[0]}:{self.target[1]}"
        return f"<Wiretap {where} → {target}, {mode}, {len(self.records)} chunks>"


def _as_frames(result: PolicyResult, original: bytes) -> list[bytes]:
    """A policy's answer as the list of frames to send on."""
    if result is None:
        return [original]
    if isinstance(result, bytes | bytearray | memoryview):
        return [bytes(result)]
    frames = list(result)
    if not all(isinstance(p, bytes | bytearray) for p in frames):
        raise TypeError("a policy must return None, bytes, or a list of bytes")
    return [bytes(p) for p in frames]


def _verdict(original: bytes, sent: list[bytes]) -> str:
    if not sent:
        return "dropped"
    return "passed" if sent == [original] else "changed"
