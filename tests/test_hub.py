"""A whole class on one JupyterHub, with a real Unix account per student.

A course runs the lab on a JupyterHub: one Jupyter server per student, each
as that student's own Unix account, and the instructor's class server
beside them. As root (CI runs as root) this test builds exactly that on
127.0.0.1 and drives it only through HTTP, as an admin script and the
students' browsers do:

* throwaway accounts (``tests/hub_accounts.py``): a teacher, ``STUDENTS``
  students (10 by default, ``LABCRYPTO_HUB_STUDENTS`` to change) and an
  outsider whose key is never allowed; homes 0700; removed at the end even
  on failure, and a later run sweeps what a killed run left;
* an environment every account can execute (``tests/hub_env.py``): this
  interpreter and this venv, hard-linked into the run's folder under /tmp —
  the venv's own interpreter lives under /root here and in CI, where no
  student may enter;
* the hub (``tests/hub_lab.py``) loads the settings the lab ships in
  ``hub/`` (jupyterhub_config.py; each server reads jupyter_server_config.py
  and nbgrader_config.py through ``JUPYTER_CONFIG_PATH``), spawns every
  server with ``LocalProcessSpawner`` and the class password.

The tests, in the order a course meets them:

0. (before any hub) what a killed earlier run left — accounts, their
   processes, the hub's root processes — is swept, and a live run's is not;
1. every server runs as its student, in a 0700 home; the class password
   lets a student in, a wrong one does not;
2. keys made in each student's own kernel land in ``~/.labcrypto/keys``
   (0700, key 0600); the teacher collects the ``.pub`` files, allowlists
   them with ``labcrypto allow add`` and runs the class chat server; every
   student joins pinned to its key and sees every classmate's line under
   the allowlist's name; the outsider is refused (``KeyNotAllowed``);
3. notebook 02b (the chat), top to bottom, in every server at once, without an error;
4. privacy: through their own kernels, students try to read a classmate's
   ``.key``, notebook and home listing — every attempt is a PermissionError;
   a student's hub token reads their own files (200) and none of a
   classmate's (403);
5. kernels that always start: every server starts kernels at once, several
   rounds; every kernel answers, every one on the ipc transport (no ports);
6. the course through nbgrader's exchange, across accounts: the teacher
   makes the course (``tools/release.py``) and releases 01 and 02b; three
   students fetch, work (all solved, nothing solved, half solved), run and
   submit; the teacher collects, autogrades, generates and releases
   feedback; the students fetch it. Each score is what the submission
   earned (from the notebook's points), the key made in 01 is the one 02b
   uses, and no ``.key`` file and no private number is anywhere under the
   exchange, the course, or the feedback;
7. everything stops: no process of the hub or of any student is left.

It prints the figures INSTRUCTORS.md's sizing table comes from.

Needs root (else skipped, saying so), ``jupyterhub`` (the ``dev`` extra) and
configurable-http-proxy (``.ci/run`` installs it with npm into ``.venv/node``;
missing outside CI → skipped, in CI → failure).
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hub_accounts import OWNER_VAR, Accounts, processes_of, require_root, sweep_leftovers
from hub_campus import (
    CLASS_SERVER,
    Campus,
    CampusUnavailable,
    make_keys,
    open_campus,
    python_code,
    run_notebook,
)
from hub_lab import HubError, _http, each

from labcrypto.keys import PublicKey

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
IN_CI = os.environ.get("CI", "").lower() in {"true", "1", "yes"}
N_STUDENTS = int(os.environ.get("LABCRYPTO_HUB_STUDENTS", "10"))

HUB_START_LIMIT = 90  # seconds; about 3 s here
SPAWN_LIMIT = 240  # every server at once; about 25 s for 12 here
CELL_LIMIT = 90  # one notebook cell (nbgrader's default is 30)
NOTEBOOK_LIMIT = 240  # a whole notebook, everyone at once on 2 cores
KERNEL_ROUNDS = 3
KERNELS_PER_SERVER = 2
STOP_LIMIT = 60
MEMORY_LIMIT = 1 << 30  # one student's server and kernel together
EXCHANGE_WORK = {"solved": 1.0, "blank": 0.0, "half": 0.5}  # share of exercises solved

pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def campus() -> Iterator[Campus]:
    """The class: a hub, a teacher, N_STUDENTS students, an outsider; all removed after."""
    try:
        with open_campus(N_STUDENTS, HUB_START_LIMIT, SPAWN_LIMIT, STOP_LIMIT) as the_campus:
            yield the_campus
    except CampusUnavailable as exc:
        if IN_CI and os.geteuid() == 0:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


# --- 0. what a killed run leaves is swept ------------------------------------------------------


def test_what_a_killed_run_left_is_swept_and_a_live_run_is_not() -> None:
    """Accounts and processes of a run whose test process is gone are removed by PID."""
    reason = require_root()
    if reason is not None:
        pytest.skip(reason)
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead, alive = finished.pid, os.getpid()
    runs = {owner: Accounts(owner=owner) for owner in (dead, alive)}
    sleepers: list[subprocess.Popen[bytes]] = []
    try:
        for owner, accounts in runs.items():
            name = accounts.create("s01")
            sleepers.append(subprocess.Popen(["sleep", "300"], user=accounts.uid(name)))
            sleepers.append(subprocess.Popen(["sleep", "300"], env={OWNER_VAR: str(owner)}))
        swept = sweep_leftovers()
        killed = runs[dead]
        assert killed.name("s01") in swept, swept
        with pytest.raises(KeyError):
            pwd.getpwnam(killed.name("s01"))
        assert not (killed.homes / killed.name("s01")).exists()
        for sleeper in sleepers[:2]:  # the dead run's: one as its student, one as root
            assert sleeper.wait(timeout=10) == -signal.SIGKILL
        for sleeper in sleepers[2:]:  # the live run's: untouched
            assert sleeper.poll() is None
        assert pwd.getpwnam(runs[alive].name("s01"))
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait(timeout=10)
        for accounts in runs.values():
            accounts.remove_all()


# --- 1. servers as their students -------------------------------------------------------------


def test_each_server_runs_as_its_student_in_a_private_home(campus: Campus) -> None:
    hub = campus.hub
    student = campus.students[0]
    assert hub.login(student, hub.password), "the shared class password was refused"
    assert not hub.login(student, hub.password + "x"), "a wrong password let us in"

    pids = hub.server_pids()
    assert sorted(pids) == sorted(campus.users), f"single-user servers found: {pids}"
    for name, pid in pids.items():
        assert Path(f"/proc/{pid}").stat().st_uid == campus.accounts.uid(name), (
            f"{name}'s server runs as uid {Path(f'/proc/{pid}').stat().st_uid}"
        )
        home = campus.home(name)
        assert home.stat().st_mode & 0o777 == 0o700, f"{home} is {oct(home.stat().st_mode)}"
        assert Path(f"/proc/{pid}/cwd").resolve() == home, f"{name}'s server is not in {home}"


# --- 2. keys and the class chat ---------------------------------------------------------------



JOIN = """
import json
from labcrypto import keys
from labcrypto.chat import ChatClient
from labcrypto.keys import PublicKey
client = ChatClient.connect(
    "127.0.0.1", {port}, keys.load({name}, keys.default_dir()),
    server_key=PublicKey.from_text({server_pub}), timeout=30,
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
        "127.0.0.1", {port}, keys.load({name}, keys.default_dir()),
        server_key=PublicKey.from_text({server_pub}), timeout=30,
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
deadline = time.monotonic() + 60
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


def test_keys_and_the_class_chat(campus: Campus) -> None:
    made = make_keys(campus)
    teacher, students, outsider = campus.teacher, campus.students, campus.outsider
    servers = {name: campus.server(name) for name in campus.users}

    # The instructor collects the students' public keys (never their .key files).
    pubs = dict(
        zip(
            campus.users,
            each(campus.users, lambda n: servers[n].read_text(f".labcrypto/keys/{n}.pub")),
            strict=True,
        )
    )
    for name, text in pubs.items():
        assert PublicKey.from_text(text).fingerprint == made[name], name
    for name in students:
        servers[teacher].put_file(f"class/{name}.pub", pubs[name])

    joiners = [*students, outsider]
    kernels = dict(
        zip(campus.users, each(campus.users, lambda n: servers[n].kernel()), strict=True)
    )
    try:
        room = kernels[teacher].run_json(python_code(CLASS_SERVER, students=students))
        assert room["allowed"] == students, room
        server_pub = servers[teacher].read_text(".labcrypto/keys/server.pub")

        def join(name: str) -> dict[str, Any]:
            code = JOIN if name in students else INTRUDE
            return kernels[name].run_json(
                python_code(code, port=room["port"], name=name, server_pub=server_pub)
            )

        joined = dict(zip(joiners, each(joiners, join), strict=True))
        for name in students:
            assert joined[name] == {"name": name}, f"{name} joined as {joined[name]}"
        refusal = joined[outsider]
        assert refusal["refused"] == "KeyNotAllowed", f"{outsider} got in: {refusal}"
        members = kernels[teacher].run_json("print(json.dumps(sorted(room.members())))")
        assert members == sorted(students), f"the room holds {members}"

        lines = [_line(name) for name in students]
        started = time.perf_counter()
        heard = dict(
            zip(
                students,
                each(
                    students,
                    lambda n: kernels[n].run_json(python_code(CHAT, line=_line(n), lines=lines)),
                ),
                strict=True,
            )
        )
        campus.figures["chat"] = time.perf_counter() - started
        expected = {(name, _line(name)) for name in students}
        for name, messages in heard.items():
            said = {(sender, text) for sender, text, kind in messages if kind == "message"}
            assert said == expected, f"{name} saw {sorted(said)}, expected {sorted(expected)}"

        report = kernels[teacher].run_json(python_code(ROOM_REPORT))
        assert sorted(map(tuple, report["history"])) == sorted(expected), report
        assert [text for text in report["rejected"] if made[outsider] in text], (
            f"the room did not log {outsider}'s refusal: {report['rejected']}"
        )
        assert report["running"] is False
    finally:
        each(campus.users, lambda n: kernels[n].close())


# --- 3. notebook 02 in every home -------------------------------------------------------------


def test_notebook_02_in_every_home_at_once(campus: Campus) -> None:
    notebook = NOTEBOOKS / "02b_chat.ipynb"  # the notebook with the chat and the keys
    content = json.loads(notebook.read_text(encoding="utf-8"))
    path = f"notebooks/{notebook.name}"
    users = campus.users
    each(users, lambda n: campus.server(n).put_file(path, content, kind="notebook"))
    runs = dict(
        zip(
            users,
            each(
                users,
                lambda n: run_notebook(
                    campus.server(n), path, cell_limit=CELL_LIMIT, notebook_limit=NOTEBOOK_LIMIT
                ),
            ),
            strict=True,
        )
    )
    for name, run in runs.items():
        assert not run["problems"], f"{name}'s notebook 02:\n\n" + "\n\n".join(run["problems"])
        assert run["checks"] > 0 and run["successes"] >= run["checks"], (
            f"{name}: {run['successes']} success lines for {run['checks']} checks"
        )
        assert (campus.key_folder(name) / "alice.key").exists(), (
            f"notebook 02 wrote no key where the lab keeps {name}'s keys"
        )
        assert not (campus.home(name) / "notebooks" / "keys").exists(), (
            f"notebook 02 made a keys/ folder beside itself in {name}'s home"
        )
        assert run["rss"] < MEMORY_LIMIT, f"{name} uses {run['rss'] / 2**20:.0f} MiB"
    campus.figures["notebook 02"] = runs


# --- 4. privacy between classmates ------------------------------------------------------------

PEEK = """
import json, os
outcome = {{}}
for label, path in {targets}.items():
    try:
        if label == "home":
            os.listdir(path)
        else:
            with open(path, "rb") as handle:
                handle.read(1)
        outcome[label] = "read"
    except OSError as exc:
        outcome[label] = type(exc).__name__
print(json.dumps(outcome))
"""


def test_classmates_cannot_read_each_others_keys_or_notebooks(campus: Campus) -> None:
    make_keys(campus)
    users = campus.users
    notebook = json.loads((NOTEBOOKS / "01_keys.ipynb").read_text(encoding="utf-8"))
    each(users, lambda n: campus.server(n).put_file("work/mine.ipynb", notebook, kind="notebook"))

    def targets(victim: str) -> dict[str, str]:
        found = {
            "key": campus.key_folder(victim) / f"{victim}.key",
            "notebook": campus.home(victim) / "work" / "mine.ipynb",
            "home": campus.home(victim),
        }
        for label, path in found.items():
            assert path.exists(), f"{label} {path} is missing: the attempt would prove nothing"
        return {label: str(path) for label, path in found.items()}

    # each student against the next one (the last against the teacher), the outsider against all
    pairs = [(a, b) for a, b in zip(users, users[1:] + users[:1], strict=True)]
    pairs += [(campus.outsider, victim) for victim in campus.students[:3]]
    outcomes = each(
        [f"{a}>{b}" for a, b in pairs],
        lambda pair: campus.in_kernel(
            pair.split(">")[0], python_code(PEEK, targets=targets(pair.split(">")[1]))
        ),
    )
    attempts = 0
    for (thief, victim), outcome in zip(pairs, outcomes, strict=True):
        for label, result in outcome.items():
            attempts += 1
            assert result == "PermissionError", f"{thief} → {victim}'s {label}: {result}"
    campus.figures["privacy attempts"] = attempts

    # A student's hub token opens their own server and nobody else's.
    thief, victim = campus.students[0], campus.students[1]
    token = campus.hub.api(
        "POST", f"/users/{thief}/tokens", {"note": "privacy test", "expires_in": 600}
    )["token"]
    own = _http(
        "GET", f"{campus.hub.base}/user/{thief}/api/contents/work/mine.ipynb", token, None, 30
    )
    assert own["name"] == "mine.ipynb"
    for path in ("work/mine.ipynb", f".labcrypto/keys/{victim}.key", ""):
        url = f"{campus.hub.base}/user/{victim}/api/contents/{path}"
        with pytest.raises(HubError, match=r"→ 403 "):
            _http("GET", url, token, None, 30)
    with pytest.raises(HubError, match=r"→ 403 "):
        _http("POST", f"{campus.hub.base}/user/{victim}/api/kernels", token, {}, 30)


# --- 5. kernels that always start -------------------------------------------------------------

KERNEL_CHECK = """
import json
from ipykernel.connect import get_connection_info
print(json.dumps({"sum": 1 + 1, "transport": json.loads(get_connection_info())["transport"]}))
"""


def _start_and_use(campus: Campus, name: str) -> str | dict[str, Any]:
    """Start a kernel in ``name``'s server and use it; its report, or what went wrong."""
    try:
        return campus.in_kernel(name, KERNEL_CHECK, timeout=120)
    except Exception as exc:  # every failure counts, whatever it is
        return f"{name}: {type(exc).__name__}: {str(exc)[:300]}"


def test_kernels_always_start_in_every_server_at_once(campus: Campus) -> None:
    jobs = [name for name in campus.users for _ in range(KERNELS_PER_SERVER)]
    failures: list[str] = []
    transports: set[str] = set()
    seconds = []
    for _ in range(KERNEL_ROUNDS):
        started = time.perf_counter()
        for result in each(jobs, lambda name: _start_and_use(campus, name)):
            if isinstance(result, str):
                failures.append(result)
            else:
                assert result["sum"] == 2
                transports.add(result["transport"])
        seconds.append(time.perf_counter() - started)
    starts = len(jobs) * KERNEL_ROUNDS
    assert not failures, f"{len(failures)} of {starts} kernel starts failed:\n" + "\n".join(
        failures
    )
    assert transports == {"ipc"}, f"kernels used {transports}, not the shipped ipc transport"
    campus.figures["kernel starts"] = (starts, seconds)


# --- 6. the course through nbgrader's exchange ------------------------------------------------

SHELL = """
import json, os, subprocess, sys
argv = [sys.executable if word == "PYTHON" else word for word in {argv}]
done = subprocess.run(argv, cwd=os.path.expanduser({cwd}), capture_output=True, text=True,
                      timeout=900)
report = {{"code": done.returncode, "out": done.stdout[-4000:], "err": done.stderr[-4000:]}}
print(json.dumps(report))
"""

KEY_IN_USE = """
import json
from labcrypto import keys
print(json.dumps({
    "file": keys.load("alice", keys.default_dir()).fingerprint,
    "in use": sorted({value.fingerprint for value in list(globals().values())
                      if isinstance(value, keys.KeyPair) and value.group.name == "ffdhe2048"}),
}))
"""

COURSE = "labcrypto"
ASSIGNMENTS = ["01_keys", "02b_chat"]  # 02b is the first to use the key made in 01


def _shell(campus: Campus, name: str, argv: list[str], cwd: str = "~") -> str:
    """A command in ``name``'s terminal (a subprocess of their kernel): its output, or fail."""
    done = campus.in_kernel(name, python_code(SHELL, argv=argv, cwd=cwd), timeout=960)
    assert done["code"] == 0, (
        f"{name}$ {' '.join(argv)} (exit {done['code']}):\n{done['out']}{done['err']}"
    )
    return done["out"] + done["err"]


def _meta(cell: Any) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader", {})


def _exercises(source: Any) -> list[tuple[str, str, float]]:
    """(solution grade id, the solution's source, the points of its check) in order."""
    found = []
    for index, cell in enumerate(source.cells):
        meta = _meta(cell)
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            check = source.cells[index + 1]
            found.append((meta["grade_id"], cell.source, float(_meta(check)["points"])))
    return found


def _do_the_work(released: Any, source: Any, share: float) -> tuple[Any, float]:
    """The release with the first ``share`` of its exercises solved; the points that earns."""
    exercises = _exercises(source)
    solved = exercises[: round(len(exercises) * share)]
    answers = {grade_id: text for grade_id, text, _ in solved}
    for cell in released.cells:
        grade_id = _meta(cell).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return released, sum(points for _, _, points in solved)


def _private_numbers(campus: Campus) -> dict[str, str]:
    """Every private number of every key any account made (hex digits, as in the files)."""
    numbers = {}
    for name in campus.users:
        for key in campus.key_folder(name).glob("*.key"):
            match = re.search(r"^private:\s*0x([0-9a-f]+)", key.read_text(), re.MULTILINE)
            assert match, f"{key} holds no private number"
            numbers[f"{key}"] = match[1]
    return numbers


def _leaks(folder: Path, numbers: dict[str, str]) -> list[str]:
    """Files under ``folder`` that are a key file or contain a private number."""
    found = []
    for path in folder.rglob("*"):
        if path.is_dir():
            continue
        if path.suffix == ".key":
            found.append(f"{path}: a .key file")
            continue
        text = path.read_bytes().decode(errors="replace").lower()
        found += [f"{path}: the private number of {key}" for key, n in numbers.items() if n in text]
    return found


def test_the_course_through_nbgrader_exchange(campus: Campus) -> None:
    teacher = campus.teacher
    who = dict(zip(EXCHANGE_WORK, campus.students, strict=False))  # work → student
    students = list(who.values())
    tserver = campus.server(teacher)

    # The instructor's copy of the lab (as a git clone would put it) and the course.
    tserver.put_file("labcrypto/tools/release.py", (REPO / "tools" / "release.py").read_text())
    for assignment in ASSIGNMENTS:
        notebook = json.loads((NOTEBOOKS / f"{assignment}.ipynb").read_text(encoding="utf-8"))
        tserver.put_file(f"labcrypto/notebooks/{assignment}.ipynb", notebook, kind="notebook")
    started = time.perf_counter()
    _shell(
        campus,
        teacher,
        ["PYTHON", "labcrypto/tools/release.py", "--course", "course",
         "--exchange", str(campus.exchange)],
    )  # fmt: skip
    earned: dict[tuple[str, str], float] = {}
    key_of: dict[str, str] = {}
    for assignment in ASSIGNMENTS:
        _shell(campus, teacher, ["nbgrader", "release_assignment", assignment], "~/course")
        each(
            students,
            lambda s, a=assignment: _shell(
                campus, s, ["nbgrader", "fetch_assignment", a, "--course", COURSE]
            ),
        )
        source = nbformat.read(NOTEBOOKS / f"{assignment}.ipynb", as_version=4)

        def work(student: str, assignment: str = assignment, source: Any = source) -> None:
            server = campus.server(student)
            path = f"{assignment}/{assignment}.ipynb"
            released = nbformat.from_dict(server.api("GET", f"/contents/{path}")["content"])
            share = next(w for w, s in who.items() if s == student)
            mine, points = _do_the_work(released, source, EXCHANGE_WORK[share])
            earned[(student, assignment)] = points
            server.api("PUT", f"/contents/{path}", {"type": "notebook", "content": mine})
            run = run_notebook(server, path, after=KEY_IN_USE, save=True, cell_limit=CELL_LIMIT)
            in_use = run["after"]
            assert in_use["file"] in in_use["in use"], (
                f"{student}'s {assignment} does not use the key in ~/.labcrypto/keys: {in_use}"
            )
            if assignment == "01_keys":
                key_of[student] = in_use["file"]
            else:
                assert in_use["file"] == key_of[student], (
                    f"{student}'s 02b uses key {in_use['file']}, 01 made {key_of[student]}"
                )
            assert not (campus.home(student) / assignment / "keys").exists(), (
                f"{assignment} made a keys/ folder inside {student}'s assignment folder"
            )
            _shell(campus, student, ["nbgrader", "submit", assignment, "--course", COURSE])

        each(students, work)
        for step in (
            ["collect", assignment],
            ["autograde", assignment],
            ["generate_feedback", assignment],
            ["release_feedback", assignment],
        ):
            _shell(campus, teacher, ["nbgrader", *step], "~/course")
        each(
            students,
            lambda s, a=assignment: _shell(
                campus, s, ["nbgrader", "fetch_feedback", a, "--course", COURSE]
            ),
        )
        for student in students:
            feedback = list((campus.home(student) / assignment / "feedback").rglob("*.html"))
            assert feedback, f"{student} got no feedback for {assignment}"
    _shell(campus, teacher, ["nbgrader", "export", "--to", "grades.csv"], "~/course")
    campus.figures["exchange"] = time.perf_counter() - started

    with open(campus.home(teacher) / "course" / "grades.csv", newline="") as handle:
        rows = {(row["student_id"], row["assignment"]): row for row in csv.DictReader(handle)}
    for (student, assignment), points in earned.items():
        row = rows[(student, assignment)]
        assert float(row["score"]) == pytest.approx(points), (
            f"{student} earned {points} in {assignment}, the grade sheet says {row['score']}"
        )
    assert len({earned[(s, "01_keys")] for s in students}) == len(students), earned

    numbers = _private_numbers(campus)
    assert numbers, "no key was made: the leak check below would prove nothing"
    leaks = _leaks(campus.exchange, numbers) + _leaks(campus.home(teacher) / "course", numbers)
    for student in students:
        for assignment in ASSIGNMENTS:
            leaks += _leaks(campus.home(student) / assignment / "feedback", numbers)
    assert not leaks, "private keys left their owner's account:\n" + "\n".join(leaks)


# --- 7. the end -------------------------------------------------------------------------------


def test_everything_stops_and_nothing_is_left(campus: Campus) -> None:
    hub = campus.hub
    started = time.perf_counter()
    hub.stop_servers(campus.users, STOP_LIMIT)
    hub.stop(STOP_LIMIT)
    assert hub.process is not None and hub.process.returncode == 0, (
        f"the hub exited with {hub.process.returncode}"
    )
    stop_seconds = time.perf_counter() - started
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        hub.processes() or any(processes_of(campus.accounts.uid(n)) for n in campus.users)
    ):
        time.sleep(0.2)
    left = hub.kill_leftovers()
    assert not left, f"processes left after the hub stopped (now killed): {left}"
    for name in campus.users:
        assert not processes_of(campus.accounts.uid(name)), f"{name} still has processes"
    _print_figures(campus, stop_seconds)


