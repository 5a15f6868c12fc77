"""The instructor's command line: ``labcrypto ...`` (or ``python -m labcrypto ...``).

Everything the notebooks do in cells, from a terminal, for running the lab
in front of a class::

    labcrypto keygen server                      # the server's key pair (task 1)
    labcrypto keygen alice                       # a student's key pair
    labcrypto allow add alice ~/.labcrypto/keys/alice.pub   # let alice in (task 3)
    labcrypto serve                              # the chat room, until Ctrl-C (tasks 2-4)
    labcrypto chat --key alice --message "hi"    # say hi, print what comes back, exit
    labcrypto ftp-serve                          # the encrypted file service (task 5)
    labcrypto ftp --key alice ls                 # one command, then exit
    labcrypto ftp --key alice -c "ls" -c "put notes.txt"

(``labcrypto keygen`` writes the key files into ``~/.labcrypto/keys``; in class,
each student hands in their ``NAME.pub`` and ``allow add`` takes it from wherever
the instructor saved it.)

Every command has ``--help`` with an example. This module is the only
place that turns the lab's errors into exit codes: a ``LabCryptoError``
(or a refused connection, a timeout, a bad argument value) prints
``error: <what went wrong and what to do>`` on stderr and exits with 1;
a command line argparse cannot read exits with 2; success is 0.

``serve`` prints ``listening on HOST:PORT`` as its first line (so scripts
and tests can use ``--port 0`` and read the real port), then logs joins,
leaves, refused keys and pool use on stderr until Ctrl-C (or SIGTERM),
which stops it cleanly with exit code 0.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

from . import keys
from .allowlist import Allowlist
from .chat import ChatClient, ChatMessage, ChatServer, ChatSettings
from .errors import LabCryptoError
from .ftp import FileClient, FileServer
from .ftp.shell import run_command, run_words
from .groups import GROUPS
from .handshake import MODES
from .i18n import N_, _, argparse_in_language, ngettext
from .known_servers import KnownServers
from .ports import PortPool
from .untrusted import quote, unsafe_characters

__all__ = ["build_parser", "main"]

#: Where key files go unless --keys-dir/--dir says otherwise: see ``keys.default_dir()``.
DEFAULT_KEYS_DIR = N_("$LABCRYPTO_KEYS, else ~/.labcrypto/keys")
DEFAULT_CHAT_PORT = 9090
DEFAULT_POOL = "9100-9199"
DEFAULT_FTP_PORT = 9091
#: How much ``ftp-serve`` lowers its own CPU priority (``os.nice``) unless ``--nice``
#: says otherwise. A chat line waits for the CPU while files move on the same
#: machine; a transfer hardly notices a few milliseconds. With the file service
#: at niceness 10 a class's chat round trip was 75-106 ms at p99 beside ten
#: students moving files, where it was 135-150 ms without (bench/classroom.py
#: --mixed --separate-services, a 2-core machine at load 26-40); each file client
#: then moved ~2.7 MB/s instead of 3.5-4, still its share.
DEFAULT_FTP_NICENESS = 10

log = logging.getLogger("labcrypto.cli")


class UsageError(LabCryptoError, ValueError):
    """An argument value the command cannot use (argparse could read it, but it is wrong)."""


# --- small helpers ---------------------------------------------------------------


def _out(text: str = "") -> None:
    """A line for stdout, flushed at once (a script may be waiting for it)."""
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _mode_of(pair: keys.KeyPair) -> str:
    """The mode a key pair belongs to (its group decides: toy23 → toy, ffdhe2048 → secure)."""
    for mode, group in MODES.items():
        if group == pair.group:
            return mode
    usable = _(" or ").join(
        _("{group} ({mode} mode)").format(group=g.name, mode=m) for m, g in MODES.items()
    )
    raise UsageError(
        _(
            "a {group} key cannot chat: the chat uses {usable}. "
            "Make one with: labcrypto keygen NAME --group ffdhe2048"
        ).format(group=pair.group.name, usable=usable)
    )


def _load_key(name: str, folder: str) -> keys.KeyPair:
    """Load key ``name``, or say how to make it."""
    key_path = keys.key_paths(name, folder)[0]
    if not key_path.exists():
        raise UsageError(
            _(
                "no key file {path}: make one with 'labcrypto keygen {name} --dir {folder}' "
                "and ask the instructor to put the .pub on the allowlist"
            ).format(path=key_path, name=name, folder=folder)
        )
    return keys.load(name, folder)


def _server_key_arg(value: str | None) -> Path | str | None:
    """``--server-key``: a ``.pub`` file (any name) or a whole ``SHA256:`` fingerprint."""
    if value is None:
        return None
    path = Path(value)
    if path.exists():
        return path
    try:
        return keys.parse_fingerprint(value)
    except ValueError:
        raise UsageError(
            _(
                "--server-key {value}: there is no such file, and it is not a whole "
                "fingerprint either (SHA256: and 43 characters, as printed by labcrypto serve)"
            ).format(value=quote(value, 80))
        ) from None


def _parse_pool(text: str) -> tuple[int, int] | None:
    """``"9100-9199"`` → (9100, 9199); ``"none"`` → one port only (no handoff)."""
    if text.strip().lower() in ("none", "off", "no", ""):
        return None
    first, sep, last = text.partition("-")
    try:
        low, high = int(first), int(last if sep else first)
    except ValueError:
        raise UsageError(
            _("--pool {value}: expected FIRST-LAST, e.g. 9100-9199, or none").format(
                value=repr(text)
            )
        ) from None
    if not 1 <= low <= high <= 65535:
        raise UsageError(
            _("--pool {value}: expected 1 <= FIRST <= LAST <= 65535").format(value=repr(text))
        )
    return low, high


def _allowlist_path(args: argparse.Namespace) -> Path:
    if args.allowlist is not None:
        return Path(args.allowlist)
    return Path(getattr(args, "keys_dir", None) or keys.default_dir()) / "allowlist.csv"


@contextlib.contextmanager
def _logging_to_stderr() -> Iterator[None]:
    """Show the servers' events (joins, leaves, refusals, pool use) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("labcrypto")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


