"""The text shell of ``labcrypto ftp``: one command line in, one text answer out.

``run_command(client, "put -f notes.txt")`` reads a line the way a shell
does (``shlex``: quotes keep spaces in names), checks the command and its
number of arguments against ``COMMANDS``, calls the ``FileClient`` method
and formats the result as text. Errors are raised, not printed: the CLI
shows them (and only the CLI prints).

Used by ``labcrypto ftp`` (``cli.py``), both for ``-c``/``COMMAND ARGS…``
and for the interactive shell.
"""

from __future__ import annotations

import shlex
import time

from ..jail import FileInfo, Listing
from .client import FileClient
from .wire import Progress

__all__ = ["ALIASES", "COMMANDS", "help_text", "run_command", "run_words"]

#: Every command of the shell: usage, what it does (``help`` shows both), and
#: how many arguments it takes (least, most), not counting ``-f``.
COMMANDS: dict[str, tuple[str, str, int, int]] = {
    "ls": ("ls [PATH]", "list a folder (default: the working folder)", 0, 1),
    "pwd": ("pwd", "show the working folder", 0, 0),
    "cd": ("cd PATH", "change the working folder", 1, 1),
    "mkdir": ("mkdir PATH", "make a folder", 1, 1),
    "rmdir": ("rmdir PATH", "remove an empty folder", 1, 1),
    "rm": ("rm PATH", "remove a file", 1, 1),
    "rename": ("rename [-f] OLD NEW", "rename or move (-f: replace NEW); also 'mv'", 2, 2),
    "cat": ("cat PATH", "show a small text file", 1, 1),
    "put": ("put [-f] LOCAL [REMOTE]", "upload a file (-f: replace REMOTE)", 1, 2),
    "get": ("get [-f] REMOTE [LOCAL]", "download a file (-f: replace LOCAL)", 1, 2),
    "help": ("help", "this list", 0, 0),
}

#: Other names students type for the same commands.
ALIASES = {"mv": "rename", "dir": "ls", "upload": "put", "download": "get"}


def help_text() -> str:
    """Every command with its usage, one a line (what ``help`` shows)."""
    width = max(len(usage) for usage, *_ in COMMANDS.values())
    return "\n".join(f"{usage:<{width}}  {text}" for usage, text, *_ in COMMANDS.values())


def _format_listing(entries: list[FileInfo]) -> str:
    lines = []
    for entry in entries:
        size = str(entry.size) if entry.kind == "file" else "-"
        suffix = {"dir": "/", "link": "@"}.get(entry.kind, "")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime))
        lines.append(f"{entry.kind:<5} {size:>12}  {when}  {entry.name}{suffix}")
    if isinstance(entries, Listing) and entries.truncated:
        lines.append(
            f"(cut: the folder has more entries than the server lists; these are the first "
            f"{len(entries)}. Make subfolders)"
        )
    return "\n".join(lines)


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def run_command(client: FileClient, line: str, progress: Progress | None = None) -> str:
    """Run one shell command line (``"ls /docs"``, ``"put -f a.txt"``) and return its text.

    Errors are raised (``FileServiceError`` and friends, ``ValueError`` for a
    usage mistake); the caller shows them. ``exit`` is the shell's business.
    """
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ValueError(f"cannot read that line: {exc}") from None
    return run_words(client, words, progress)


def run_words(client: FileClient, words: list[str], progress: Progress | None = None) -> str:
    """Run one command already split into words (``["put", "-f", "a.txt"]``)."""
    if not words:
        return ""
    command, rest = ALIASES.get(words[0], words[0]), words[1:]
    force = any(w in ("-f", "--force") for w in rest)
    args = [w for w in rest if w not in ("-f", "--force")]
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; the commands are:\n{help_text()}")
    usage, _, least, most = COMMANDS[command]
    if not least <= len(args) <= most:
        raise ValueError(f"usage: {usage}")
    if command == "help":
        return help_text()
    if command == "pwd":
        return client.pwd()
    if command == "ls":
        return _format_listing(client.ls(*args))
    if command == "cat":
        return client.cat(args[0])
    if command == "rename":
        return f"renamed to {client.rename(args[0], args[1], overwrite=force)}"
    if command in ("put", "get"):
        method = client.put if command == "put" else client.get
        done = method(*args, overwrite=force, progress=progress)
        arrow = (
            f"{done.local} -> {done.remote}"
            if command == "put"
            else f"{done.remote} -> {done.local}"
        )
        return (
            f"{arrow}: {_human(done.size)} in {done.seconds:.2f} s "
            f"({done.mb_per_s:.0f} MB/s), sha256 {done.sha256[:16]}..."
        )
    result = getattr(client, command)(args[0])
    return {"cd": "{}", "mkdir": "made {}", "rmdir": "removed {}", "rm": "removed {}"}[
        command
    ].format(result)
