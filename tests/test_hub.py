"""A class on a real JupyterHub: five users run the lab at once.

A course runs the lab on a JupyterHub, one Jupyter server per student and
the instructor's class server beside them. This test starts a real hub on
127.0.0.1 (``tests/hub_lab.py``: shared-password authenticator,
SimpleLocalProcessSpawner with a home folder per user, configurable-http-proxy,
an admin service token) and drives it only through HTTP, as an admin script
and the students' browsers do:

1. create five users through the REST API (a student can log in with the
   class's shared password, not with a wrong one) and start their servers
   at once;
2. in every user's kernel at once, make the user's key pair in their own
   home (``keys.load_or_create``);
3. collect the students' ``.pub`` files through the contents API into the
   teacher's home; the teacher allowlists them with ``labcrypto allow add``
   and runs the class chat server (``ChatServer``, port 0) in a kernel;
4. three students join, pinned to the server's key, and chat: each sees
   every student's line, tagged with the name the allowlist gives them;
   a fifth user, whose key is not on the allowlist, is refused
   (``KeyNotAllowed``) — on a shared hub everyone shares the loopback, so
   the allowlist is the only thing that keeps a classmate out;
5. notebook 02 is uploaded to every home and run cell by cell in a kernel
   of every user's server, all five at once, without an error;
6. every server and the hub stop, and no process the hub started is left.

It prints the figures the course needs for sizing a hub: hub start time,
time to spawn five servers, memory per student server.

Needs ``jupyterhub`` (the ``dev`` extra) and configurable-http-proxy
(``.ci/run`` installs it with npm into ``.venv/node``). Skipped when the proxy
is missing outside CI; in CI (``CI=true``) that is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hub_lab import (
    Hub,
    Kernel,
    UserServer,
    each,
    find_proxy,
    marked_processes,
    process_env,
    rss_bytes,
    write_kernelspec,
)

from labcrypto.keys import PublicKey

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "02_exchange.ipynb"
IN_CI = os.environ.get("CI", "").lower() in {"true", "1", "yes"}

TEACHER = "teacher"
STUDENTS = ["alice", "bob", "carol"]
OUTSIDER = "mallory"  # has a hub account and a key, but is not on the allowlist
USERS = [TEACHER, *STUDENTS, OUTSIDER]

HUB_START_LIMIT = 60  # seconds; about 3 s here
SPAWN_LIMIT = 90  # five servers at once; about 12 s here
CELL_LIMIT = 60  # one notebook cell (nbgrader's default is 30)
NOTEBOOK_LIMIT = 90  # a whole notebook, five at once on 2 cores
STOP_LIMIT = 30
MEMORY_LIMIT = 1 << 30  # one student's server and kernel together

pytestmark = pytest.mark.timeout(240)


def _python(template: str, **values: Any) -> str:
    """Code for a kernel: ``template`` with each ``{name}`` replaced by ``repr(value)``."""
    return template.format(**{name: repr(value) for name, value in values.items()})


@contextlib.contextmanager
def _explained(hub: Hub) -> Iterator[None]:
    """On any failure, print the hub's log: a failed spawn is only a bare 500 otherwise."""
    try:
        yield
    except BaseException:
        print(hub.log_tail(200))
        raise


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    """A hub, not started yet; stopped (and every process it started killed) afterwards."""
    proxy = find_proxy()
    if proxy is None:
        message = (
            "configurable-http-proxy is missing: install it with "
            "`npm install --prefix .venv/node configurable-http-proxy@5` (as .ci/run does)"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    the_hub = Hub(tmp_path / "hub", proxy, kernels_path=write_kernelspec(tmp_path / "jupyter"))
    try:
        yield the_hub
    finally:
        the_hub.stop()
        the_hub.kill_leftovers()


# --- the lab, as the kernels run it ---------------------------------------------------------

KEYGEN = """
import json, os
from pathlib import Path
from labcrypto import keys
pair = keys.load_or_create({name}, Path.home() / "keys")
print(json.dumps({{"home": str(Path.home()), "cwd": os.getcwd(), "fingerprint": pair.fingerprint}}))
"""

CLASS_SERVER = """
import json, subprocess, sys
from labcrypto import keys
from labcrypto.allowlist import Allowlist
from labcrypto.chat import ChatServer
for name in {students}:
    done = subprocess.run(
        [sys.executable, "-m", "labcrypto", "allow", "add", name, f"class/{{name}}.pub"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
allowlist = Allowlist("keys/allowlist.csv")
room = ChatServer(keys.load_or_create("server", "keys"), allowlist, port=0, name="class").start()
print(json.dumps({{"port": room.port, "allowed": [entry.name for entry in allowlist.entries()]}}))
"""

JOIN = """
import json
from labcrypto import keys
from labcrypto.chat import ChatClient
from labcrypto.keys import PublicKey
client = ChatClient.connect(
    "127.0.0.1", {port}, keys.load({name}, "keys"),
    server_key=PublicKey.from_text({server_pub}), timeout=10,
)
print(json.dumps({{"name": client.name}}))
"""

INTRUDE = """
import json
from labcrypto import keys
from labcrypto.chat import ChatClient
from labcrypto.errors import KeyNotAllowed
from labcrypto.keys import PublicKey
try:
    intruder = ChatClient.connect(
        "127.0.0.1", {port}, keys.load({name}, "keys"),
        server_key=PublicKey.from_text({server_pub}), timeout=10,
    )
except KeyNotAllowed as exc:
    outcome = {{"refused": type(exc).__name__, "message": str(exc)}}
else:
    intruder.close()
    outcome = {{"refused": None}}
print(json.dumps(outcome))
"""

CHAT = """
import json, time
client.send({line})
want, got = set({lines}), []
deadline = time.monotonic() + 20
while not want <= {{m.text for m in got}} and time.monotonic() < deadline:
    try:
        got.append(client.recv(timeout=1))
    except TimeoutError:
        pass
client.close()
print(json.dumps([[m.sender, m.text, m.kind] for m in got]))
"""

ROOM_REPORT = """
import json
report = {{
    "history": [[m.sender, m.text] for m in room.history if m.kind == "message"],
    "rejected": [e.text for e in room.events if e.kind == "rejected"],
}}
room.stop()
report["running"] = room.running
print(json.dumps(report))
"""


def _line(name: str) -> str:
    return f"hello from {name}"


def _class_chat(hub: Hub, servers: dict[str, UserServer], kernels: dict[str, Kernel]) -> None:
    """Steps 2–4: keys in every home, the teacher's class server, the chat, the refusal."""
    made = dict(
        zip(USERS, each(USERS, lambda n: kernels[n].run_json(_python(KEYGEN, name=n))), strict=True)
    )
    for name, report in made.items():
        home = str(hub.homes / name)
        assert report["home"] == home and report["cwd"] == home, (name, report, home)
        assert (hub.homes / name / "keys" / f"{name}.key").stat().st_mode & 0o077 == 0
    fingerprints = {report["fingerprint"] for report in made.values()}
    assert len(fingerprints) == len(USERS), f"two users got the same key: {made}"

    # The instructor collects the students' public keys (never their .key files).
    pubs = dict(
        zip(USERS, each(USERS, lambda n: servers[n].read_text(f"keys/{n}.pub")), strict=True)
    )
    for name, text in pubs.items():
        assert PublicKey.from_text(text).fingerprint == made[name]["fingerprint"], name
    for name in STUDENTS:
        servers[TEACHER].put_file(f"class/{name}.pub", pubs[name])

    room = kernels[TEACHER].run_json(_python(CLASS_SERVER, students=STUDENTS))
    assert room["allowed"] == STUDENTS, room
    server_pub = servers[TEACHER].read_text("keys/server.pub")

    def join(name: str) -> dict[str, Any]:
        code = JOIN if name in STUDENTS else INTRUDE
        return kernels[name].run_json(
            _python(code, port=room["port"], name=name, server_pub=server_pub)
        )

    joiners = [*STUDENTS, OUTSIDER]
    joined = dict(zip(joiners, each(joiners, join), strict=True))
    for name in STUDENTS:
        assert joined[name] == {"name": name}, f"{name} joined as {joined[name]}"
    refusal = joined[OUTSIDER]
    assert refusal["refused"] == "KeyNotAllowed", f"{OUTSIDER} got in: {refusal}"
    members = kernels[TEACHER].run_json("print(json.dumps(sorted(room.members())))")
    assert members == STUDENTS, f"the room holds {members}"

    lines = [_line(name) for name in STUDENTS]

    def chat(name: str) -> list[list[str]]:
        return kernels[name].run_json(_python(CHAT, line=_line(name), lines=lines))

    heard = dict(zip(STUDENTS, each(STUDENTS, chat), strict=True))
    expected = {(name, _line(name)) for name in STUDENTS}
    for name, messages in heard.items():
        said = {(sender, text) for sender, text, kind in messages if kind == "message"}
        assert said == expected, f"{name} saw {sorted(said)}, expected {sorted(expected)}"

    report = kernels[TEACHER].run_json(_python(ROOM_REPORT))
    assert sorted(map(tuple, report["history"])) == sorted(expected), report
    outsider_key = made[OUTSIDER]["fingerprint"]
    assert [text for text in report["rejected"] if outsider_key in text], (
        f"the room did not log {OUTSIDER}'s refusal: {report['rejected']}"
    )
    assert report["running"] is False


# --- notebook 02 in every home ---------------------------------------------------------------


def _user_rss(hub: Hub, name: str) -> int:
    """Resident memory of everything running for ``name``: their server and its kernels."""
    return sum(
        rss_bytes(pid)
        for pid in marked_processes(hub.marker)
        if process_env(pid).get("JUPYTERHUB_USER") == name
    )


def _run_notebook(hub: Hub, server: UserServer, path: str) -> dict[str, Any]:
    """Run every code cell of ``path`` in a kernel of ``server``; what happened."""
    notebook = nbformat.from_dict(server.api("GET", f"/contents/{path}")["content"])
    kernel = server.kernel(path, timeout=CELL_LIMIT)
    started = time.perf_counter()
    problems: list[str] = []
    successes = 0
    try:
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            result = kernel.execute(cell.source, timeout=CELL_LIMIT)
            if result.error is not None:
                problems.append(f"cell {index}:\n{cell.source[:300]}\n→ {result.describe_error()}")
            if "Traceback" in result.stderr or "Exception in thread" in result.stderr:
                problems.append(f"cell {index} stderr (a thread printed?):\n{result.stderr[:500]}")
            successes += result.stdout.count("✔")
            if time.perf_counter() - started > NOTEBOOK_LIMIT:
                problems.append(f"stopped after cell {index}: over {NOTEBOOK_LIMIT} s")
                break
        seconds = time.perf_counter() - started
        rss = _user_rss(hub, server.name)
    finally:
        kernel.close()
    checks = sum(
        1 for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")
    )
    return {
        "problems": problems,
        "seconds": seconds,
        "rss": rss,
        "checks": checks,
        "successes": successes,
    }


def _notebook_everywhere(hub: Hub, servers: dict[str, UserServer]) -> dict[str, dict[str, Any]]:
    """Step 5: notebook 02 in every user's home (as a git pull would put it), run at once."""
    content = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    path = f"notebooks/{NOTEBOOK.name}"
    each(USERS, lambda n: servers[n].put_file(path, content, kind="notebook"))
    ran = each(USERS, lambda n: _run_notebook(hub, servers[n], path))
    runs = dict(zip(USERS, ran, strict=True))
    for name, run in runs.items():
        assert not run["problems"], f"{name}'s notebook 02:\n\n" + "\n\n".join(run["problems"])
        assert run["checks"] > 0 and run["successes"] >= run["checks"], (
            f"{name}: {run['successes']} success lines for {run['checks']} checks"
        )
        keys_dir = hub.homes / name / "notebooks" / "keys"
        assert any(keys_dir.glob("*.key")), f"notebook 02 wrote no key in {name}'s home"
    return runs


# --- the test -----------------------------------------------------------------------------------


def test_a_class_of_five_on_jupyterhub(hub: Hub) -> None:
    with _explained(hub):
        hub_seconds = hub.start(HUB_START_LIMIT)
        hub.create_users(USERS)
        # the class password lets a student in (as that student), a wrong one does not
        assert hub.login(STUDENTS[0], hub.password), "the shared class password was refused"
        assert not hub.login(STUDENTS[0], hub.password + "x"), "a wrong password let us in"
        spawn_seconds = hub.spawn(USERS, SPAWN_LIMIT)

        # The leak check below is only worth something if it sees what the hub started.
        started = hub.processes()
        assert hub.process is not None and hub.process.pid in started
        assert any("configurable-http-proxy" in cmd for cmd in started.values()), started
        pids = hub.server_pids()
        assert sorted(pids) == sorted(USERS), f"single-user servers found: {pids}"
        idle_rss = {name: rss_bytes(pid) for name, pid in pids.items()}

        servers = {name: hub.user_server(name) for name in USERS}
        kernels = dict(zip(USERS, each(USERS, lambda n: servers[n].kernel()), strict=True))
        try:
            _class_chat(hub, servers, kernels)
        finally:
            each(USERS, lambda n: kernels[n].close())

        runs = _notebook_everywhere(hub, servers)
        for name, run in runs.items():
            assert run["rss"] < MEMORY_LIMIT, f"{name} uses {run['rss'] / 2**20:.0f} MiB"

        stop_started = time.perf_counter()
        hub.stop_servers(USERS, STOP_LIMIT)
        hub.stop(STOP_LIMIT)
        assert hub.process is not None and hub.process.returncode == 0, (
            f"the hub exited with {hub.process.returncode}"
        )
        stop_seconds = time.perf_counter() - stop_started
        deadline = time.monotonic() + 10
        while hub.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = hub.kill_leftovers()
        assert not left, f"processes left after the hub stopped (now killed): {left}"

    mib = 2**20
    print(
        f"hub start {hub_seconds:.1f} s; five servers spawned in {spawn_seconds:.1f} s; "
        f"stop {stop_seconds:.1f} s\n"
        f"idle server RSS: mean {statistics.mean(idle_rss.values()) / mib:.0f} MiB, "
        f"max {max(idle_rss.values()) / mib:.0f} MiB\n"
        f"server + notebook-02 kernel RSS per user: "
        + ", ".join(f"{n} {r['rss'] / mib:.0f} MiB" for n, r in runs.items())
        + "\nnotebook 02, five at once: "
        + ", ".join(f"{n} {r['seconds']:.1f} s" for n, r in runs.items())
    )