class StopRequest:
    """Whether Ctrl-C or SIGTERM asked the server to stop: one plain attribute.

    A signal handler runs on the main thread between two bytecodes of whatever
    that thread was doing, so it must not take a lock the main thread might be
    holding at that moment. ``threading.Event.set()`` takes the lock that
    ``Event.wait()`` holds for a moment around each wait: a SIGTERM that
    arrived just then made the handler wait for a lock its own thread held,
    and ``ftp-serve`` hung for good (2 runs in 450 when stopped right after
    it started). Setting an attribute takes no lock.
    """

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[StopRequest]:
    """A stop request set by Ctrl-C (SIGINT) or SIGTERM; the old handlers come back after."""
    stop = StopRequest()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.requested = True  # nothing more: see StopRequest

    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals only reach the main thread
        return
    wanted = [signal.SIGINT, signal.SIGTERM]
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _wait_until_stopped(
    stop: StopRequest, is_running: Callable[[], bool], poll: float = 0.1
) -> None:
    """Block until a signal asks to stop (or the server stopped by itself).

    ``time.sleep`` is cut short by a signal and its handler runs at once, so
    the answer to Ctrl-C comes within ``poll`` seconds.
    """
    while not stop.requested and is_running():
        time.sleep(poll)


# --- keygen ----------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    """Write NAME.key and NAME.pub; refuse to overwrite without --force."""
    pair = keys.generate(GROUPS[args.group])
    key_path, pub_path = keys.save(pair, args.name, args.dir, overwrite=args.force)
    _out(
        _("wrote {path}  (private: keep it secret, never share or commit it)").format(path=key_path)
    )
    _out(_("wrote {path}  (public: give this file to the instructor)").format(path=pub_path))
    _out(
        _("fingerprint: {fingerprint}  ({group})").format(
            fingerprint=pair.fingerprint, group=pair.group.name
        )
    )
    return 0


# --- allow -----------------------------------------------------------------------


