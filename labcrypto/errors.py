"""Every error the lab raises, under one root: ``LabCryptoError``.

Catch ``LabCryptoError`` to handle anything the lab reports; catch a
subclass to handle one cause. Each message says what went wrong and, where
it can, what to do next. Only the CLI turns these into exit codes and only
the widgets turn them into red text.

An error speaks the reader's language. It is raised with an English
*template*, marked for the catalog with ``N_``, and the values that fill it
in::

    raise KeyNotAllowed(
        N_("the key with fingerprint {fingerprint} is not on the allowlist"),
        fingerprint=key.fingerprint,
    )

``str(error)`` — the last line of a traceback in a notebook — fills in the
template's translation in the language the process speaks now
(``i18n.language()``): Russian in a Russian notebook. ``error.english()``
fills in the template as written: that is what a server writes to its log
and sends on the wire, whatever language its process is set to (the
instructor's log and the protocol stay English), and what ``args`` holds,
so pickling and nbgrader see one plain English sentence; ``in_english(exc)``
does the same for any exception. ``repr`` is written like Python's own but with
``str``'s text: a cell whose value is an error shows it in the reader's language.

Values someone else chose (a peer's field, a file name) go in already
quoted with ``untrusted.quote``, exactly as they would into a log line.
"""

from __future__ import annotations

from collections.abc import Callable

from .i18n import gettext

__all__ = [
    "AllowlistError",
    "BadKeyName",
    "BadKeyText",
    "BadPathName",
    "ChannelClosed",
    "ConnectionLost",
    "DecryptionFailed",
    "FileServiceError",
    "FrameTooLarge",
    "HandoffFailed",
    "HandshakeError",
    "InvalidPublicValue",
    "KeyFileError",
    "KeyNotAllowed",
    "KnownServersError",
    "LabCryptoError",
    "LineRefused",
    "MalformedJSON",
    "MalformedMessage",
    "ModeMismatch",
    "NameNotOnAllowlist",
    "NoAnswer",
    "NotListening",
    "PathOutsideHome",
    "PathRefused",
    "PeerTooSlow",
    "PoolExhausted",
    "ProtocolError",
    "QuotaExceeded",
    "ServerKeyChanged",
    "ServiceMismatch",
    "SessionExhausted",
    "TransferFailed",
    "Translated",
    "UnexpectedMessage",
    "UnknownGroup",
    "UploadTooLarge",
    "VersionMismatch",
    "in_english",
]


def _as_written(text: str) -> str:
    return text


class Translated(Exception):
    """An exception whose message is a template and the values that fill it.

    ``SomeError(N_("… {name} …"), name=value)``: ``str()`` is the template's
    translation in the current language, filled in; ``english()`` the template as
    written, filled in (also ``args[0]``). A template with no values is shown as
    it is (braces and all), so an old-style ready-made sentence still works.
    ``LabCryptoError`` is one; so are the two below that stay what Python calls
    them (``TimeoutError``, ``ConnectionRefusedError``), so that no ``except``
    changes what it catches.
    """

    def __init__(self, template: str = "", /, **fields: object) -> None:
        self.template = template
        self.fields = fields
        if template:
            super().__init__(self.english())
        else:
            super().__init__()

    def render(self, translate: Callable[[str], str]) -> str:
        """The message with its template passed through ``translate``, then filled in.

        A field that is itself a lab error is rendered the same way, so a cause
        quoted inside another error speaks the same language. A translation that
        cannot be filled in (a placeholder lost in the catalog) falls back to the
        English template rather than hide the error behind another one.
        """
        if not self.template:
            return ""
        if not self.fields:
            return translate(self.template)
        values = {
            name: value.render(translate) if isinstance(value, Translated) else value
            for name, value in self.fields.items()
        }
        try:
            return translate(self.template).format(**values)
        except (KeyError, IndexError, ValueError):
            return self.template.format(**values)

    def english(self) -> str:
        """The message as written in the code, in English: for logs and the wire."""
        return self.render(_as_written)

    def __str__(self) -> str:
        return self.render(gettext)

    def __repr__(self) -> str:
        """Like Python's own (``KeyNotAllowed('…')``), with the message as ``str`` gives
        it: a notebook cell whose value is an error shows it in the reader's language."""
        return f"{type(self).__name__}({str(self)!r})"


class LabCryptoError(Translated):
    """Root of every error raised by labcrypto (its message: see ``Translated``)."""


class NoAnswer(Translated, TimeoutError):
    """The peer did not answer in time; the message says what to check. A ``TimeoutError``,
    as Python's own, and not a ``LabCryptoError`` (a wait that ran out is not a refusal)."""


class NotListening(Translated, ConnectionRefusedError):
    """Nothing listens at the address (is the server cell running?). A
    ``ConnectionRefusedError``, as Python's own."""


def in_english(exc: BaseException) -> str:
    """``exc``'s message in English: a lab error's ``english()``, else ``str(exc)``.

    Servers use it for their event log and for the text they send a peer, so
    neither changes language with the process (``LABCRYPTO_LANG``)."""
    return exc.english() if isinstance(exc, Translated) else str(exc)