def _print_figures(campus: Campus, stop_seconds: float) -> None:
    mib = 2**20
    figures = campus.figures
    idle = figures.get("idle rss", {})
    lines = [
        f"hub start {figures.get('hub start', 0):.1f} s; {len(campus.users)} servers spawned "
        f"in {figures.get('spawn', 0):.1f} s; stop {stop_seconds:.1f} s",
    ]
    if idle:
        lines.append(
            f"idle server RSS: mean {statistics.mean(idle.values()) / mib:.0f} MiB, "
            f"max {max(idle.values()) / mib:.0f} MiB"
        )
    runs = figures.get("notebook 02")
    if runs:
        lines.append(
            "server + notebook-02 kernel RSS: mean "
            f"{statistics.mean(r['rss'] for r in runs.values()) / mib:.0f} MiB; notebook 02, "
            f"all at once: {min(r['seconds'] for r in runs.values()):.1f}–"
            f"{max(r['seconds'] for r in runs.values()):.1f} s"
        )
    if "chat" in figures:
        lines.append(f"class chat, every student's line to every student: {figures['chat']:.1f} s")
    if "privacy attempts" in figures:
        lines.append(f"reads of a classmate's files refused: {figures['privacy attempts']}")
    if "kernel starts" in figures:
        starts, seconds = figures["kernel starts"]
        lines.append(
            f"kernel starts: {starts}, 0 failed; rounds took "
            + ", ".join(f"{s:.0f}" for s in seconds)
            + " s"
        )
    if "exchange" in figures:
        lines.append(f"course through the exchange (01 and 02): {figures['exchange']:.0f} s")
    print("\n".join(lines))
