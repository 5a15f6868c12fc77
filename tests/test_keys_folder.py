"""One keys folder per person: ``keys.default_dir()``, and the CLI that follows it.

The conftest gives every test its own ``$LABCRYPTO_KEYS``; these tests also
check the folder used without it (``~/.labcrypto/keys``, with ``HOME``
pointed at a temporary folder), and that nbgrader's settings skip key files.
"""

from __future__ import annotations

import fnmatch
import runpy
import stat
from pathlib import Path

import pytest

from labcrypto import keys
from labcrypto.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_the_variable_names_the_folder_and_it_is_made_private(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "deep" / "mine"
    monkeypatch.setenv(keys.KEYS_ENV, str(folder))
    assert keys.default_dir() == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700


def test_without_the_variable_it_is_in_the_home_outside_any_project(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(keys.KEYS_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    folder = keys.default_dir()
    assert folder == tmp_path / ".labcrypto" / "keys"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / ".labcrypto").stat().st_mode) == 0o700


def test_an_existing_folder_is_used_as_it_is(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "shared-by-choice"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    monkeypatch.setenv(keys.KEYS_ENV, str(folder))
    assert keys.default_dir() == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # the owner's choice, not ours


def test_every_working_folder_gets_the_same_keys(tmp_path, monkeypatch) -> None:
    """Notebook 01 in one folder, 02b in another (nbgrader's exchange): one key."""
    made = []
    for assignment in ("01_keys", "02b_chat"):
        work = tmp_path / assignment
        work.mkdir()
        monkeypatch.chdir(work)
        made.append(keys.load_or_create("alice", keys.default_dir()))
        assert not (work / "keys").exists()
    assert made[0] == made[1]


def test_the_cli_writes_and_reads_the_same_folder(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(keys.KEYS_ENV, str(tmp_path / "mine"))
    monkeypatch.chdir(tmp_path)
    assert main(["keygen", "bob"]) == 0
    out = capsys.readouterr().out
    folder = keys.default_dir()
    assert (folder / "bob.key").exists() and str(folder / "bob.key") in out
    assert not (tmp_path / "keys").exists()
    assert main(["allow", "add", "bob", str(folder / "bob.pub")]) == 0
    assert (folder / "allowlist.csv").exists()
    assert main(["keygen", "eve", "--dir", "elsewhere"]) == 0  # an explicit folder still wins
    assert (tmp_path / "elsewhere" / "eve.key").exists()


@pytest.mark.parametrize(
    "config",
    [REPO / "hub" / "nbgrader_config.py", "release"],
    ids=["hub/nbgrader_config.py", "tools/release.py course config"],
)
def test_nbgrader_skips_key_files(config, tmp_path) -> None:
    """Both nbgrader settings the lab ships ignore ``*.key`` and a ``keys`` folder."""
    from traitlets.config import Config

    if config == "release":
        release = runpy.run_path(str(REPO / "tools" / "release.py"))
        release["write_course"](tmp_path / "course")
        config = tmp_path / "course" / "nbgrader_config.py"
    loaded = Config()
    runpy.run_path(str(config), init_globals={"get_config": lambda: loaded})
    ignore = loaded.CourseDirectory.ignore
    for name in ("alice.key", "keys", "__pycache__", ".ipynb_checkpoints"):
        assert any(fnmatch.fnmatch(name, pattern) for pattern in ignore), (name, ignore)
    assert not any(fnmatch.fnmatch("alice.pub", pattern) for pattern in ignore)