def cmd_allow_add(args: argparse.Namespace) -> int:
    """Add NAME with the key in PUBFILE. Already there, under that name with that key:
    nothing to do, and no error, so a loop over the class's .pub files can run again
    when a late student's file arrives."""
    allowlist = Allowlist(_allowlist_path(args))
    key = keys.load_public(args.pubfile)
    for entry in allowlist.entries():
        if entry.name == args.name and entry.key == key:
            _out(
                _("{name} is already on {path} with this key (line {line}): nothing to do").format(
                    name=entry.name, path=allowlist.path, line=entry.line
                )
            )
            return 0
    entry = allowlist.add(args.name, key, args.comment)
    _out(
        _("added {name} ({fingerprint}) to {path}, line {line}").format(
            name=entry.name, fingerprint=entry.key.fingerprint, path=allowlist.path, line=entry.line
        )
    )
    return 0


def cmd_allow_list(args: argparse.Namespace) -> int:
    allowlist = Allowlist(_allowlist_path(args))
    entries = allowlist.entries()
    for problem in allowlist.problems:
        _err(_("warning: {problem}").format(problem=problem))
    if not entries:
        _out(_("(nobody is on the allowlist {path} yet)").format(path=allowlist.path))
        return 0
    width = max(len(e.name) for e in entries)
    for entry in entries:
        comment = f"  {entry.comment}" if entry.comment else ""
        _out(f"{entry.name:<{width}}  {entry.key.fingerprint}  {entry.key.group.name}{comment}")
    return 0


def cmd_allow_remove(args: argparse.Namespace) -> int:
    allowlist = Allowlist(_allowlist_path(args))
    entry = allowlist.remove(args.name)
    shown = entry.key.fingerprint if entry is not None else _("an unusable row")
    _out(
        _("removed {name} ({what}) from {path}").format(
            name=args.name, what=shown, path=allowlist.path
        )
    )
    return 0


# --- serve -----------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the chat room until Ctrl-C or SIGTERM."""
    key_name = args.key or ("server-toy" if args.mode == "toy" else "server")
    pair = keys.load_or_create(key_name, args.keys_dir, MODES[args.mode])
    allowlist = None if args.no_allowlist else Allowlist(_allowlist_path(args), MODES[args.mode])
    pool_range = _parse_pool(args.pool)
    # hold=True: the pool keeps its ports bound from now on, so no other program on
    # the machine (a classmate's, on a hub) can take them all and shut the class out.
    pool = PortPool(*pool_range, host=args.host, hold=True) if pool_range else None
    server = ChatServer(
        pair,
        allowlist,
        mode=args.mode,
        pool=pool,
        host=args.host,
        port=args.port,
        idle_timeout=args.idle_timeout or None,
        max_sessions_per_key=args.max_sessions_per_key or None,
    )
    with _logging_to_stderr(), _stop_on_signals() as stop:
        try:
            server.start()
            _out(f"listening on {args.host}:{server.port}")  # for scripts: never translated
            _describe_server(pair, key_name, args, allowlist, pool_range)
            if sys.stdin is not None and sys.stdin.isatty():
                _start_operator_console(server)
            _wait_until_stopped(stop, lambda: server.running)
        finally:
            server.stop()
            if pool is not None:
                pool.close()
    _err(_("stopped"))
    return 0


def _describe_server(
    pair: keys.KeyPair,
    key_name: str,
    args: argparse.Namespace,
    allowlist: Allowlist | None,
    pool_range: tuple[int, int] | None,
) -> None:
    """The lines an instructor reads out or projects: fingerprint, mode, who is allowed."""
    _out(
        _("server key: {path}, fingerprint {fingerprint}").format(
            path=f"{args.keys_dir}/{key_name}.pub", fingerprint=pair.fingerprint
        )
    )
    if pool_range:
        ports = _("conversation ports {first}-{last}").format(
            first=pool_range[0], last=pool_range[1]
        )
    else:
        ports = _("one port")
    _out(_("mode: {mode}, {ports}").format(mode=args.mode, ports=ports))
    if args.idle_timeout:
        idle = _("after {seconds} s").format(seconds=f"{args.idle_timeout:g}")
    else:
        idle = _("never")
    sessions = args.max_sessions_per_key or _("no limit")
    _out(
        _("limits: a silent member is closed {idle}; conversations per key: {sessions}").format(
            idle=idle, sessions=sessions
        )
    )
    if allowlist is None:
        _err(_("warning: no allowlist: every key gets in (demo only)"))
        return
    for problem in allowlist.problems:
        _err(_("warning: {problem}").format(problem=problem))
    own = allowlist.name_of(pair.public_key)
    if own is not None:
        _err(
            _(
                "warning: the server's own key is on the allowlist as {quoted}: whoever holds "
                "the server's private key could join as a member; remove it with "
                "labcrypto allow remove {name}"
            ).format(quoted=repr(own), name=own)
        )
    count = len(allowlist)
    keys_text = ngettext("{count} key", "{count} keys", count).format(count=count)
    _out(_("allowlist: {path} ({keys})").format(path=allowlist.path, keys=keys_text))
    if not count:
        _err(_("warning: nobody is allowed yet: labcrypto allow add NAME NAME.pub"))


