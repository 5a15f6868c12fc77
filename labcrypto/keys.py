"""Long-term key pairs, kept in text files you can open and read (task 1).

A key pair is a secret exponent ``private`` and the public value
``public = g^private mod p`` in a named group. It is saved as two files:

``NAME.key`` — the private key. Created with mode 0600 (only you can read
it). Anyone holding it can pretend to be you, so never share or commit it::

    # labcrypto private key "alice": keep it secret, never share or commit it.
    version: 1
    group: ffdhe2048
    private: 0x5d1c...
    public: 0x9a0b...

``NAME.pub`` — the public key, one line in the style of ssh's ``.pub``
files: a format tag, the group, the public value in hex, and a comment::

    labcrypto-dh1 ffdhe2048 0x9a0b... alice

The same one-line text (without the comment) is what the allowlist CSV
stores. Numbers are written in hex with a ``0x`` prefix; when reading, a
plain run of digits is read as decimal, and case, leading zeros and spaces
do not matter — one key spelled two ways is the same key.

A fingerprint (``alice.fingerprint``) names a public key the way ssh does:
``SHA256:`` and the base64 of the whole SHA-256 digest of the group name
and the public value (43 characters, 256 bits). All of it counts: a
fingerprint cut to 16 hex digits (64 bits) can be matched by a second key
after about 2^64 tries, which is within reach of a determined attacker.
When both keys are at hand, compare the keys themselves.

Used from notebook 01 on; ``labcrypto keygen`` is the command-line twin.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import BadKeyName, BadKeyText, InvalidPublicValue, KeyFileError, LabCryptoError
from .groups import FFDHE2048, Group, get_group, power, validate_public
from .i18n import N_

__all__ = [
    "FINGERPRINT_PREFIX",
    "KEYS_ENV",
    "PUBLIC_TAG",
    "KeyPair",
    "PublicKey",
    "RandomSource",
    "default_dir",
    "fingerprint_of",
    "generate",
    "key_paths",
    "load",
    "load_or_create",
    "load_public",
    "parse_fingerprint",
    "parse_number",
    "save",
]

#: The first word of a public key's text form; the "1" is the format version.
PUBLIC_TAG = "labcrypto-dh1"
_PRIVATE_VERSION = "1"
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
#: How a fingerprint starts (as in ssh); 43 base64 characters of the digest follow.
FINGERPRINT_PREFIX = "SHA256:"
_FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]")


class RandomSource(Protocol):
    """Where secret random numbers come from: the ``secrets`` module has both methods.

    A test passes its own (seeded) source to pin ephemeral keys and nonces
    and check the key schedule against known answers; real code never does.
    """

    def token_bytes(self, nbytes: int) -> bytes: ...
    def randbelow(self, exclusive_upper_bound: int) -> int: ...


def fingerprint_of(group: Group, value: int) -> str:
    """``SHA256:`` + base64 (no padding) of SHA-256(group name, ":", value as fixed bytes)."""
    data = group.name.encode() + b":" + value.to_bytes(group.byte_length, "big")
    digest = hashlib.sha256(data).digest()
    return FINGERPRINT_PREFIX + base64.b64encode(digest).decode("ascii").rstrip("=")


def parse_fingerprint(text: str) -> str:
    """Check that ``text`` is a whole fingerprint (``SHA256:`` + 43 base64 characters).

    Returns it without surrounding spaces. Anything shorter is refused:
    a short pin is a weak pin (the old 16-hex-digit form had 64 bits).
    """
    cleaned = text.strip()
    if not _FINGERPRINT_RE.fullmatch(cleaned):
        raise BadKeyText(
            N_("{text} is not a whole key fingerprint: expected SHA256: and 43 base64 "
               "characters, as `labcrypto keygen` prints it (short fingerprints are not "
               "accepted)"),
            text=repr(text[:60]),
        )
    return cleaned


def parse_number(text: str) -> int:
    """Read a non-negative integer written as ``0x...`` hex or plain decimal.

    Spaces, ``_`` and case are ignored: ``"0x00FF"``, ``"0xff"`` and ``"255"``
    are all 255. Anything else raises ``ValueError`` saying why.
    """
    cleaned = re.sub(r"[\s_]", "", text).lower()
    if cleaned.startswith("0x"):
        digits, base = cleaned[2:], 16
        ok = re.fullmatch(r"[0-9a-f]+", digits)
    else:
        digits, base = cleaned, 10
        ok = re.fullmatch(r"[0-9]+", digits)
        if not ok and re.fullmatch(r"[0-9a-f]+", digits):
            raise BadKeyText(
                N_("{text} looks like hex: write hex numbers with a 0x prefix"), text=repr(text)
            )
    if not ok:
        raise BadKeyText(
            N_("{text} is not a number (expected 0x-prefixed hex or decimal)"), text=repr(text)
        )
    return int(digits, base)


@dataclass(frozen=True)
class PublicKey:
    """A public value in a named group: what you can show the world.

    Two ``PublicKey`` objects are equal when group and value are equal,
    however they were spelled in a file.
    """

    group: Group
    value: int

    def __post_init__(self) -> None:
        validate_public(self.group, self.value)

    @property
    def fingerprint(self) -> str:
        """``SHA256:`` + 43 base64 characters: the whole SHA-256 of group name and value."""
        return fingerprint_of(self.group, self.value)

    def to_text(self, comment: str = "") -> str:
        """The one-line text form: ``labcrypto-dh1 GROUP 0xHEX [comment]``."""
        line = f"{PUBLIC_TAG} {self.group.name} {self.value:#x}"
        return f"{line} {comment}".rstrip()

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """Parse the one-line text form (a trailing comment is ignored)."""
        words = text.split()
        if len(words) < 3 or words[0].lower() != PUBLIC_TAG:
            raise BadKeyText(
                N_("not a public key in labcrypto's format: expected {form}, got {got}"),
                form=repr(f"{PUBLIC_TAG} GROUP 0xHEX"),
                got=repr(text.strip()[:40]),
            )
        group = get_group(words[1])
        return cls(group, parse_number(words[2]))

    @classmethod
    def from_canonical_text(cls, text: str, group: Group) -> PublicKey:
        """Parse the one-line form, accepting only ``group`` and the one spelling of the value.

        What a server reads (the allowlist) and what a client trusts (known
        servers) take exactly what ``to_text`` writes: the tag, the group's
        name, ``0x`` and lowercase hex without leading zeros. A key of any
        other group is refused *before* the group is built (a ``safeBITS-SEED``
        name would cost a prime search on every reload), and another
        spelling of the value is refused with the spelling to write instead.
        """
        words = text.split()
        if len(words) < 3 or words[0] != PUBLIC_TAG:
            raise BadKeyText(
                N_("not a public key in labcrypto's format: expected {form}, got {got}"),
                form=repr(f"{PUBLIC_TAG} {group.name} 0xHEX"),
                got=repr(text.strip()[:40]),
            )
        if words[1] != group.name:
            raise BadKeyText(
                N_("a {got} key where only {group} keys are accepted (a toy or small-group key "
                   "would be a key anyone can break)"),
                got=repr(words[1][:20]),
                group=group.name,
            )
        value = parse_number(words[2])
        if words[2] != f"{value:#x}":
            raise BadKeyText(
                N_("the key is not written in its one spelling: write {value} (0x, lowercase "
                   "hex, no leading zeros), as in labcrypto's own files"),
                value=f"{value:#x}",
            )
        return cls(group, value)

    def __repr__(self) -> str:
        return f"PublicKey({self.group.name}, fingerprint={self.fingerprint})"


@dataclass(frozen=True)
class KeyPair:
    """A private exponent and its public value ``g^private mod p``.

    ``repr()`` never shows the private number, so printing a key pair in a
    notebook does not leak it.
    """

    group: Group
    private: int = field(repr=False)
    public: int

    @functools.cached_property
    def public_key(self) -> PublicKey:
        """The public half, safe to share (made, and validated, once per key pair)."""
        return PublicKey(self.group, self.public)

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the public half (see ``PublicKey.fingerprint``)."""
        return self.public_key.fingerprint

    def shared_secret(self, peer: PublicKey | int) -> int:
        """Diffie-Hellman: ``K = peer^private mod p``, after validating ``peer``.

        A ``PublicKey`` was validated when it was made; a bare ``int`` is
        validated here.
        """
        if isinstance(peer, PublicKey):
            if peer.group != self.group:
                raise InvalidPublicValue(
                    N_("the peer's key is in group {theirs}, ours in {ours}"),
                    theirs=peer.group.name,
                    ours=self.group.name,
                )
            value = peer.value
        else:
            value = validate_public(self.group, peer)
        return power(value, self.private, self.group)

    #: How many peers' static×static secrets a long-term key remembers (then it starts over).
    REMEMBERED_PEERS = 256

    @functools.cached_property
    def _static_secrets(self) -> dict[int, int]:
        return {}

    def static_shared_secret(self, peer: PublicKey) -> int:
        """``shared_secret(peer)`` for two *long-term* keys, remembered for next time.

        The static×static term (``ss`` of the handshake) is the same number
        in every handshake between the same two long-term keys, so a
        file server that sees a student's key on every request (and the
        student's client, which sees the server's) computes it once, not
        on every connection: one 2048-bit exponentiation fewer per side.

        Remembering it keeps nothing a thief could not get anyway: it is
        kept in this object only, never written anywhere, and whoever can
        read this object reads ``private`` beside it, from which every such
        secret follows. It is not a session key: each session's keys still
        need the fresh ephemeral terms (``ee``, ``es``, ``se``). Never use
        this for ephemeral keys (their secrets must be forgotten at once).
        At most ``REMEMBERED_PEERS`` peers are kept; then it starts over.
        """
        remembered = self._static_secrets
        secret = remembered.get(peer.value)
        if secret is None or peer.group != self.group:
            secret = self.shared_secret(peer)  # validates the group too
            if len(remembered) >= self.REMEMBERED_PEERS:
                remembered.clear()
            remembered[peer.value] = secret
        return secret

    def __repr__(self) -> str:
        return f"KeyPair({self.group.name}, fingerprint={self.fingerprint})"


