"""A class on a hub with real Unix accounts: what tests/test_hub.py and bench/hub_class.py share.

``open_campus(n)`` (as root) sweeps what a killed earlier run left, makes a
work folder in /tmp, a teacher, ``n`` students and an outsider (real
accounts, homes 0700: ``hub_accounts``), builds an environment every
account can execute (``hub_env``), and starts a hub (``hub_lab``) that
loads the lab's shipped settings (``hub/``) and spawns every server as its
own student with ``LocalProcessSpawner``. It yields a ``Campus`` and, on
the way out — a failure, Ctrl-C, SIGTERM, or the interpreter exiting — stops the
hub, ends every process of every account by PID and removes the accounts
and the work folder.

``run_notebook`` runs a notebook cell by cell in a user's kernel, as a
student pressing Shift-Enter does, and can save the outputs back.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from hub_accounts import Accounts, require_root, sweep_leftovers, work_folder
from hub_env import SharedEnv, build_shared_env
from hub_lab import (
    SHIPPED_CONFIG,
    CellResult,
    Hub,
    UserServer,
    find_proxy,
    marked_processes,
    process_env,
    rss_bytes,
    write_kernelspec,
)

__all__ = [
    "CLASS_SERVER",
    "Campus",
    "CampusUnavailable",
    "explained",
    "make_keys",
    "open_campus",
    "python_code",
    "run_notebook",
    "user_rss",
]

KEYGEN = """
import json, os
from pathlib import Path
from labcrypto import keys
folder = keys.default_dir()
pair = keys.load_or_create({name}, folder)
print(json.dumps({{"home": str(Path.home()), "cwd": os.getcwd(), "folder": str(folder),
                   "fingerprint": pair.fingerprint}}))
"""


class CampusUnavailable(RuntimeError):
    """This machine cannot run a hub with real accounts (the message says why)."""


def python_code(template: str, **values: Any) -> str:
    """Code for a kernel: ``template`` with each ``{name}`` replaced by ``repr(value)``."""
    return template.format(**{name: repr(value) for name, value in values.items()})


@dataclass
class Campus:
    """One hub with real accounts: the teacher, the students and an outsider."""

    hub: Hub
    accounts: Accounts
    env: SharedEnv
    work: Path
    exchange: Path
    teacher: str
    outsider: str
    students: list[str]
    figures: dict[str, Any] = field(default_factory=dict)
    made_keys: dict[str, str] = field(default_factory=dict)  # user → fingerprint

    @property
    def users(self) -> list[str]:
        return [self.teacher, *self.students, self.outsider]

    def server(self, name: str) -> UserServer:
        return self.hub.user_server(name)

    def home(self, name: str) -> Path:
        return self.accounts.home(name)

    def key_folder(self, name: str) -> Path:
        """Where the lab keeps ``name``'s keys (``labcrypto.keys.default_dir`` in their server)."""
        return self.home(name) / ".labcrypto" / "keys"

    def in_kernel(self, name: str, code: str, timeout: float = 90.0) -> Any:
        """Run ``code`` in a fresh kernel of ``name``'s server; its last JSON line."""
        kernel = self.server(name).kernel(timeout=timeout)
        try:
            return kernel.run_json(code, timeout)
        finally:
            kernel.close()


def _readable_config(work: Path) -> Path:
    """The shipped server and nbgrader settings, copied where every account can read them."""
    folder = work / "jupyter-config"
    folder.mkdir()
    for name in ("jupyter_server_config.py", "nbgrader_config.py"):
        shutil.copyfile(SHIPPED_CONFIG / name, folder / name)
        (folder / name).chmod(0o644)
    folder.chmod(0o755)
    return folder


def _open_tree(folder: Path) -> Path:
    """Make a folder we wrote readable by every account (folders 0755, files 0644)."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


@contextlib.contextmanager
def explained(hub: Hub) -> Iterator[None]:
    """On any failure, print the hub's log: a failed spawn is only a bare 500 otherwise."""
    try:
        yield
    except BaseException:
        print(hub.log_tail(200))
        raise