def _start_operator_console(server: ChatServer) -> None:
    """Lines typed on the server's terminal go to the room, tagged "server"."""

    def read_lines() -> None:
        for line in sys.stdin:  # ends at EOF (Ctrl-D); a daemon thread, gone at exit
            text = line.strip()
            if text:
                with contextlib.suppress(ValueError):
                    server.say(text)

    threading.Thread(target=read_lines, name="operator-console", daemon=True).start()


# --- chat ------------------------------------------------------------------------


def _format_line(message: ChatMessage) -> str:
    """``alice: hi`` for what people say, ``* bob joined`` for the server's notices.

    The server refuses control characters in lines, but this terminal does
    not rely on it: text that holds any is shown quoted and escaped.
    """
    if message.kind == "notice":
        return f"* {_shown(message.text)}"
    return f"{_shown(message.sender)}: {_shown(message.text)}"


def _shown(text: str) -> str:
    """``text`` as it is if a terminal would show it faithfully, else ``quote``d."""
    return quote(text, len(text)) if unsafe_characters(text) else text


def cmd_chat(args: argparse.Namespace) -> int:
    """Join the room; send --message lines (waiting for each echo), or chat interactively."""
    pair = _load_key(args.key, args.keys_dir)
    mode = _mode_of(pair)
    known = args.known_servers or Path(args.keys_dir) / "known_servers.csv"
    client = ChatClient.connect(
        args.host,
        args.port,
        pair,
        server_key=_server_key_arg(args.server_key),
        known_servers=known,
        mode=mode,
        timeout=args.timeout,
        on_message=None if args.message else lambda m: _out(_format_line(m)),
    )
    with client:
        if client.data_port:
            joined = _("joined {host}:{port} as {name}, data port {data_port}")
        else:
            joined = _("joined {host}:{port} as {name}")
        _err(
            joined.format(
                host=args.host, port=args.port, name=client.name, data_port=client.data_port
            )
        )
        _err(_("mode: {mode}").format(mode=mode))
        if client.new_server and client.server_key is not None:
            _say_first_visit(args.host, args.port, client.server_key, known)
        if mode == "toy":
            _err(_("toy mode is NOT secret (p = 23, a Caesar shift): anyone on the path reads it"))
        if args.message:
            for text in args.message:
                _send_and_wait_for_echo(client, text, args.timeout)
            return 0
        return _interactive_chat(client)


def _say_first_visit(host: str, port: int, server_key: keys.PublicKey, known: str | Path) -> None:
    """Trust on first use just wrote the server's key down: show it, as ssh does, so the
    person can compare it with the fingerprint the instructor published."""
    _err(
        _(
            "first visit to {host}:{port}: its key {fingerprint} is now trusted and kept in "
            "{path}. Compare it with the fingerprint your instructor published; "
            "--server-key pins it"
        ).format(host=host, port=port, fingerprint=server_key.fingerprint, path=known)
    )


def _send_and_wait_for_echo(client: ChatClient, text: str, timeout: float) -> None:
    """Send one line and print what arrives until our own line comes back (the receipt)."""
    client.send(text)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                _("the server did not send our message back within {seconds} s").format(
                    seconds=timeout
                )
            )
        try:
            message = client.recv(remaining)
        except TimeoutError:
            continue  # the deadline check above ends the wait
        _out(_format_line(message))
        if (message.kind, message.sender, message.text) == ("message", client.name, text):
            return