def generate(group: Group = FFDHE2048, rng: RandomSource | None = None) -> KeyPair:
    """Make a fresh key pair with a secret exponent from ``secrets`` (never ``random``).

    ``rng`` replaces ``secrets`` only in tests that pin the random source.
    """
    source: RandomSource = rng if rng is not None else secrets
    while True:
        private = group.random_exponent(source.randbelow)
        public = power(group.g, private, group)
        if public not in (1, group.p - 1):  # only possible in tiny toy groups
            return KeyPair(group, private, public)


# --- files ---------------------------------------------------------------------

#: Set this environment variable to keep your keys somewhere else.
KEYS_ENV = "LABCRYPTO_KEYS"


def default_dir() -> Path:
    """Where your keys live: ``$LABCRYPTO_KEYS``, else ``~/.labcrypto/keys``.

    One folder per person, the same for every notebook and every command,
    wherever they run from. It sits outside any notebook or assignment
    folder on purpose: tools that copy a notebook's folder (nbgrader's
    submit and feedback, a zip for e-mail, ``git add .``) never see your
    private key, and the key you make in notebook 01 is the one 02–05 use.
    A missing folder is created with mode 0700 (only you can even list it).
    """
    configured = os.environ.get(KEYS_ENV, "").strip()
    folder = Path(configured).expanduser() if configured else Path.home() / ".labcrypto" / "keys"
    if not folder.is_dir():
        folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
    return folder