@contextlib.contextmanager
def open_campus(
    students: int, hub_start_limit: float = 90, spawn_limit: float = 240, stop_limit: float = 60
) -> Iterator[Campus]:
    """A running hub with ``students`` real student accounts; everything removed after.

    Raises ``CampusUnavailable`` when this machine cannot (not root, no
    proxy, no Python every account can execute).
    """
    proxy = find_proxy()
    if proxy is None:
        raise CampusUnavailable(
            "configurable-http-proxy is missing: install it with "
            "`npm install --prefix .venv/node configurable-http-proxy@5` (as .ci/run does)"
        )
    reason = require_root()
    if reason is not None:
        raise CampusUnavailable(reason)
    swept = sweep_leftovers()
    if swept:
        print(f"removed what a killed earlier run left: {swept}")

    work = work_folder()
    accounts = Accounts()
    hubs: list[Hub] = []

    def clean_up() -> None:
        for hub in hubs:
            with contextlib.suppress(Exception):
                hub.stop(stop_limit)
            hub.kill_leftovers()
        accounts.remove_all()
        shutil.rmtree(work, ignore_errors=True)

    atexit.register(clean_up)  # also when the run is interrupted past the finally below
    # SIGTERM (a CI job cancelled, `kill`) ends the run through the finally below too
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        teacher = accounts.create("teacher")
        names = [accounts.create(f"s{i:02d}") for i in range(1, students + 1)]
        outsider = accounts.create("outsider")
        env = build_shared_env(work / "env", accounts.uid(names[0]), accounts.gid(names[0]))
        if isinstance(env, str):
            raise CampusUnavailable(f"no environment every student account can execute: {env}")
        kernels = _open_tree(write_kernelspec(work / "jupyter", env.python))
        exchange = work / "exchange"
        exchange.mkdir()
        exchange.chmod(0o1777)  # nbgrader's exchange: every account writes here
        (work / "hub").mkdir(mode=0o700)
        hub = Hub(
            work / "hub",
            proxy,
            kernels_path=kernels,
            singleuser=[str(env.bin / "jupyterhub-singleuser")],
            environment={
                "PATH": os.pathsep.join([str(env.bin), "/usr/local/bin", "/usr/bin", "/bin"]),
                "JUPYTER_CONFIG_PATH": str(_readable_config(work)),
                "LABCRYPTO_EXCHANGE": str(exchange),
                **env.environment,
            },
        )
        hubs.append(hub)
        campus = Campus(hub, accounts, env, work, exchange, teacher, outsider, names)
        with explained(hub):
            campus.figures["hub start"] = hub.start(hub_start_limit)
            hub.create_users(campus.users)
            campus.figures["spawn"] = hub.spawn(campus.users, spawn_limit)
            pids = hub.server_pids()
            campus.figures["idle rss"] = {name: rss_bytes(pid) for name, pid in pids.items()}
        yield campus
    finally:
        clean_up()
        atexit.unregister(clean_up)
        signal.signal(signal.SIGTERM, previous)


def make_keys(campus: Campus) -> dict[str, str]:
    """Every user's key pair, made in their own kernel where the lab keeps keys; fingerprints.

    Checks on the way that each lands in ``~/.labcrypto/keys`` (0700), mode
    0600, owned by its student.
    """
    if campus.made_keys:
        return campus.made_keys
    from hub_lab import each

    users = campus.users
    made = each(users, lambda n: campus.in_kernel(n, python_code(KEYGEN, name=n)))
    for name, report in zip(users, made, strict=True):
        home = campus.home(name)
        assert report["home"] == str(home) and report["cwd"] == str(home), (name, report)
        folder = campus.key_folder(name)
        assert report["folder"] == str(folder), (name, report)
        assert folder.stat().st_mode & 0o777 == 0o700, f"{folder}: {oct(folder.stat().st_mode)}"
        key = folder / f"{name}.key"
        assert key.stat().st_mode & 0o777 == 0o600, f"{key}: {oct(key.stat().st_mode)}"
        assert key.stat().st_uid == campus.accounts.uid(name), f"{key} is not {name}'s"
        campus.made_keys[name] = report["fingerprint"]
    assert len(set(campus.made_keys.values())) == len(users), "two users got the same key"
    return campus.made_keys


