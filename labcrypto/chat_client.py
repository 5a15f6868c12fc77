"""The chat room's client: ``ChatClient``, one member of a room (notebooks 02-05).

The story of the room is in ``labcrypto.chat``. ``ChatClient.connect``
opens the channel (``labcrypto.client.open_channel``: handshake, server
key check, handoff) and starts one thread that reads the server's lines.

The server's notices arrive as a code with parameters (and an English
text); the client shows each in its reader's language (``in_language``),
so a Russian notebook reads "alice входит в чат" from an English server.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from .channel import SecureChannel
from .chat_messages import ChatMessage, decode_line, notice_text, refusal_text, say_message
from .client import Known, ServerKey, open_channel
from .errors import (
    ChannelClosed,
    ConnectionLost,
    LabCryptoError,
    LineRefused,
    MalformedMessage,
    NoAnswer,
)
from .i18n import N_, gettext
from .keys import KeyPair, PublicKey
from .streams import set_timeout

__all__ = ["ChatClient", "in_language", "refusal_in_language"]

log = logging.getLogger("labcrypto.chat")

_END = object()  # put in the queue when the conversation is over


def in_language(message: ChatMessage) -> ChatMessage:
    """``message`` as this process's reader reads it: a notice whose code we know, in the
    current language (``labcrypto.i18n``); anything else exactly as the server sent it.

    The parameters are filled in by ``chat_messages.notice_text``: text someone else
    chose goes through ``untrusted.quote``. A notice we cannot fill in (an unknown
    code, a missing parameter) keeps the server's English text.
    """
    if message.kind != "notice" or not message.code:
        return message
    try:
        text = notice_text(message.code, dict(message.params), gettext)
    except (KeyError, IndexError, ValueError):
        return message
    return replace(message, text=text)


def refusal_in_language(error: LineRefused) -> str:
    """Why the room refuses a line (``send`` raised ``error``), in the reader's language."""
    try:
        return refusal_text(error.code, error.params, gettext)
    except (KeyError, IndexError, ValueError):
        return str(error)


