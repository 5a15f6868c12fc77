"""Opening a secure conversation with a server, the client's way (notebooks 02–04).

``open_channel`` does everything between "I have a key" and "I can talk":

1. connect over TCP (with a timeout; "connection refused" says: is the
   server cell running? is this the right port?);
2. run the handshake (``SecureChannel.client``) with our static key;
3. make sure the server is the one we mean: either *pinned* (``server_key``
   = a ``PublicKey``, a ``.pub`` file, or a fingerprint the instructor
   gave you) or *trusted on first use* (``known_servers``: the first key a
   server shows is written down; a different one later is refused, like
   ssh's known_hosts);
4. read the server's first encrypted message. If it is a ``port`` message
   (task 4), follow it to the data port and show the ticket there
   (``labcrypto.handoff``); if it says ``busy``, raise ``PoolExhausted``.

It returns the open channel and the first message of the conversation
itself (the chat server's welcome), as a dict. ``labcrypto.chat.ChatClient``
is built on it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import jsonwire
from .channel import SecureChannel
from .errors import (
    ChannelClosed,
    ConnectionLost,
    HandoffFailed,
    KeyFileError,
    NoAnswer,
    ProtocolError,
)
from .handoff import busy_error, present_ticket
from .i18n import N_
from .keys import KeyPair, PublicKey, load_public, parse_fingerprint
from .known_servers import KnownServers
from .server import connect
from .streams import close_stream
from .untrusted import quote

__all__ = ["Opened", "open_channel", "resolve_server_key"]

ServerKey = PublicKey | str | os.PathLike[str] | None
Known = KnownServers | str | os.PathLike[str] | bool | None


@dataclass
class Opened:
    """What ``open_channel`` gives back.

    ``channel`` is ready for ``send``/``recv``; ``first`` is the server's
    first message after the handshake (and after the handoff, if any);
    ``data_port`` is the port the conversation moved to (None on one port);
    ``new_server`` is True when trust-on-first-use just recorded the key.
    """

    channel: SecureChannel
    first: dict[str, Any]
    server_key: PublicKey
    data_port: int | None = None
    new_server: bool = False


def resolve_server_key(server_key: ServerKey) -> PublicKey | str | None:
    """Turn what the user gave into what the handshake pins.

    A ``PublicKey`` stays as it is; a path to an existing ``.pub`` file is
    loaded; any other string must be a whole fingerprint (``SHA256:`` and
    43 base64 characters, as ``labcrypto keygen`` prints it).
    """
    if server_key is None or isinstance(server_key, PublicKey):
        return server_key
    if isinstance(server_key, os.PathLike) or Path(str(server_key)).suffix == ".pub":
        return load_public(server_key)
    try:
        return parse_fingerprint(str(server_key))
    except ValueError as exc:
        raise KeyFileError(
            N_("server_key is neither a .pub file nor a fingerprint: {error}"), error=exc
        ) from None


def _known_servers(known: Known) -> KnownServers | None:
    if known is False:
        return None
    if known is None or known is True:
        return KnownServers()
    if isinstance(known, KnownServers):
        return known
    return KnownServers(known)


def open_channel(
    host: str,
    port: int,
    key: KeyPair,
    *,
    server_key: ServerKey = None,
    known_servers: Known = None,
    mode: str = "secure",
    timeout: float = 5.0,
) -> Opened:
    """Connect, handshake, check the server's key, follow the handoff; see the module doc.

    ``known_servers`` is used only when no ``server_key`` is pinned: a
    ``KnownServers``, a path to its CSV file, None for the default
    ``keys/known_servers.csv``, or False to trust any server key (only for
    notebook 03's man-in-the-middle demo). Every wait is bounded by
    ``timeout`` seconds.
    """
    pinned = resolve_server_key(server_key)
    known = None if pinned is not None else _known_servers(known_servers)
    control = connect(host, port, timeout)
    channel: SecureChannel | None = None
    try:
        channel = _handshake(control, key, mode, pinned, timeout, host, port)
        peer = channel.session.peer_key
        new_server = known.check(host, port, peer) if known is not None else False
        first = _first_message(channel, timeout)
        if first["type"] == "busy":
            raise busy_error(first)
        if first["type"] != "port":
            return Opened(channel, first, peer, None, new_server)
        data_port, ticket = _port_fields(first)
        present_ticket(channel, host, data_port, ticket, timeout)
        try:
            first = _first_message(channel, timeout)
        except ProtocolError:
            raise HandoffFailed(
                N_("the server did not accept us on data port {port} (ticket refused or "
                   "expired); connect again"),
                port=data_port,
            ) from None
        return Opened(channel, first, peer, data_port, new_server)
    except BaseException:
        if channel is not None:
            channel.close()
        raise
    finally:
        if channel is None or channel.stream is not control:
            close_stream(control)  # after a handoff (or a failure) it has done its job


def _handshake(
    control: socket.socket,
    key: KeyPair,
    mode: str,
    pinned: PublicKey | str | None,
    timeout: float,
    host: str,
    port: int,
) -> SecureChannel:
    try:
        return SecureChannel.client(control, key, mode, expected_server_key=pinned, timeout=timeout)
    except TimeoutError:
        raise NoAnswer(
            N_("{address} accepted the connection but did not answer the handshake within "
               "{seconds} s: is it the lab's server (labcrypto), and this its port?"),
            address=f"{host}:{port}",
            seconds=timeout,
        ) from None
    except ConnectionLost as exc:
        raise ConnectionLost(
            N_("{address} hung up during the handshake ({error}): is it the lab's server "
               "(labcrypto), and this its port? (A server that refuses your key or mode says "
               "so with an error; a silent hang-up is a server that stopped or is not ours.)"),
            address=f"{host}:{port}",
            error=exc,
        ) from None


def _first_message(channel: SecureChannel, timeout: float) -> dict[str, Any]:
    """The server's next message, as a dict; errors say what happened."""
    try:
        data = channel.recv(timeout)
    except TimeoutError:
        raise NoAnswer(
            N_("the server finished the handshake but said nothing for {seconds} s; try "
               "again, or ask whether the server is overloaded"),
            seconds=timeout,
        ) from None
    except ChannelClosed:
        raise ConnectionLost(
            N_("the server closed the conversation right after the handshake")
        ) from None
    message = jsonwire.decode(data, channel.max_message)
    if not isinstance(message.get("type"), str):
        raise ProtocolError(
            N_('the server\'s first message has no "type": is it the lab\'s server (labcrypto)?')
        )
    return message


def _port_fields(message: dict[str, Any]) -> tuple[int, str]:
    port, ticket = message.get("port"), message.get("ticket")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise HandoffFailed(
            N_("the server's port message has no valid port: {port}"), port=quote(repr(port), 40)
        )
    if not isinstance(ticket, str) or not ticket:
        raise HandoffFailed(N_("the server's port message has no ticket"))
    return port, ticket