def _interactive_chat(client: ChatClient) -> int:
    """Read lines from the keyboard and send them; incoming lines are printed by the reader.

    Ends with 0 at Ctrl-D, ``/quit`` or Ctrl-C; with 1, saying why, as soon as the server
    ends the chat (stopped, or dropped us), without waiting for the next line typed.
    """
    _err(_("type a line and press Enter to send it; Ctrl-D or /quit to leave"))
    try:
        for line in _typed_lines(lambda: client.connected):
            text = line.strip()
            if text == "/quit":
                return 0
            if text:
                client.send(text)
    except KeyboardInterrupt:
        return 0
    reason = client.ended_because
    if reason is None:
        return 0  # Ctrl-D
    _err(_("error: {message}").format(message=reason))
    return 1


def _typed_lines(go_on: Callable[[], bool], poll: float = 0.2) -> Iterator[str]:
    """The lines of stdin as they are typed, until Ctrl-D or until ``go_on()`` is False.

    ``select`` waits for input at most ``poll`` seconds at a time, so the loop notices
    the end of a chat while nobody types; the bytes are read from the file descriptor
    (not through ``sys.stdin``'s buffer, which could hold a line ``select`` does not see).
    """
    fd = sys.stdin.fileno()
    pending = b""
    while go_on():
        ready, _, _ = select.select([fd], [], [], poll)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:  # Ctrl-D
            if pending:
                yield pending.decode("utf-8", "replace")
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace")


# --- ftp -------------------------------------------------------------------------


def cmd_ftp_serve(args: argparse.Namespace) -> int:
    """Run the encrypted file service until Ctrl-C or SIGTERM."""
    key_name = args.key or "server"
    pair = keys.load_or_create(key_name, args.keys_dir, MODES["secure"])
    allowlist = Allowlist(_allowlist_path(args))
    options = {} if args.max_upload is None else {"max_upload": args.max_upload}
    if args.keep_free is not None:
        if args.keep_free < 0:
            raise UsageError(_("--keep-free takes 0 or more bytes"))
        options["keep_free"] = args.keep_free
    if args.nice < 0:
        raise UsageError(_("--nice takes 0 or more: raising a priority needs root"))
    if args.nice and hasattr(os, "nice"):  # POSIX only
        os.nice(args.nice)  # the chat on this machine gets the CPU first
    server = FileServer(
        pair, allowlist, args.root, host=args.host, port=args.port, quota=args.quota, **options
    )
    with _logging_to_stderr(), _stop_on_signals() as stop:
        try:
            server.start()
            _out(f"listening on {args.host}:{server.port}")  # for scripts: never translated
            _out(
                _("server key: {path}, fingerprint {fingerprint}").format(
                    path=f"{args.keys_dir}/{key_name}.pub", fingerprint=pair.fingerprint
                )
            )
            _out(
                _("homes under {root}, one per allowlist name ({path})").format(
                    root=server.root, path=allowlist.path
                )
            )
            for problem in allowlist.problems:
                _err(_("warning: {problem}").format(problem=problem))
            _wait_until_stopped(stop, lambda: server.running)
        finally:
            server.stop()
    _err(_("stopped"))
    return 0


def cmd_ftp(args: argparse.Namespace) -> int:
    """Run ``COMMAND ARGS…`` once, or -c commands one by one (stop at the first error),
    or, with neither, an interactive shell."""
    if args.words and args.command:
        raise UsageError(_("give either COMMAND ARGS... or -c LINE, not both"))
    pair = _load_key(args.key, args.keys_dir)
    known = KnownServers(args.known_servers or Path(args.keys_dir) / "known_servers.csv")
    pinned = _server_key_arg(args.server_key)
    if isinstance(pinned, Path):
        server_key: keys.PublicKey | None = keys.load_public(pinned)
    elif pinned is not None:
        raise UsageError(_("ftp --server-key takes the server's .pub file"))
    else:
        server_key = known.get(args.host, args.port)  # trusted on an earlier visit
    client = FileClient(args.host, args.port, pair, server_key, timeout=args.timeout)
    if args.words:  # the words as the shell split them: no second round of quoting
        _run_ftp_words(client, args.words, known, args)
        return 0
    if args.command:
        for line in args.command:
            _run_ftp_line(client, line, known, args)
        return 0
    return _ftp_shell(client, known, args)


def _run_ftp_line(
    client: FileClient, line: str, known: KnownServers, args: argparse.Namespace
) -> None:
    """One shell line; the server's key is checked against (or added to) known servers."""
    _show_ftp_result(client, run_command(client, line), known, args)