class ChatClient:
    """One member of a chat room: ``send`` lines, ``recv`` or iterate what arrives.

    Make one with ``ChatClient.connect(host, port, key, ...)``. A background
    thread reads the server's messages and puts each ``ChatMessage`` in
    ``messages`` (what ``recv`` reads) and, if set, calls
    ``on_message(message)`` — from that thread, so a widget callback must
    only update widget values, never ``print``. Your own lines come back
    too: that is the server's confirmation. The server's notices come in
    the language this process shows messages in (``in_language``). Use it in a ``with`` block, or
    call ``close()``.
    """

    def __init__(
        self,
        channel: SecureChannel,
        welcome: dict[str, Any],
        *,
        on_message: Callable[[ChatMessage], None] | None = None,
        timeout: float = 5.0,
        queue_size: int = 10_000,
    ) -> None:
        name, members = welcome.get("name"), welcome.get("members")
        if welcome.get("type") != "welcome" or not isinstance(name, str):
            raise MalformedMessage(
                N_("the server did not welcome us to a chat: is it a chat server?")
            )
        self.channel = channel
        #: Our name in the room, as the server's allowlist has it.
        self.name = name
        #: Who was in the room when we joined (ourselves included).
        self.members_at_join = [m for m in members if isinstance(m, str)] if members else []
        self.on_message = on_message
        self.messages: queue.Queue[Any] = queue.Queue(queue_size)
        #: Messages dropped unread because ``messages`` was full (the oldest go first).
        self.missed = 0
        self.timeout = timeout
        self.data_port: int | None = None
        #: The server's public key, and whether trust on first use just wrote it down
        #: (no pin and no earlier visit): the moment to compare its fingerprint by hand.
        self.server_key: PublicKey | None = None
        self.new_server = False
        self._error: LabCryptoError | None = None
        self._closing = threading.Event()
        set_timeout(channel.stream, timeout)
        self._reader = threading.Thread(
            target=self._read_loop, name=f"chat-client-{name}", daemon=True
        )
        self._reader.start()

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        key: KeyPair,
        *,
        server_key: ServerKey = None,
        known_servers: Known = None,
        mode: str = "secure",
        timeout: float = 5.0,
        on_message: Callable[[ChatMessage], None] | None = None,
        queue_size: int = 10_000,
    ) -> ChatClient:
        """Join the chat at ``host:port`` with our ``key``; follow a handoff if offered.

        ``server_key`` pins the server (a ``PublicKey``, a ``.pub`` path or a
        fingerprint). Without it the key is checked against
        ``known_servers`` (trust on first use; see ``labcrypto.client``).
        Raises ``KeyNotAllowed``, ``ServerKeyChanged``, ``PoolExhausted``,
        ``ConnectionRefusedError`` or ``TimeoutError``, each saying what to do.
        """
        opened = open_channel(
            host,
            port,
            key,
            server_key=server_key,
            known_servers=known_servers,
            mode=mode,
            timeout=timeout,
        )
        try:
            client = cls(
                opened.channel,
                opened.first,
                on_message=on_message,
                timeout=timeout,
                queue_size=queue_size,
            )
        except BaseException:
            opened.channel.close()
            raise
        client.data_port = opened.data_port
        client.server_key, client.new_server = opened.server_key, opened.new_server
        return client

    # --- talking ----------------------------------------------------------------------

    def send(self, text: str) -> None:
        """Send one line to the room (it comes back to us too, as confirmation)."""
        message = say_message(text)  # LineRefused (a ValueError) says what is wrong
        if self._closing.is_set() or self._error is not None:
            raise ChannelClosed(N_("this chat connection is closed; connect again"))
        try:
            self.channel.send(message)
        except OSError as exc:
            raise ConnectionLost(
                N_("could not send to the chat server ({error}); connect again"), error=exc
            ) from None

    def recv(self, timeout: float | None = 5.0) -> ChatMessage:
        """The next incoming message; ``TimeoutError`` if none within ``timeout`` seconds.

        Once the conversation is over (and everything that arrived has been
        read), raises ``ChannelClosed`` or ``ConnectionLost`` saying why.
        """
        try:
            item = self.messages.get(timeout=timeout)
        except queue.Empty:
            arrived = N_("no chat message arrived within {seconds} s")
            raise NoAnswer(arrived, seconds=timeout) from None
        if item is _END:
            self._put(_END)  # keep telling later callers, too
            assert self._error is not None
            raise self._error
        return item

    def iter_messages(self, timeout: float = 5.0) -> Iterator[ChatMessage]:
        """Yield incoming messages until none arrives for ``timeout`` s or the chat ends."""
        while True:
            try:
                yield self.recv(timeout)
            except (TimeoutError, ChannelClosed, ConnectionLost):
                return

    def __iter__(self) -> Iterator[ChatMessage]:
        return self.iter_messages(self.timeout)

    @property
    def connected(self) -> bool:
        """True until we close or the server ends the conversation."""
        return self._error is None and not self._closing.is_set()

    @property
    def ended_because(self) -> LabCryptoError | None:
        """Why the conversation ended (the server stopped or dropped us, the connection
        broke), or None while it goes on."""
        return self._error

    # --- the background reader ----------------------------------------------------------

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            try:
                message = in_language(decode_line(self.channel.recv()))
            except TimeoutError:
                continue
            except ChannelClosed:
                ended = N_("the server ended the chat (stopped, or dropped us)")
                self._finish(ChannelClosed(ended))
                return
            except (LabCryptoError, OSError) as exc:
                if self._closing.is_set():
                    break
                lost = N_("lost the chat connection: {error}; connect again")
                self._finish(ConnectionLost(lost, error=exc))
                return
            self._put(message)
            if self.on_message is not None:
                try:
                    self.on_message(message)
                except Exception:  # a broken widget must not stop the reader
                    log.debug("on_message callback failed", exc_info=True)
        self._finish(ChannelClosed(N_("this chat connection is closed; connect again")))

    def _finish(self, error: LabCryptoError) -> None:
        if self._error is None:
            self._error = error
        self._put(_END)

    def _put(self, item: object) -> None:
        """Queue ``item``; when the queue is full, the oldest message makes room.

        Memory stays bounded, and nothing goes silently: each message dropped
        unread is counted in ``missed`` (shown by ``repr``), and the first one
        is logged. (``on_message`` still sees every message.)
        """
        for _ in range(100):  # bounded: only this reader and ``recv`` touch the queue
            try:
                self.messages.put_nowait(item)
                return
            except queue.Full:
                try:
                    dropped = self.messages.get_nowait()
                except queue.Empty:
                    continue
                if dropped is not _END:
                    self.missed += 1
                    if self.missed == 1:
                        log.warning(
                            "%s: %d messages unread; dropping the oldest (read them with "
                            "recv(), or pass a larger queue_size)",
                            self.name,
                            self.messages.maxsize,
                        )

    # --- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Say goodbye, close the connection and stop the reader thread. Idempotent."""
        if self._closing.is_set():
            return
        self._closing.set()
        # The goodbye first, while the channel is whole: once reading is shut
        # down below, the reader sees the stream end and breaks the channel.
        self.channel.goodbye()
        # Wake the reader next and wait for it, *then* close the socket: closing
        # a socket that another thread is about to read lets the OS give its
        # number to the next socket opened, and the reader would wait on that one.
        shutdown = getattr(self.channel.stream, "shutdown", None)
        if shutdown is not None:
            with contextlib.suppress(OSError):
                shutdown(socket.SHUT_RD)  # reading ends; the goodbye can still be sent
        self._reader.join(self.timeout + 1.0)
        self.channel.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        port = f", data port {self.data_port}" if self.data_port else ""
        missed = f", {self.missed} unread messages dropped" if self.missed else ""
        return f"<ChatClient {self.name} {state}{port}{missed}>"
