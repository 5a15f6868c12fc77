"""The text shell of ``labcrypto ftp``: one command line in, one text answer out.

``run_command(client, "put -f notes.txt")`` reads a line the way a shell
does (``shlex``: quotes keep spaces in names), checks the command and its
number of arguments against ``COMMANDS``, calls the ``FileClient`` method
and formats the result as text. Errors are raised, not printed: the CLI
shows them (and only the CLI prints).

Used by ``labcrypto ftp`` (``cli.py``), both for ``-c``/``COMMAND ARGS…``
and for the interactive shell. What it says is in the user's language
(``labcrypto.i18n``); command names, usages and file names stay as typed.
"""

from __future__ import annotations

import shlex

from ..errors import FileServiceError
from ..i18n import N_, _
from ..jail import REFUSALS, FileInfo, Listing
from ..untrusted import quote, unsafe_characters
from .client import LOCAL_FILE_EXISTS, FileClient
from .wire import Progress

__all__ = ["ALIASES", "COMMANDS", "help_text", "run_command", "run_words"]

#: Every command of the shell: usage, what it does (``help`` shows both), and
#: how many arguments it takes (least, most), not counting ``-f``. The
#: descriptions are marked ``N_`` and translated when ``help`` shows them.
COMMANDS: dict[str, tuple[str, str, int, int]] = {
    "ls": ("ls [PATH]", N_("list a folder (default: the working folder)"), 0, 1),
    "pwd": ("pwd", N_("show the working folder"), 0, 0),
    "cd": ("cd PATH", N_("change the working folder"), 1, 1),
    "mkdir": ("mkdir PATH", N_("make a folder"), 1, 1),
    "rmdir": ("rmdir PATH", N_("remove an empty folder"), 1, 1),
    "rm": ("rm PATH", N_("remove a file"), 1, 1),
    "rename": ("rename [-f] OLD NEW", N_("rename or move (-f: replace NEW); also 'mv'"), 2, 2),
    "cat": ("cat PATH", N_("show a small text file"), 1, 1),
    "put": ("put [-f] LOCAL [REMOTE]", N_("upload a file (-f: replace REMOTE)"), 1, 2),
    "get": ("get [-f] REMOTE [LOCAL]", N_("download a file (-f: replace LOCAL)"), 1, 2),
    "help": ("help", N_("this list"), 0, 0),
}

#: "Already exists" as the library says it (naming its ``overwrite=True`` argument) →
#: as this shell says it: here the answer is ``-f``.
_EXISTS_USE_F = {
    REFUSALS["exists, rename"]: N_(
        "{path} already exists: choose another name, or add -f to replace it"
    ),
    LOCAL_FILE_EXISTS: N_(
        "{path} already exists here: choose another name, or add -f to replace it"
    ),
}

#: Other names students type for the same commands.
ALIASES = {"mv": "rename", "dir": "ls", "upload": "put", "download": "get"}


def help_text() -> str:
    """Every command with its usage, one a line (what ``help`` shows)."""
    width = max(len(usage) for usage, *_rest in COMMANDS.values())
    return "\n".join(f"{usage:<{width}}  {_(text)}" for usage, text, *_rest in COMMANDS.values())


def _format_listing(entries: list[FileInfo]) -> str:
    """The listing as ``ls -l`` lines; a name or kind a terminal would act on is quoted.

    The server chose every word of it. Ours never stores such a name, but a
    file put into a home by other means, or another server, could send
    ``ESC[2J`` as a name, and the terminal would clear itself.
    """
    lines = []
    for entry in entries:
        size = str(entry.size) if entry.kind == "file" else "-"
        suffix = {"dir": "/", "link": "@"}.get(entry.kind, "")
        kind, name = _terminal_safe(entry.kind), _terminal_safe(entry.name)
        lines.append(f"{kind:<5} {size:>12}  {entry.when}  {name}{suffix}")
    if isinstance(entries, Listing) and entries.truncated:
        lines.append(
            _(
                "(cut: the folder has more entries than the server lists; these are the "
                "first {count}. Make subfolders)"
            ).format(count=len(entries))
        )
    return "\n".join(lines)


def _terminal_safe(text: str) -> str:
    """``text`` as it is if a terminal shows it faithfully, else ``quote``d whole."""
    return quote(text, len(text)) if unsafe_characters(text) else text


#: Sizes in decimal units, smallest first (``_human`` picks one).
_SIZE_UNITS = (N_("{size} B"), N_("{size} KB"), N_("{size} MB"), N_("{size} GB"))


def _human(size: float) -> str:
    for unit in _SIZE_UNITS[:-1]:
        if size < 1000:
            shown = f"{size:.0f}" if unit == _SIZE_UNITS[0] else f"{size:.1f}"
            return _(unit).format(size=shown)
        size /= 1000
    return _(_SIZE_UNITS[-1]).format(size=f"{size:.1f}")


#: What the simple commands answer (``cd`` answers with the new working folder).
_DONE = {"cd": "{path}", "mkdir": N_("made {path}"), "rmdir": N_("removed {path}"),
         "rm": N_("removed {path}")}  # fmt: skip


def run_command(client: FileClient, line: str, progress: Progress | None = None) -> str:
    """Run one shell command line (``"ls /docs"``, ``"put -f a.txt"``) and return its text.

    Errors are raised (``FileServiceError`` and friends, ``ValueError`` for a
    usage mistake); the caller shows them. ``exit`` is the shell's business.
    """
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ValueError(_("cannot read that line: {error}").format(error=exc)) from None
    return run_words(client, words, progress)


def run_words(client: FileClient, words: list[str], progress: Progress | None = None) -> str:
    """Run one command already split into words (``["put", "-f", "a.txt"]``)."""
    if not words:
        return ""
    command, rest = ALIASES.get(words[0], words[0]), words[1:]
    force = any(w in ("-f", "--force") for w in rest)
    args = [w for w in rest if w not in ("-f", "--force")]
    if command not in COMMANDS:
        raise ValueError(
            _("unknown command {command}; the commands are:\n{commands}").format(
                command=repr(command), commands=help_text()
            )
        )
    usage, _text, least, most = COMMANDS[command]
    if not least <= len(args) <= most:
        raise ValueError(_("usage: {usage}").format(usage=usage))
    if command == "help":
        return help_text()
    if command == "pwd":
        return client.pwd()
    if command == "ls":
        return _format_listing(client.ls(*args))
    if command == "cat":
        return client.cat(args[0])
    if command in ("rename", "put", "get"):
        try:
            return _replace(client, command, args, force, progress)
        except FileServiceError as exc:
            if exc.template not in _EXISTS_USE_F:
                raise
            raise type(exc)(_EXISTS_USE_F[exc.template], **exc.fields) from None
    result = getattr(client, command)(args[0])
    return _(_DONE[command]).format(path=result)


def _replace(
    client: FileClient, command: str, args: list[str], force: bool, progress: Progress | None
) -> str:
    """``rename``, ``put`` or ``get``: the commands that ``-f`` lets replace a file."""
    if command == "rename":
        return _("renamed to {path}").format(path=client.rename(args[0], args[1], overwrite=force))
    method = client.put if command == "put" else client.get
    done = method(*args, overwrite=force, progress=progress)
    source, target = (done.local, done.remote) if command == "put" else (done.remote, done.local)
    arrow = f"{source} -> {target}"
    return _("{arrow}: {size} in {seconds} s ({speed} MB/s), sha256 {digest}...").format(
        arrow=arrow,
        size=_human(done.size),
        seconds=f"{done.seconds:.2f}",
        speed=f"{done.mb_per_s:.0f}",
        digest=done.sha256[:16],
    )