def _run_ftp_words(
    client: FileClient, words: list[str], known: KnownServers, args: argparse.Namespace
) -> None:
    """One command given as words on the command line (``ftp --key alice put a.txt``)."""
    _show_ftp_result(client, run_words(client, words), known, args)


def _show_ftp_result(
    client: FileClient, text: str, known: KnownServers, args: argparse.Namespace
) -> None:
    """Check the server's key against (or add it to) known servers, then print ``text``."""
    if client.server_key is not None and known.check(args.host, args.port, client.server_key):
        _say_first_visit(args.host, args.port, client.server_key, known.path)
    if text:
        _out(text)


def _ftp_shell(client: FileClient, known: KnownServers, args: argparse.Namespace) -> int:
    """``ftp:/path> `` prompts until ``exit``, ``quit`` or Ctrl-D; errors do not end it.

    On a terminal, the arrow keys edit the line and walk the history of this
    session (the standard library's ``readline`` module, where the system has it).
    """
    if sys.stdin.isatty():
        with contextlib.suppress(ImportError):  # not on Windows; the shell works without it
            import readline  # noqa: F401  (importing it is what enables editing for input())
    _err(_("commands: ls pwd cd mkdir rmdir rm rename cat put get help; exit to leave"))
    while True:
        try:
            line = input(f"ftp:{client.cwd}> ")
        except (EOFError, KeyboardInterrupt):
            _err("")
            return 0
        if line.strip() in ("exit", "quit", "bye"):
            return 0
        try:
            _run_ftp_line(client, line, known, args)
        except (LabCryptoError, OSError, ValueError) as exc:
            _err(_("error: {message}").format(message=exc))


# --- the parser ------------------------------------------------------------------


def _command(
    subparsers: argparse._SubParsersAction,
    name: str,
    summary: str,
    example: str,
    handler: Callable[[argparse.Namespace], int] | None,
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=_("example:") + "\n" + example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def _add_keys_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys-dir",
        help=_("folder of the key files (default: {default})").format(default=_(DEFAULT_KEYS_DIR)),
    )


def _add_allowlist(
    parser: argparse.ArgumentParser, default_text: str, *, inherited: bool = False
) -> None:
    """``--allowlist CSV``. ``inherited``: also accepted after ``allow``'s action; SUPPRESS
    keeps the sub-parser from overwriting a value given before the action with its default."""
    parser.add_argument(
        "--allowlist",
        default=argparse.SUPPRESS if inherited else None,
        metavar="CSV",
        help=_("allowlist file (default: {default})").format(default=default_text),
    )


def _add_keygen(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "keygen",
        _("make a key pair: NAME.key (private, mode 0600) and NAME.pub (public)"),
        _(
            "  labcrypto keygen alice                 # ~/.labcrypto/keys/alice.key and .pub\n"
            "  labcrypto keygen server --dir keys\n"
            "  labcrypto keygen eve --group toy23     # for toy mode (p = 23)"
        ),
        cmd_keygen,
    )
    p.add_argument("name", help=_("the key's name (Latin letters, digits, _ - .)"))
    p.add_argument(
        "--dir", help=_("where to write (default: {default})").format(default=_(DEFAULT_KEYS_DIR))
    )
    p.add_argument(
        "--group", default="ffdhe2048", choices=sorted(GROUPS), help=_("default: ffdhe2048")
    )
    p.add_argument("--force", action="store_true", help=_("replace existing files of that name"))