def user_rss(hub: Hub, name: str) -> int:
    """Resident memory of everything running for ``name``: their server and its kernels."""
    return sum(
        rss_bytes(pid)
        for pid in marked_processes(hub.marker)
        if process_env(pid).get("JUPYTERHUB_USER") == name
    )


def _outputs(result: CellResult, count: int) -> list[Any]:
    """What JupyterLab would save as the cell's outputs."""
    outputs = []
    if result.stdout:
        outputs.append(nbformat.v4.new_output("stream", name="stdout", text=result.stdout))
    if result.stderr:
        outputs.append(nbformat.v4.new_output("stream", name="stderr", text=result.stderr))
    for content in result.outputs:
        if "execution_count" in content:
            outputs.append(
                nbformat.v4.new_output(
                    "execute_result", data=content.get("data", {}), execution_count=count
                )
            )
        else:
            outputs.append(nbformat.v4.new_output("display_data", data=content.get("data", {})))
    if result.error is not None:
        outputs.append(
            nbformat.v4.new_output(
                "error",
                ename=result.error.get("ename", ""),
                evalue=result.error.get("evalue", ""),
                traceback=result.error.get("traceback", []),
            )
        )
    return outputs


def run_notebook(
    server: UserServer,
    path: str,
    *,
    after: str | None = None,
    save: bool = False,
    cell_limit: float = 90.0,
    notebook_limit: float = 240.0,
) -> dict[str, Any]:
    """Run every code cell of ``path`` in a kernel of ``server`` (then the code ``after``).

    ``save``: write the outputs back, as JupyterLab's save does. Returns what
    happened: problems, seconds, RSS, the checks and ✔ lines, what ``after`` printed.
    """
    notebook = nbformat.from_dict(server.api("GET", f"/contents/{path}")["content"])
    kernel = server.kernel(path, timeout=cell_limit)
    started = time.perf_counter()
    problems: list[str] = []
    successes = 0
    try:
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            result = kernel.execute(cell.source, timeout=cell_limit)
            cell.outputs = _outputs(result, index + 1)
            cell.execution_count = index + 1
            if result.error is not None:
                problems.append(f"cell {index}:\n{cell.source[:300]}\n→ {result.describe_error()}")
            if "Traceback" in result.stderr or "Exception in thread" in result.stderr:
                problems.append(f"cell {index} stderr (a thread printed?):\n{result.stderr[:500]}")
            successes += result.stdout.count("✔")
            if time.perf_counter() - started > notebook_limit:
                problems.append(f"stopped after cell {index}: over {notebook_limit} s")
                break
        seconds = time.perf_counter() - started
        printed = kernel.run_json(after) if after else None
        rss = user_rss(server.hub, server.name)
    finally:
        kernel.close()
    if save:
        server.api("PUT", f"/contents/{path}", {"type": "notebook", "content": notebook})
    checks = sum(
        1 for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")
    )
    return {
        "problems": problems,
        "seconds": seconds,
        "rss": rss,
        "checks": checks,
        "successes": successes,
        "after": printed,
    }


# The class chat server, as the teacher starts it in a kernel: every student's .pub on the
# allowlist through the CLI, then the room; prints its port and who is allowed.
CLASS_SERVER = """
import json, subprocess, sys
from labcrypto import keys
from labcrypto.allowlist import Allowlist
from labcrypto.chat import ChatServer
for name in {students}:
    done = subprocess.run(
        [sys.executable, "-m", "labcrypto", "allow", "add", name, f"class/{{name}}.pub"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
allowlist = Allowlist(keys.default_dir() / "allowlist.csv")
room = ChatServer(keys.load_or_create("server", keys.default_dir()), allowlist, port=0,
                  name="class").start()
print(json.dumps({{"port": room.port, "allowed": [entry.name for entry in allowlist.entries()]}}))
"""
