"""The chat room: the course's message exchange, encrypted, for a whole class.

Notebook 02b_chat starts a ``ChatServer`` on one port; 03_allowlist
turns the allowlist on; 04_two_ports gives it a ``PortPool`` so every
conversation moves to a port of its own after the handshake. The CLI's
``labcrypto serve`` / ``labcrypto chat`` use the same two classes.

How the room works:

* Each client runs the handshake with its static key. The server checks
  the key against the ``Allowlist`` *inside* the handshake, before it sends
  anything encrypted; an unknown key is refused with a plain error message
  and the refusal is logged with the key's fingerprint.
* Every message a client sends is delivered to every connected client —
  the sender too, which is its confirmation that the server got it —
  tagged with the sender's name from the allowlist (not with a name the
  client chose: the key decides who you are).
* ``server.say(text)`` sends an operator message to everyone, as "server".
* Inside the encrypted channel, messages are small JSON objects, never
  ``pickle`` (course mistake 7): see ``labcrypto.chat_messages``.
* A line is handed to each member's socket without waiting for it; what
  a member's socket cannot take at once waits in that member's buffer for
  its own writer thread. So one slow or dead client never blocks the
  room: its writer times out, or its buffer overflows, and it is dropped
  while everyone else chats on.
  A client that sends garbage or disconnects in the middle of a frame is
  dropped too.
* Every line costs the server one send per member, so one client in a
  loop could flood the room. The room carries at most ``max_room_rate``
  lines a second; each member may say an equal share of it (after a
  burst of ``LINE_BURST`` lines). A member over its share is told to slow
  down, and the server simply reads its next line later: nothing is lost,
  and TCP makes the flooder wait while everyone else chats on.

Threads never ``print``: the server reports joins, leaves, refusals and
pool use through ``emit`` (``server.events``, ``server.listeners``), and
each chat line through ``server.on_message`` and ``server.history``. The
client hands each incoming message to ``client.messages`` (a queue that
``recv`` reads) and to an optional ``on_message`` callback for widgets.

The room lives in three small modules, and this one gathers what a
notebook needs from them: ``chat_messages`` (the format of a line),
``chat_server`` (``ChatServer``, ``ChatSettings``) and ``chat_client``
(``ChatClient``).
"""

from __future__ import annotations

from .chat_client import ChatClient
from .chat_messages import MAX_TEXT, SERVER_NAME, ChatMessage
from .chat_server import LINE_BURST, ChatServer, ChatSettings

__all__ = [
    "LINE_BURST",
    "MAX_TEXT",
    "SERVER_NAME",
    "ChatClient",
    "ChatMessage",
    "ChatServer",
    "ChatSettings",
]