class KeyFileError(LabCryptoError):
    """A key file that is missing, corrupt, truncated or does not match its partner."""


class BadKeyText(KeyFileError, ValueError):
    """Text that is not a key, a fingerprint or a number in the lab's one spelling
    (a ``.pub`` line, an allowlist cell, a pin typed by hand)."""


class BadKeyName(KeyFileError, ValueError):
    """A key name that could not safely be a file name: Latin letters, digits, ``_ - .``
    only (a Cyrillic or e-mail-like name is refused too, with what to use instead)."""


class KnownServersError(KeyFileError):
    """A damaged ``known_servers.csv``: a row that cannot be read is an error, never skipped."""


class ProtocolError(LabCryptoError):
    """The peer sent bytes that break the protocol (bad frame, bad message)."""


class FrameTooLarge(ProtocolError):
    """A frame's declared length is above the limit; refused before reading it."""


class MalformedJSON(ProtocolError):
    """A message that is not one well-formed JSON object: bad UTF-8, a duplicate key,
    a lone surrogate, NaN, or too large. Raised by ``jsonwire.decode``; ``code`` names
    the reason (a key of ``jsonwire.REASONS``, "" if raised elsewhere)."""

    code: str = ""


class HandshakeError(ProtocolError):
    """The handshake could not complete."""


class InvalidPublicValue(HandshakeError, ValueError):
    """A Diffie-Hellman public value that must not be used (0, 1, p-1, too big...)."""


class UnknownGroup(HandshakeError, LookupError):
    """A group name that the lab does not know, or that this side does not accept."""


class VersionMismatch(HandshakeError):
    """The peer speaks another version of the protocol, or another mode."""


class ModeMismatch(VersionMismatch):
    """The peer asked for another mode (secure, static, toy) than this side runs."""


class ServiceMismatch(VersionMismatch):
    """The peer asked for another service (chat, files) than this server offers."""


class MalformedMessage(HandshakeError):
    """A handshake message that is not the JSON object the protocol expects."""


class UnexpectedMessage(HandshakeError):
    """A handshake message arrived in the wrong state (out of order, or twice)."""


class KeyNotAllowed(HandshakeError):
    """The server does not have the client's public key on its allowlist."""


class ServerKeyChanged(HandshakeError):
    """The server presented a public key other than the one we expected (pinned)."""


class DecryptionFailed(ProtocolError):
    """A frame failed authentication: tampered, replayed, reordered, or the wrong key."""


class SessionExhausted(ProtocolError):
    """A session key has sealed as much as it safely may (message count or bytes):
    the channel closes; open a new connection for a new key."""


class ChannelClosed(LabCryptoError):
    """The peer closed the conversation cleanly; there is nothing more to read."""


class ConnectionLost(ProtocolError):
    """The connection ended in the middle of a frame or without a clean close."""


class PoolExhausted(LabCryptoError):
    """Every port of the pool is leased; try again when one is released."""


class AllowlistError(LabCryptoError, ValueError):
    """A change to the allowlist that was refused: a bad name, or a name or key already there."""


class NameNotOnAllowlist(AllowlistError, LookupError):
    """A name that is not on the allowlist (for example in ``remove``)."""


class FileServiceError(LabCryptoError):
    """A file-service command the server refused or could not do (not found, exists...)."""


class PathRefused(FileServiceError):
    """A path the file service will not use; the request touched nothing."""


class PathOutsideHome(PathRefused):
    """A path that would lead outside the user's home (``..`` above it, a symbolic link)."""


class BadPathName(PathRefused, ValueError):
    """A path with characters or a length the file service refuses (NUL, ``\\``, look-alikes)."""


class TransferFailed(FileServiceError):
    """A transfer that did not arrive whole (digest or size mismatch); nothing was kept."""


class UploadTooLarge(FileServiceError):
    """An upload over the server's size limit, refused before any data was sent."""


class QuotaExceeded(FileServiceError):
    """An upload that would take the user's home over its quota."""


class LineRefused(LabCryptoError, ValueError):
    """A chat line the room does not carry: empty, too long, holding control or bidi
    characters, or not a ``say`` message. The server says why, and the conversation goes on.

    ``code`` names the reason and ``params`` fill in its text (``chat_messages.REFUSALS``):
    the server sends both, so each member reads the reason in its own language.
    """

    def __init__(
        self,
        message: str,
        code: str = "",
        params: dict[str, str | int | float] | None = None,
        /,
        **shown: object,
    ) -> None:
        super().__init__(message, **shown)
        self.code = code
        self.params = dict(params or {})


class HandoffFailed(HandshakeError):
    """The move to the data port (task 4) failed: no client came with the ticket in time,
    or the server did not accept our ticket."""


class PeerTooSlow(ProtocolError):
    """A frame that began but did not arrive whole in time: a stalled or "slowloris"
    peer that sends a byte now and then to hold a connection open. It is dropped."""