def key_paths(name: str, folder: str | os.PathLike[str] = "keys") -> tuple[Path, Path]:
    """The two files of key ``name``: ``(folder/NAME.key, folder/NAME.pub)``."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise BadKeyName(
            N_("key name {name} is not allowed: use Latin letters, digits, '_', '-' or '.', "
               "at most 64 characters, not starting with '.' or '-'"),
            name=repr(name[:70]) if isinstance(name, str) else type(name).__name__,
        )
    base = Path(folder)
    return base / f"{name}.key", base / f"{name}.pub"


def _private_text(name: str, pair: KeyPair) -> str:
    return (
        f'# labcrypto private key "{name}": keep it secret, never share or commit it.\n'
        f"# Its public half is in {name}.pub.\n"
        f"version: {_PRIVATE_VERSION}\n"
        f"group: {pair.group.name}\n"
        f"private: {pair.private:#x}\n"
        f"public: {pair.public:#x}\n"
    )


def _write_text(path: Path, text: str, mode: int, overwrite: bool) -> None:
    """Write ``text`` to ``path`` with permissions ``mode``, atomically.

    The data goes to a temporary file created with ``mode`` from the
    start (so a private key is never readable by others, not even for a
    moment), then is renamed into place. Without ``overwrite`` an existing
    file is never replaced.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have removed bits; set exactly what we asked
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with FileExistsError instead of replacing
            os.unlink(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save(
    pair: KeyPair, name: str, folder: str | os.PathLike[str] = "keys", *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write ``NAME.key`` (mode 0600) and ``NAME.pub``; return their paths.

    Refuses to replace existing files unless ``overwrite=True``: losing a
    private key that the server's allowlist knows locks you out.
    """
    key_path, pub_path = key_paths(name, folder)
    Path(folder).mkdir(parents=True, exist_ok=True)
    if not overwrite:
        for path in (key_path, pub_path):
            if path.exists():
                raise KeyFileError(
                    N_("{path} already exists; refusing to overwrite a key (pass overwrite=True, "
                       "or --force on the command line, if you mean it)"),
                    path=path,
                )
    try:
        _write_text(key_path, _private_text(name, pair), 0o600, overwrite)
        _write_text(pub_path, pair.public_key.to_text(name) + "\n", 0o644, overwrite)
    except FileExistsError as exc:
        raise KeyFileError(
            N_("{path} appeared while saving; refusing to overwrite"), path=exc.filename
        ) from exc
    return key_path, pub_path


def _check_private(path: Path, fd: int) -> None:
    """Refuse a private key file that others may read, as ssh does.

    A key that the group or everyone can read may already be copied: it
    proves nothing about who holds it. The message gives the fix.
    """
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        raise KeyFileError(
            N_("{path} is readable by others (permissions {mode}): a private key must be "
               "yours alone. Run: chmod 600 {path}"),
            path=path,
            mode=f"{mode:04o}",
        )


def _read_fields(path: Path) -> dict[str, str]:
    """Read ``field: value`` lines of a private key file (mode 0600 only), skipping
    blank lines and ``#`` comments."""
    try:
        with open(path, encoding="utf-8") as handle:
            _check_private(path, handle.fileno())
            text = handle.read()
    except FileNotFoundError as exc:
        raise KeyFileError(N_("{path}: no such key file"), path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(
            N_("{path}: cannot read the key file ({error})"), path=path, error=exc
        ) from exc
    fields: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise KeyFileError(
                N_("{path}, line {number}: expected 'field: value', got {got}"),
                path=path,
                number=number,
                got=repr(line[:40]),
            )
        fields[name.strip().lower()] = value.strip()
    return fields


def load_public(path: str | os.PathLike[str]) -> PublicKey:
    """Read a ``.pub`` file (the first line that is not blank or a ``#`` comment)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise KeyFileError(N_("{path}: no such public key file"), path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(
            N_("{path}: cannot read the public key file ({error})"), path=path, error=exc
        ) from exc
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                return PublicKey.from_text(line)
            except (ValueError, LabCryptoError) as exc:
                raise KeyFileError(N_("{path}: {error}"), path=path, error=exc) from exc
    raise KeyFileError(
        N_("{path}: the file is empty; expected {form}"),
        path=path,
        form=repr(f"{PUBLIC_TAG} GROUP 0xHEX"),
    )


def load(name: str, folder: str | os.PathLike[str] = "keys") -> KeyPair:
    """Read ``NAME.key`` (and check ``NAME.pub`` against it, if present).

    Every problem names the file: missing fields, numbers that do not
    parse, an unknown group, or a public value that does not match the
    private one (a truncated or hand-edited file, or two files mixed up).
    """
    key_path, pub_path = key_paths(name, folder)
    fields = _read_fields(key_path)
    missing = [f for f in ("version", "group", "private", "public") if f not in fields]
    if missing:
        raise KeyFileError(
            N_("{path}: missing field(s) {fields} (truncated file?)"),
            path=key_path,
            fields=", ".join(missing),
        )
    if fields["version"] != _PRIVATE_VERSION:
        raise KeyFileError(
            N_("{path}: unsupported key file version {version}"),
            path=key_path,
            version=repr(fields["version"]),
        )
    try:
        group = get_group(fields["group"])
        private = parse_number(fields["private"])
        public = parse_number(fields["public"])
    except (ValueError, LabCryptoError) as exc:
        raise KeyFileError(N_("{path}: {error}"), path=key_path, error=exc) from exc
    if not 1 < private < group.q:
        raise KeyFileError(
            N_("{path}: the private number is out of range for {group}"),
            path=key_path,
            group=group.name,
        )
    if power(group.g, private, group) != public:
        raise KeyFileError(
            N_("{path}: the public value does not match the private one (the file is corrupt "
               "or was edited by hand)"),
            path=key_path,
        )
    pair = KeyPair(group, private, public)
    if pub_path.exists() and load_public(pub_path) != pair.public_key:
        raise KeyFileError(
            N_("{pub_path} does not belong to {key_path} (different public value): the two "
               "files were mixed up"),
            pub_path=pub_path,
            key_path=key_path,
        )
    return pair


def load_or_create(
    name: str, folder: str | os.PathLike[str] = "keys", group: Group = FFDHE2048
) -> KeyPair:
    """Load key ``name`` if it exists, otherwise generate and save it (task 1).

    Run it twice and you get the same key: that is what lets the server's
    allowlist recognise you tomorrow. It never replaces an existing key:
    if only ``NAME.pub`` exists, or the key is in another group, it raises
    instead of guessing. A missing ``NAME.pub`` is rewritten from the key.
    """
    key_path, pub_path = key_paths(name, folder)
    if key_path.exists():
        pair = load(name, folder)
        if pair.group != group:
            raise KeyFileError(
                N_("{path} holds a {got} key, not {group}: choose another name, or delete the "
                   "old files if you mean to replace them"),
                path=key_path,
                got=pair.group.name,
                group=group.name,
            )
        if not pub_path.exists():
            _write_text(pub_path, pair.public_key.to_text(name) + "\n", 0o644, overwrite=False)
        return pair
    if pub_path.exists():
        raise KeyFileError(
            N_("{pub_path} exists but {key_path} does not: the private key is lost or "
               "elsewhere. Refusing to make a new key under the same name"),
            pub_path=pub_path,
            key_path=key_path,
        )
    pair = generate(group)
    save(pair, name, folder)
    return pair
