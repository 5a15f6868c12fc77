"""The ftp shell (``labcrypto ftp``) answers in the user's language.

Command names, usages and file names stay as typed; what the shell says
about them (``help``, errors, what a command did) is Russian when Russian is
chosen, English otherwise. A stand-in client answers like ``FileClient``:
the shell's words are the subject here, the service has its own tests.
"""

from __future__ import annotations

import pytest

from labcrypto import i18n
from labcrypto.ftp import shell
from labcrypto.ftp.client import Transfer


class StandInClient:
    """Answers as ``FileClient`` does, without a server."""

    def mkdir(self, path: str) -> str:
        return "/" + path

    def rm(self, path: str) -> str:
        return "/" + path

    def rename(self, old: str, new: str, *, overwrite: bool = False) -> str:
        return "/" + new

    def put(self, local: str, remote: str | None = None, **_options: object) -> Transfer:
        return Transfer(remote="/" + (remote or local), local=local, size=2_500_000,
                        seconds=0.5, session="s")  # fmt: skip


@pytest.fixture
def language(monkeypatch: pytest.MonkeyPatch):
    for var in (i18n.ENV_VAR, *i18n.LOCALE_VARS):
        monkeypatch.delenv(var, raising=False)
    return i18n.set_language


def test_help_lists_the_same_commands_in_russian(language) -> None:
    language("en")
    english = shell.run_command(StandInClient(), "help").splitlines()
    language("ru")
    russian = shell.run_command(StandInClient(), "help").splitlines()
    assert len(russian) == len(english) == len(shell.COMMANDS)
    for en, ru in zip(english, russian, strict=True):
        usage = en.split("  ")[0]
        assert ru.startswith(usage), "command names and usages stay as typed"
        assert ru != en
    assert any("рабочую папку" in line for line in russian)
    assert "show the working folder" in "\n".join(english)


def test_mistakes_are_explained_in_russian(language) -> None:
    language("ru")
    with pytest.raises(ValueError, match=r"^неизвестная команда 'chmod'; есть такие команды:"):
        shell.run_command(StandInClient(), "chmod 600 notes.txt")
    with pytest.raises(ValueError, match=r"^использование: mkdir PATH$"):
        shell.run_command(StandInClient(), "mkdir")
    with pytest.raises(ValueError, match=r"^не удалось разобрать строку: "):
        shell.run_command(StandInClient(), 'put "notes.txt')
    language("en")
    with pytest.raises(ValueError, match=r"^usage: mkdir PATH$"):
        shell.run_command(StandInClient(), "mkdir")


def test_what_a_command_did_is_said_in_russian(language, tmp_path) -> None:
    client = StandInClient()
    local = tmp_path / "отчёт.txt"
    local.write_bytes(b"x")
    language("ru")
    assert shell.run_command(client, "mkdir docs") == "создана папка /docs"
    assert shell.run_command(client, "rm docs/a.txt") == "удалено: /docs/a.txt"
    assert shell.run_command(client, "mv a.txt b.txt") == "переименовано в /b.txt"
    done = shell.run_command(client, f"put '{local}' docs/отчёт.txt")
    assert done.startswith(f"{local} -> /docs/отчёт.txt: 2.5 МБ за 0.50 с (5 МБ/с), sha256 ")
    language("en")
    assert shell.run_command(client, "mkdir docs") == "made /docs"
    done = shell.run_command(client, f"put '{local}' docs/отчёт.txt")
    assert done.startswith(f"{local} -> /docs/отчёт.txt: 2.5 MB in 0.50 s (5 MB/s), sha256 ")