def _add_allow(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "allow",
        _("edit the allowlist of client keys (a CSV file)"),
        "  labcrypto allow add alice class/alice.pub\n"
        "  labcrypto allow list\n"
        "  labcrypto allow remove alice",
        None,
    )
    _add_allowlist(p, _("allowlist.csv in the keys folder"))
    actions = p.add_subparsers(dest="action", metavar="{add,list,remove}", required=True)
    add = _command(
        actions,
        "add",
        _("put a public key on the allowlist under a name"),
        _("  labcrypto allow add alice class/alice.pub --comment 'group A'"),
        cmd_allow_add,
    )
    add.add_argument("name", help=_("the name the server will know this key by"))
    add.add_argument("pubfile", help=_("the student's .pub file"))
    add.add_argument("--comment", default="", help=_("a note for the third column"))
    _add_allowlist(add, _("allowlist.csv in the keys folder"), inherited=True)
    show = _command(
        actions, "list", _("show who is allowed"), "  labcrypto allow list", cmd_allow_list
    )
    _add_allowlist(show, _("allowlist.csv in the keys folder"), inherited=True)
    remove = _command(
        actions,
        "remove",
        _("take a name off the allowlist (their next connection is refused)"),
        "  labcrypto allow remove alice",
        cmd_allow_remove,
    )
    remove.add_argument("name", help=_("the name as 'labcrypto allow list' shows it"))
    _add_allowlist(remove, _("allowlist.csv in the keys folder"), inherited=True)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "serve",
        _("run the chat server until Ctrl-C (logs joins, leaves, refusals on stderr)"),
        _(
            "  labcrypto serve                          # 127.0.0.1:9090, ports 9100-9199\n"
            "  labcrypto serve --port 0 --pool none     # any free port, no second port\n"
            "  labcrypto serve --mode toy --no-allowlist  # notebook 03's insecure demo"
        ),
        cmd_serve,
    )
    p.add_argument(
        "--host", default="127.0.0.1", help=_("address to listen on (default: 127.0.0.1)")
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_CHAT_PORT,
        help=_("handshake port (0: any free port; default: {default})").format(
            default=DEFAULT_CHAT_PORT
        ),
    )
    p.add_argument(
        "--pool",
        default=DEFAULT_POOL,
        metavar="FIRST-LAST",
        help=_("conversation ports (task 4), or 'none' for one port (default: {default})").format(
            default=DEFAULT_POOL
        ),
    )
    p.add_argument(
        "--key", default=None, help=_("server key name (default: server; toy: server-toy)")
    )
    _add_keys_dir(p)
    _add_allowlist(p, "KEYS_DIR/allowlist.csv")
    p.add_argument("--no-allowlist", action="store_true", help=_("let every key in (demo only)"))
    p.add_argument("--mode", default="secure", choices=sorted(MODES), help=_("default: secure"))
    defaults = ChatSettings()
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=defaults.idle_timeout,
        metavar="SECONDS",
        help=_(
            "close a member silent this long, telling it why (0: never; default: {default})"
        ).format(default=f"{defaults.idle_timeout:.0f}"),
    )
    p.add_argument(
        "--max-sessions-per-key",
        type=int,
        default=defaults.max_sessions_per_key,
        metavar="N",
        help=_("conversations one key may hold at once (0: no limit; default: {default})").format(
            default=defaults.max_sessions_per_key
        ),
    )


def _add_chat(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "chat",
        _("join the chat room: interactive, or send --message lines and exit"),
        "  labcrypto chat --key alice\n"
        "  labcrypto chat --key alice --server-key server.pub --message hi --message bye",
        cmd_chat,
    )
    p.add_argument("--host", default="127.0.0.1", help=_("the server (default: 127.0.0.1)"))
    p.add_argument("--port", type=int, default=DEFAULT_CHAT_PORT, help=_("default: 9090"))
    p.add_argument("--key", required=True, metavar="NAME", help=_("your key (KEYS_DIR/NAME.key)"))
    _add_keys_dir(p)
    p.add_argument(
        "--server-key",
        metavar="FILE",
        help=_("pin the server: its .pub file or fingerprint (else trust on first use)"),
    )
    p.add_argument("--known-servers", metavar="CSV", help=_("default: KEYS_DIR/known_servers.csv"))
    p.add_argument(
        "--message",
        action="extend",
        nargs="+",
        metavar="TEXT",
        help=_("send each TEXT, print what comes back until it returns, then exit"),
    )
    p.add_argument("--timeout", type=float, default=5.0, help=_("seconds to wait (default: 5)"))


