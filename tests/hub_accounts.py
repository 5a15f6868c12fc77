"""Throwaway Unix accounts for the hub tests: one real account per student.

Privacy between students can only be tested between real accounts: a test
run as one Unix user can read everything it wrote. As root, ``Accounts``
makes one account per student (``useradd``), each with a home of its own,
mode 0700, under the run's work folder, and removes them all at the end.

Every account of a run is named ``PREFIX<run>-<role>`` (``lchub1a2b-s01``)
and carries the PID of the test process that made it in its comment field
(``labcrypto hub test, pid 1234``). A run that was killed (``kill -9``, a
CI timeout) cannot clean up after itself, so every new run first sweeps:
each account with the prefix whose test process is gone loses its
processes (found by uid, ended by PID), its account and its work folder.
The same goes for the run's root-owned processes (its hub and proxy): every
process a run starts carries ``LABCRYPTO_HUB_OWNER=<pid of the test>`` in
its environment, and the sweep ends those whose test is gone, by PID.
Accounts and processes of a run still alive (a second test session on the
same machine) are left alone.

Nothing here runs without root: ``require_root()`` says why and the tests skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "OWNER_VAR",
    "PREFIX",
    "Accounts",
    "processes_of",
    "require_root",
    "sweep_leftovers",
    "work_folder",
]

#: Every throwaway account's name starts with this (and no real user's should).
PREFIX = "lchub"
_COMMENT = "labcrypto hub test, pid {pid}"
_COMMENT_RE = re.compile(r"^labcrypto hub test, pid (\d+)$")
#: In the environment of every process a run starts: the PID of the test that owns it.
OWNER_VAR = "LABCRYPTO_HUB_OWNER"
#: Work folders of runs live in /tmp (every account can traverse it) under this name.
_WORK_PREFIX = "lchub-"


def require_root() -> str | None:
    """None when we can make accounts; otherwise the reason the real-account tests skip."""
    if os.geteuid() != 0:
        return (
            "the real-account hub tests need root (useradd, a hub that spawns each "
            "student's server as that student); run them as root, as CI does"
        )
    for tool in ("useradd", "userdel"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is missing: cannot make throwaway student accounts"
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def processes_of(uid: int) -> list[int]:
    """PIDs of the live processes whose real uid is ``uid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("Uid:"):
                    if int(line.split()[1]) == uid:
                        found.append(int(entry.name))
                    break
    return found


def _end_processes(uid: int, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process of ``uid`` (a throwaway account), by PID; what was found."""
    found = processes_of(uid)
    deadline = time.monotonic() + timeout
    while True:
        left = processes_of(uid)
        if not left or time.monotonic() > deadline:
            return found
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _remove_account(name: str) -> None:
    """End the account's processes, delete the account, its group and its home."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    _end_processes(entry.pw_uid)
    subprocess.run([_tool("userdel"), name], capture_output=True, timeout=60, check=False)
    home = Path(entry.pw_dir)
    if home.name == name and home.name.startswith(PREFIX):  # only a home we made
        shutil.rmtree(home, ignore_errors=True)
    with contextlib.suppress(KeyError):
        pwd.getpwnam(name)
        raise RuntimeError(f"userdel {name} failed: the account is still there")


def _orphans() -> list[int]:
    """PIDs of processes started by a run whose test process is gone (``OWNER_VAR``)."""
    prefix = f"{OWNER_VAR}=".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(prefix):
                owner = item[len(prefix) :].decode(errors="replace")
                if owner.isdigit() and not _alive(int(owner)):
                    found.append(int(entry.name))
                break
    return found


def sweep_leftovers() -> list[str]:
    """Remove what killed earlier runs left: processes, accounts and work folders."""
    removed = []
    for pid in _orphans():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            removed.append(f"process {pid}")
    for entry in pwd.getpwall():
        match = _COMMENT_RE.match(entry.pw_gecos)
        if entry.pw_name.startswith(PREFIX) and match and not _alive(int(match[1])):
            _remove_account(entry.pw_name)
            removed.append(entry.pw_name)
    for folder in Path(tempfile.gettempdir()).glob(f"{_WORK_PREFIX}*"):
        owner = folder.name[len(_WORK_PREFIX) :].split("-")[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def work_folder() -> Path:
    """A fresh folder for one run, in /tmp, that every account may traverse (not list)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}{os.getpid()}-"))
    folder.chmod(0o711)
    return folder


@dataclass
class Accounts:
    """The throwaway accounts of one run; ``remove_all()`` (always) at the end.

    Homes are ``/tmp/NAME`` by default: short like ``/home/NAME``, because a
    kernel's ipc sockets live in ``~/.local/share/jupyter/runtime`` and a Unix
    socket's path holds at most 107 bytes (hub/jupyter_server_config.py).
    """

    homes: Path = Path(tempfile.gettempdir())
    run: str = field(default_factory=lambda: secrets.token_hex(2))
    names: list[str] = field(default_factory=list)
    owner: int = field(default_factory=os.getpid)  # the test process, in each comment

    def name(self, role: str) -> str:
        """The account name for a role (``s01``, ``teacher``): prefix, run id, role."""
        return f"{PREFIX}{self.run}-{role}"

    def create(self, role: str) -> str:
        """Make the account and its home (mode 0700, owned by it); return its name."""
        name = self.name(role)
        home = self.homes / name
        self.names.append(name)  # before useradd: a half-made account is removed too
        done = subprocess.run(
            [
                _tool("useradd"),
                "--no-create-home",
                "--home-dir", str(home),
                "--shell", "/bin/sh",
                "--user-group",
                "--comment", _COMMENT.format(pid=self.owner),
                name,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"useradd {name} failed: {done.stderr.strip()}")
        entry = pwd.getpwnam(name)
        home.mkdir(mode=0o700, parents=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        home.chmod(0o700)
        return name

    def uid(self, name: str) -> int:
        return pwd.getpwnam(name).pw_uid

    def gid(self, name: str) -> int:
        return pwd.getpwnam(name).pw_gid

    def home(self, name: str) -> Path:
        return Path(pwd.getpwnam(name).pw_dir)

    def remove_all(self) -> list[int]:
        """End every process of every account, delete the accounts; the PIDs ended."""
        ended: list[int] = []
        for name in self.names:
            with contextlib.suppress(KeyError):
                ended += _end_processes(pwd.getpwnam(name).pw_uid)
        for name in self.names:
            _remove_account(name)
        return ended