def _add_ftp(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        "ftp-serve",
        _("run the encrypted file service (fresh keys on every request) until Ctrl-C"),
        _("  labcrypto ftp-serve --root ftp-homes     # 127.0.0.1:9091, a home per allowed name"),
        cmd_ftp_serve,
    )
    p.add_argument(
        "--host", default="127.0.0.1", help=_("address to listen on (default: 127.0.0.1)")
    )
    p.add_argument("--port", type=int, default=DEFAULT_FTP_PORT, help=_("default: 9091 (0: any)"))
    p.add_argument(
        "--root", default="ftp-homes", help=_("folder of the homes (default: ftp-homes)")
    )
    p.add_argument("--key", default=None, help=_("server key name (default: server)"))
    _add_keys_dir(p)
    _add_allowlist(p, "KEYS_DIR/allowlist.csv")
    p.add_argument(
        "--quota", type=int, default=None, metavar="BYTES", help=_("per home (no limit)")
    )
    p.add_argument("--max-upload", type=int, default=None, metavar="BYTES", help=_("per file"))
    p.add_argument(
        "--keep-free",
        type=int,
        default=None,
        metavar="BYTES",
        help=_(
            "bytes of the disk that uploads leave free for everyone else "
            "(default: 5%% of the disk, at most 1 GiB; 0: no such limit)"
        ),
    )
    p.add_argument(
        "--nice",
        type=int,
        default=DEFAULT_FTP_NICENESS,
        metavar="N",
        help=_(
            "lower this process's CPU priority by N, so that a chat on the same machine "
            "stays quick while files move (default: 10; 0: keep it)"
        ),
    )

    c = _command(
        sub,
        "ftp",
        _("use the encrypted file service: one COMMAND, -c commands, or an interactive shell"),
        _(
            "  labcrypto ftp --key alice                       # shell: ls, cd, put, get, ...\n"
            "  labcrypto ftp --key alice ls docs               # one command, then exit\n"
            "  labcrypto ftp --key alice put -f notes.txt docs/notes.txt\n"
            "  labcrypto ftp --key alice -c 'mkdir docs' -c 'put notes.txt docs/notes.txt'"
        ),
        cmd_ftp,
    )
    c.add_argument("--host", default="127.0.0.1", help=_("the server (default: 127.0.0.1)"))
    c.add_argument("--port", type=int, default=DEFAULT_FTP_PORT, help=_("default: 9091"))
    c.add_argument("--key", required=True, metavar="NAME", help=_("your key (KEYS_DIR/NAME.key)"))
    _add_keys_dir(c)
    c.add_argument("--server-key", metavar="FILE", help=_("pin the server's .pub file"))
    c.add_argument("--known-servers", metavar="CSV", help=_("default: KEYS_DIR/known_servers.csv"))
    c.add_argument(
        "-c", "--command", action="append", metavar="LINE", help=_("run LINE; repeatable")
    )
    c.add_argument("--timeout", type=float, default=10.0, help=_("seconds (default: 10)"))
    # REMAINDER: everything after the command word belongs to it, "-f" included
    # (options of ftp itself go before the command, as with ssh or sftp).
    c.add_argument(
        "words",
        nargs=argparse.REMAINDER,
        metavar="COMMAND ARGS",
        help=_("run this one command and exit (ls, put -f LOCAL, ...; 'help' lists them)"),
    )


_OVERVIEW = N_("""\
a class in five commands (here on one machine, in one account):
  labcrypto keygen server                                # the server's key pair (task 1)
  labcrypto keygen alice                                 # a student's key pair
  labcrypto allow add alice ~/.labcrypto/keys/alice.pub  # let alice in (task 3)
  labcrypto serve                                        # the chat room, until Ctrl-C
  labcrypto chat --key alice --message hi                # in a second terminal: say hi

'labcrypto COMMAND --help' shows each command's options and an example.""")


def build_parser() -> argparse.ArgumentParser:
    """The ``labcrypto`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="labcrypto",
        description=_("Key exchange and secure channels: the lab's command line."),
        epilog=_(_OVERVIEW),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    _add_keygen(sub)
    _add_allow(sub)
    _add_serve(sub)
    _add_chat(sub)
    _add_ftp(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (0 ok, 1 error, 2 bad command line)."""
    with argparse_in_language():  # argparse's own words ("usage:", its errors) too
        args = build_parser().parse_args(argv)
    try:
        for folder in ("keys_dir", "dir"):  # one keys folder per person, made on first use
            if getattr(args, folder, "") is None:
                setattr(args, folder, str(keys.default_dir()))
        return args.handler(args)
    except (LabCryptoError, OSError, ValueError) as exc:
        _err(_("error: {message}").format(message=exc))
        return 1
    except KeyboardInterrupt:
        _err(_("interrupted"))
        return 130
