"""Grading with the real nbgrader: release, autograde, export — as an instructor would.

A throwaway nbgrader course is built from ``notebooks/`` with
``tools/release.py`` (one assignment per notebook), ``nbgrader
generate_assignment`` makes the students' version, and four simulated
students hand in every notebook:

* ``full`` — the instructor's version itself: full marks on every auto-graded cell;
* ``blank`` — the release untouched: zero on every auto-graded cell, and the
  notebook still runs to its last cell;
* ``mistakes-a`` / ``mistakes-b`` — the release with the solutions filled in,
  except a typical wrong answer (one per exercise, from the course's list of
  mistakes) in every other exercise: ``a`` the 1st, 3rd, …, ``b`` the 2nd, 4th, ….
  Each loses exactly the points of its wrong exercises, and each wrong cell's
  feedback names the known mistake.

``nbgrader autograde`` runs once per notebook for all students, and ``nbgrader
export`` writes the CSV whose scores are checked. The per-cell scores come
from nbgrader's gradebook. Smaller, faster tests check the release itself and
that hidden tests never show their cases.
"""

from __future__ import annotations

import copy
import csv
import importlib
import importlib.util
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernels import write_kernelspec

from labcrypto import groups, lab
from labcrypto.lab import checks_01_keys, variants
from labcrypto.lab.feedback import Check, CheckFailed

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
STUDENTS = ["full", "blank", "mistakes-a", "mistakes-b"]
#: This term's notebooks as released (see the README there): its submissions call the old names.
THIS_TERM = Path(__file__).resolve().parent / "data" / "release_2026_autumn"

pytestmark = pytest.mark.timeout(900)


def _load_release_tool() -> Any:
    spec = importlib.util.spec_from_file_location("release", ROOT / "tools" / "release.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release = _load_release_tool()


def _all_checks() -> dict[str, Check]:
    """Every visible check of the lab, by the grade id of its check cell."""
    found: dict[str, Check] = {}
    for info in pkgutil.iter_modules(lab.__path__):
        if info.name.startswith("checks_"):
            module = importlib.import_module(f"labcrypto.lab.{info.name}")
            found.update((c.grade_id, c) for c in vars(module).values() if isinstance(c, Check))
    return found


CHECKS = _all_checks()

#: notebook 05's request handler as the exercise describes it, but with its ephemeral key
#: pair made once, when the cell runs (the first wrong answer; ``MORE_WRONG`` changes it).
_ONCE_PER_SERVER = (
    "from cryptography.hazmat.primitives import hashes\n"
    "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
    "from cryptography.hazmat.primitives.kdf.hkdf import HKDF\n"
    "from labcrypto.channel import read_frame, write_frame\n"
    "from labcrypto.groups import FFDHE2048\n"
    "from labcrypto.handshake import transcript_hash\n"
    "mine = keys.generate(FFDHE2048)  # made once, when the server starts\n"
    "def handle_request(sock, server_key, answer):\n"
    "    client_hello = read_frame(sock)\n"
    "    hello = json.loads(client_hello)\n"
    "    A, X = int(hello['static'], 16), int(hello['ephemeral'], 16)\n"
    "    server_hello = json.dumps({'ephemeral': hex(mine.public)}).encode()\n"
    "    write_frame(sock, server_hello)\n"
    "    K, K2 = server_key.shared_secret(A), mine.shared_secret(X)\n"
    "    info = b'labcrypto 05 request' + transcript_hash(client_hello, server_hello)\n"
    "    ikm = K2.to_bytes(256, 'big') + K.to_bytes(256, 'big')\n"
    "    k = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=info).derive(ikm)\n"
    "    command = AESGCM(k[:32]).decrypt(bytes(12), read_frame(sock), None)\n"
    "    write_frame(sock, AESGCM(k[32:]).encrypt(bytes(12), answer(command), None))\n"
)
_PER_REQUEST = _ONCE_PER_SERVER.replace(
    "mine = keys.generate(FFDHE2048)  # made once, when the server starts\n", ""
).replace(
    "    server_hello = json.dumps(",
    "    mine = keys.generate(server_key.group)\n    server_hello = json.dumps(",
)


def _handler_with(old: str, new: str) -> str:
    """The per-request handler with one line changed: a wrong answer of ``MORE_WRONG``."""
    assert old in _PER_REQUEST, old
    return _PER_REQUEST.replace(old, new)


# One typical wrong answer per exercise (by the grade id of its solution cell), and a
# phrase its check's feedback must contain: the known mistake, in the student's words.
WRONG: dict[str, tuple[str, str]] = {
    "public_value": (
        "def public_value(group, a):\n    return pow(a, group.g, group.p)\n",
        "swapped",
    ),
    "shared_secret": (
        "def shared_secret(group, my_secret, peer_public):\n"
        "    return pow(peer_public, my_secret, group.p)\n",
        "public values never checked",
    ),
    "my_numbers": (
        "my_A = pow(my.g, my.a, my.p)\nmy_K = pow(my.a, my.B, my.p)\n",
        "course mistake 4",
    ),
    "load_or_create_key": (
        "def load_or_create_key(path, group=groups.FFDHE2048):\n"
        "    pair = keys.generate(group)\n"
        "    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
        "    with open(fd, 'w') as file:\n"
        "        file.write(f'private: {pair.private:#x}')\n"
        "    return pair\n",
        "the key file was overwritten",
    ),
    "framing": (
        "MAX_MESSAGE = 1 << 20\n"
        "def send_msg(sock, data):\n"
        "    sock.sendall(struct.pack('!I', len(data)) + data)\n"
        "def recv_msg(sock):\n"
        "    return sock.recv(1024)[4:]\n",
        "TCP does not keep message boundaries",
    ),
    "dh_client": (
        "def dh_client(sock, min_bits=2048):\n"
        "    hello = json.loads(read_frame(sock))\n"
        "    p, g, B = hello['p'], hello['g'], hello['B']\n"
        "    a = secrets.randbelow(p - 3) + 2\n"
        "    K = pow(B, a, p)\n"
        "    write_frame(sock, json.dumps({'A': pow(g, a, p), 'K': K}).encode())\n"
        "    return K\n",
        "The shared secret was sent on the wire",
    ),
    "break_caesar": (
        "def break_caesar(ciphertext):\n"
        "    def score(data):\n"
        "        return sum(97 <= b <= 122 or b == 32 for b in data)\n"
        "    return max((bytes(b - k for b in ciphertext) for k in range(256)), key=score)\n",
        "does not wrap around",
    ),
    "my_cipher": (
        "from cryptography.hazmat.primitives import hashes\n"
        "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
        "from cryptography.hazmat.primitives.kdf.hkdf import HKDF\n"
        "class MyCipher:\n"
        "    def __init__(self, K, i_am_client):\n"
        "        self.key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,\n"
        "                        info=b'session key').derive(K)\n"
        "        self.sealed = self.opened = 0\n"
        "    def seal(self, plaintext):\n"
        "        self.sealed += 1\n"
        "        nonce = self.sealed.to_bytes(12, 'big')\n"
        "        return AESGCM(self.key).encrypt(nonce, plaintext, None)\n"
        "    def open(self, data):\n"
        "        self.opened += 1\n"
        "        return AESGCM(self.key).decrypt(self.opened.to_bytes(12, 'big'), data, None)\n",
        "both directions use one key",
    ),
    "chat_loop": (
        "import pickle\n"
        "def chat_loop(channel, lines):\n"
        "    replies = []\n"
        "    for line in lines:\n"
        "        channel.send(pickle.dumps(line))\n"
        "        replies.append(channel.recv_text(timeout=5))\n"
        "    return replies\n",
        "course mistake 7",
    ),
    "dh_server": (
        "import json\n"
        "import secrets\n"
        "from labcrypto.channel import read_frame, write_frame\n"
        "def dh_server(sock, group):\n"
        "    b = group.random_exponent(secrets.randbelow)\n"
        "    B = pow(group.g, b, group.p)\n"
        "    write_frame(sock, json.dumps({'p': group.p, 'g': group.g, 'B': B}).encode())\n"
        "    A = json.loads(read_frame(sock))['A']\n"
        "    return pow(A, b, group.p)\n",
        "K = 0 whatever your b",
    ),
    "is_allowed": (
        "def is_allowed(path, key):\n    return key.to_text() in Path(path).read_text()\n",
        "Compare keys, not text",
    ),
    "serve_one": (
        "from labcrypto.channel import SecureChannel\n"
        "def serve_one(sock, server_key, allowlist_path):\n"
        "    channel = SecureChannel.server(sock, server_key)\n"
        "    channel.send('welcome')\n"
        "    if not Allowlist(allowlist_path).is_allowed(channel.session.peer_key):\n"
        "        channel.close()\n"
        "        raise LabCryptoError('not on the allowlist')\n"
        "    return channel\n",
        "checks the key too late",
    ),
    "join_as_new_student": (
        "def join_as_new_student(name, key_dir, allowlist_path, address, server_key):\n"
        "    key = keys.generate()\n"
        "    keys.save(key, name, key_dir, overwrite=True)\n"
        "    if Allowlist(allowlist_path).name_of(key.public_key) is None:\n"
        "        cli.main(['allow', 'add', name, str(Path(key_dir) / (name + '.pub')),\n"
        "                  '--allowlist', str(allowlist_path)])\n"
        "    return ChatClient.connect(*address, key, server_key=server_key, timeout=5)\n",
        "On the second call",
    ),
    "follow_handoff": (
        "def follow_handoff(channel, host):\n"
        "    offer = json.loads(channel.recv(timeout=5))\n"
        "    sock = connect(host, offer['port'], timeout=5)\n"
        "    sock.sendall(json.dumps({'type': 'ticket', 'ticket': offer['ticket']}).encode())\n"
        "    channel.rebind(sock)\n"
        "    return json.loads(channel.recv(timeout=5))\n",
        "inside the encrypted channel",
    ),
    "offer_port": (
        "def offer_port(channel, pool, timeout=5.0):\n"
        "    port, sock = pool.lease()\n"
        "    ticket = secrets.token_hex(32)\n"
        "    channel.send(json.dumps({'type': 'port', 'port': port, 'ticket': ticket}))\n"
        "    sock.settimeout(timeout)\n"
        "    conn, _ = sock.accept()\n"
        "    channel.rebind(conn)\n"
        "    return conn, port, sock\n",
        "took that connection as the client's",
    ),
    "port_pool": (
        "class MyPortPool:\n"
        "    def __init__(self, first, last, host='127.0.0.1'):\n"
        "        self.host, self.free = host, list(range(first, last + 1))\n"
        "        self.lock = threading.Lock()\n"
        "    def lease(self):\n"
        "        with self.lock:\n"
        "            if not self.free:\n"
        "                raise PoolExhausted('no free port')\n"
        "            port = self.free.pop(0)\n"
        "        sock = socket.socket()\n"
        "        try:\n"
        "            sock.bind((self.host, port))\n"
        "            sock.listen()\n"
        "        except OSError:\n"
        "            pass\n"
        "        return port, sock\n"
        "    def release(self, port, sock):\n"
        "        sock.close()\n"
        "        with self.lock:\n"
        "            self.free.append(port)\n",
        "course mistake 10",
    ),
    "request_handler": (_ONCE_PER_SERVER, "Two requests got the same Y"),
    "safe_path": (
        "def safe_path(home, requested):\n"
        "    target = (Path(home) / requested.lstrip('/')).resolve()\n"
        "    if not str(target).startswith(str(Path(home).resolve())):\n"
        "        raise PermissionError(requested)\n"
        "    return target\n",
        "mistake 13",
    ),
    "du": (
        "def du(client, path='/'):\n"
        "    return sum(e.size for e in client.ls(path) if e.kind == 'file')\n",
        "Only the files at the top were counted",
    ),
}



def _serve_one(allow: str, before: str = "") -> str:
    """notebook 03's serve_one as a student writes it, with ``allow`` as its allowlist check."""
    return (
        "from labcrypto.channel import SecureChannel, read_frame, write_frame\n"
        "from labcrypto.handshake import ServerHandshake\n"
        f"{before}"
        "def serve_one(sock, server_key, allowlist_path):\n"
        f"    handshake = ServerHandshake(server_key, allow={allow})\n"
        "    try:\n"
        "        while not handshake.done:\n"
        "            for reply in handshake.receive(read_frame(sock)):\n"
        "                write_frame(sock, reply)\n"
        "    except LabCryptoError as exc:\n"
        "        write_frame(sock, ServerHandshake.error_message(exc))\n"
        "        raise\n"
        "    channel = SecureChannel(sock, handshake.session)\n"
        "    channel.send('welcome')\n"
        "    return channel\n"
    )


#: More typical wrong answers of some exercises (issue 18: at least three each), with the
#: phrase each one's feedback must contain. Student ``more-N`` hands in the N-th of every
#: list, every other exercise answered right: each loses exactly that exercise's points.
MORE_WRONG: dict[str, list[tuple[str, str]]] = {
    "dh_server": [
        (  # A made a number whatever came: "123" and 9.0 pass as A (step 3 of the task)
            "import json\n"
            "import secrets\n"
            "from labcrypto.channel import read_frame, write_frame\n"
            "def dh_server(sock, group):\n"
            "    b = group.random_exponent(secrets.randbelow)\n"
            "    B = pow(group.g, b, group.p)\n"
            "    write_frame(sock, json.dumps({'p': group.p, 'g': group.g, 'B': B}).encode())\n"
            "    A = int(json.loads(read_frame(sock))['A'])\n"
            "    groups.validate_public(group, A)\n"
            "    return pow(A, b, group.p)\n",
            "sent A as a string of digits",
        ),
    ],
    "my_cipher": [
        (  # the course's own cipher: XOR with the bytes of K (course mistake 5)
            "class MyCipher:\n"
            "    def __init__(self, K, i_am_client):\n"
            "        self.K = K\n"
            "    def seal(self, plaintext):\n"
            "        return bytes(m ^ k for m, k in zip(plaintext, self.K * len(plaintext)))\n"
            "    def open(self, data):\n"
            "        return self.seal(data)\n",
            "XORed with the bytes of K",
        ),
    ],
    "follow_handoff": [
        (  # back to the handshake port, not the offered one (course mistake 10)
            "def follow_handoff(channel, host):\n"
            "    offer = json.loads(channel.recv(timeout=5))\n"
            "    if offer.get('type') == 'busy':\n"
            "        raise PoolExhausted(offer.get('text', 'busy'))\n"
            "    port = channel.stream.getpeername()[1]\n"
            "    channel.rebind(connect(host, port, timeout=5))\n"
            "    channel.send(json.dumps({'type': 'ticket', 'ticket': offer['ticket']}))\n"
            "    return json.loads(channel.recv(timeout=5))\n",
            "connected to the handshake port",
        ),
    ],
    "serve_one": [
        (  # the list read once and kept: a student removed later still gets in
            _serve_one(
                "lambda key: key in KEPT.setdefault(allowlist_path, "
                "{e.key for e in Allowlist(allowlist_path).entries()})",
                before="KEPT = {}\n",
            ),
            "(a cache)",
        ),
        (  # the key's text searched for in the file's text
            _serve_one("lambda key: key.to_text() in Path(allowlist_path).read_text()"),
            "Compare keys (PublicKey ==), not text",
        ),
        (  # no file, no list: everybody in
            _serve_one(
                "lambda key: not Path(allowlist_path).exists() "
                "or Allowlist(allowlist_path).is_allowed(key)"
            ),
            "fail closed",
        ),
    ],
    "request_handler": [
        (  # K' computed but not mixed in: the keys come from the static K alone
            _handler_with("ikm = K2.to_bytes(256, 'big') + K.to_bytes", "ikm = K.to_bytes"),
            "computed but not mixed in",
        ),
        (  # the client's ephemeral X reused as the server's: K' = X^b
            _handler_with(
                "{'ephemeral': hex(mine.public)}", "{'ephemeral': hello['ephemeral']}"
            ).replace("mine.shared_secret(X)", "server_key.shared_secret(X)"),
            "the client's own X, sent back",
        ),
        (  # Y never sent: the client cannot compute K'
            _handler_with("{'ephemeral': hex(mine.public)}", "{'ok': True}"),
            "no ephemeral public value",
        ),
    ],
    "offer_port": [
        (
            "def offer_port(channel, pool, timeout=5.0):\n"
            "    port, sock = pool.lease()\n"
            "    ticket = secrets.token_hex(32)\n"
            "    channel.send(json.dumps({'type': 'port', 'port': port, 'ticket': ticket}))\n"
            "    sock.settimeout(timeout)\n"
            "    while True:\n"
            "        conn, _ = sock.accept()\n"
            "        channel.rebind(conn)\n"
            "        if json.loads(channel.recv(timeout=1))['ticket'] == ticket:\n"
            "            return conn, port, sock\n"
            "        conn.close()\n",
            "the channel was broken",
        ),
        (
            "def offer_port(channel, pool, timeout=5.0):\n"
            "    port, sock = pool.lease()\n"
            "    ticket = secrets.token_hex(32)\n"
            "    channel.send(json.dumps({'type': 'port', 'port': port, 'ticket': ticket}))\n"
            "    def shows_ticket(message):\n"
            "        return json.loads(message).get('ticket') == ticket\n"
            "    deadline = time.monotonic() + timeout\n"
            "    while time.monotonic() < deadline:\n"
            "        sock.settimeout(max(0.01, deadline - time.monotonic()))\n"
            "        try:\n"
            "            conn, _ = sock.accept()\n"
            "        except TimeoutError:\n"
            "            break\n"
            "        conn.settimeout(1)\n"
            "        try:\n"
            "            frame = read_frame(conn)\n"
            "        except (OSError, LabCryptoError):\n"
            "            frame = None\n"
            "        if frame is None or channel.open_candidate(frame, shows_ticket) is None:\n"
            "            conn.close()\n"
            "            continue\n"
            "        channel.rebind(conn)\n"
            "        return conn, port, sock\n"
            "    raise HandoffFailed('nobody came')\n",
            "the port never went back to the pool",
        ),
        (
            "TICKET = secrets.token_hex(32)\n"
            "def offer_port(channel, pool, timeout=5.0):\n"
            "    port, sock = pool.lease()\n"
            "    channel.send(json.dumps({'type': 'port', 'port': port, 'ticket': TICKET}))\n"
            "    def shows_ticket(message):\n"
            "        return json.loads(message).get('ticket') == TICKET\n"
            "    deadline = time.monotonic() + timeout\n"
            "    while time.monotonic() < deadline:\n"
            "        sock.settimeout(max(0.01, deadline - time.monotonic()))\n"
            "        try:\n"
            "            conn, _ = sock.accept()\n"
            "        except TimeoutError:\n"
            "            break\n"
            "        conn.settimeout(1)\n"
            "        if channel.open_candidate(read_frame(conn), shows_ticket) is None:\n"
            "            conn.close()\n"
            "            continue\n"
            "        channel.rebind(conn)\n"
            "        return conn, port, sock\n"
            "    pool.release(port, sock)\n"
            "    raise HandoffFailed('nobody came')\n",
            "Two sessions got the same ticket",
        ),
    ],
}
MORE = [f"more-{n}" for n in range(1, 1 + max(len(v) for v in MORE_WRONG.values()))]


def _more_wrong(student: str) -> dict[str, tuple[str, str]]:
    """The wrong answers ``more-N`` hands in, by grade id (the N-th of each list)."""
    n = int(student.rpartition("-")[2]) - 1
    return {grade_id: wrong[n] for grade_id, wrong in MORE_WRONG.items() if n < len(wrong)}




def _meta(cell: Any) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _exercises(nb: Any) -> list[str]:
    """Grade ids of the code exercises (solution cells), in order."""
    return [
        _meta(c)["grade_id"]
        for c in nb.cells
        if c.cell_type == "code" and _meta(c).get("solution") and not _meta(c).get("grade")
    ]


def _check_of(nb: Any, solution_id: str) -> Any:
    """The check cell right after the solution cell ``solution_id``."""
    for index, cell in enumerate(nb.cells):
        if _meta(cell).get("grade_id") == solution_id:
            return nb.cells[index + 1]
    raise KeyError(solution_id)


def _wrong_ids(nb: Any, student: str) -> set[str]:
    ids = _exercises(nb)
    if student == "mistakes-a":
        return set(ids[0::2])
    if student == "mistakes-b":
        return set(ids[1::2])
    return set()


#: The five hand-ins of one submission graded in the five-runs test (issue 18 §2).
AGAIN = [f"again-{n}" for n in range(1, 6)]
#: The answers that used to pass by luck (some runs, not others): the instructor's
#: answer with one check or the lock left out, or a secret drawn from a small range
#: (two draws were equal only now and then). Each must lose its points on every run.
LUCKY = {
    "load_or_create_key": (
        "pair = keys.generate(group)",
        "import random\n"
        "    private = random.randint(1000, 1999)  # course mistake 2\n"
        "    pair = keys.KeyPair(group, private, pow(group.g, private, group.p))",
    ),
    "dh_client": (" or not groups.is_probable_prime((p - 1) // 2)", ""),
    "dh_server": (
        "b = group.random_exponent(secrets.randbelow)",
        "b = 10 + secrets.randbelow(90)  # course mistake 2",
    ),
    "port_pool": ("with self.lock:", "if True:"),
}


def _lucky(grade_id: str, answer: str) -> str:
    """``answer``, with the mistake that used to pass by luck, for ``again-N``."""
    if grade_id not in LUCKY:
        return answer
    old, new = LUCKY[grade_id]
    assert old in answer, f"the answer of {grade_id} changed: update LUCKY"
    return answer.replace(old, new)


def _submission(source: Any, released: Any, student: str) -> Any:
    """What ``student`` hands in for one notebook (``answered``: the release, every answer
    filled in from ``source``; ``again-N``: the same, with the ``LUCKY`` mistakes)."""
    if student == "full":
        return copy.deepcopy(source)
    nb = copy.deepcopy(released)
    if student == "blank":
        return nb
    answers = {_meta(c)["grade_id"]: c.source for c in source.cells if _meta(c).get("solution")}
    if student in AGAIN:
        answers = {grade_id: _lucky(grade_id, answer) for grade_id, answer in answers.items()}
    wrong = {grade_id: WRONG[grade_id][0] for grade_id in _wrong_ids(nb, student)}
    if student in MORE:
        wrong = {grade_id: answer for grade_id, (answer, _) in _more_wrong(student).items()}
    for cell in nb.cells:
        meta = _meta(cell)
        if not meta.get("solution"):
            continue
        grade_id = meta["grade_id"]
        cell.source = wrong.get(grade_id, answers[grade_id])
    return nb


#: jupyter_client's own race, not ours: it picks a kernel's five TCP ports by binding
#: port 0 and closing, and the kernel binds them a moment later; on a busy loopback
#: another process can take one in between, and the kernel dies before it starts
#: (hub/jupyter_server_config.py explains it; the hub avoids it with the ipc transport).
#: nbgrader then drops that one submission. The kernel never ran a cell, so running the
#: same command again grades the same notebook afresh.
KERNEL_PORT_TAKEN = ("Address already in use", "Kernel died before replying to kernel_info")


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    for _attempt in range(3):
        result = subprocess.run(
            [*release.nbgrader_command(), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=800,
            check=False,
        )
        kernel_never_started = all(sign in result.stderr for sign in KERNEL_PORT_TAKEN)
        if result.returncode == 0 or not kernel_never_started:
            break
    assert result.returncode == 0, f"nbgrader {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def _grade_course(
    base: Path, notebook_dir: Path, students: list[str], released_dir: Path | None = None
) -> dict[str, Any]:
    """An nbgrader course from ``notebook_dir``, released, ``students``' submissions
    autograded, grades exported. The submissions are made from nbgrader's fresh release,
    or from the notebooks already released in ``released_dir``."""
    env = release.nbgrader_env()
    env["JUPYTER_PATH"] = str(write_kernelspec(base / "jupyter"))
    env["MPLBACKEND"] = "Agg"
    for name in ("LABCRYPTO_STUDENT_ID", "JUPYTERHUB_USER"):
        env.pop(name, None)

    course = base / "course"
    ids = release.write_course(course, notebook_dir)
    seconds: dict[str, float] = {}
    logs: dict[str, str] = {}
    for assignment in ids:
        fresh = release.generate(course, assignment)
        source = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", 4)
        released = nbformat.read((released_dir or fresh) / f"{assignment}.ipynb", 4)
        for student in students:
            folder = course / "submitted" / student / assignment
            folder.mkdir(parents=True)
            nbformat.write(_submission(source, released, student), folder / f"{assignment}.ipynb")
        start = time.perf_counter()
        result = _run(["autograde", assignment, "--force"], course, env)
        seconds[assignment] = time.perf_counter() - start
        logs[assignment] = result.stdout + result.stderr
    _run(["export", "--to", str(base / "grades.csv")], course, env)
    with open(base / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for assignment, spent in seconds.items():
        sys.stderr.write(f"autograde {assignment}: {spent:.1f} s for {len(students)} submissions\n")
    return {"course": course, "ids": ids, "rows": rows, "seconds": seconds, "logs": logs}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A course, released, four students' submissions autograded, grades exported."""
    return _grade_course(tmp_path_factory.mktemp("grading"), NOTEBOOK_DIR, STUDENTS)


@pytest.fixture(scope="module")
def graded_five_times(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every notebook, one submission handed in five times: every exercise answered, the
    ``LUCKY`` ones with the mistake that used to pass by luck, the others right."""
    base = tmp_path_factory.mktemp("five-runs")
    folder = base / "notebooks"
    folder.mkdir()
    for path in sorted(NOTEBOOK_DIR.glob("0*.ipynb")):
        (folder / path.name).write_bytes(path.read_bytes())
    return _grade_course(base, folder, AGAIN)


@pytest.fixture(scope="module")
def graded_more(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebooks of the ``MORE_WRONG`` exercises, each ``more-N`` student's hand-in graded."""
    base = tmp_path_factory.mktemp("more-mistakes")
    folder = base / "notebooks"
    folder.mkdir()
    for path in sorted(NOTEBOOK_DIR.glob("0*.ipynb")):
        if set(_exercises(nbformat.read(path, 4))) & set(MORE_WRONG):
            (folder / path.name).write_bytes(path.read_bytes())
    return _grade_course(base, folder, MORE)


def _cell_scores(course: Path, assignment: str, student: str) -> dict[str, tuple[float, float]]:
    """grade id -> (auto score, max score) of every auto-graded cell, from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(assignment, assignment, student)
        return {
            grade.name: (grade.auto_score or 0.0, grade.max_score)
            for grade in notebook.grades
            if grade.cell.cell_type == "code"
        }


def _autograded(course: Path, assignment: str, student: str) -> Any:
    path = course / "autograded" / student / assignment / f"{assignment}.ipynb"
    return nbformat.read(path, 4)


def _error_text(cell: Any) -> str:
    return "\n".join(
        "\n".join(out.get("traceback", [])) + out.get("evalue", "")
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    )


# --- the release ---------------------------------------------------------------------


def test_release_is_what_students_should_get(tmp_path: Path) -> None:
    written = release.release_to(tmp_path / "release")
    assert {p.stem for p in written} == {p.stem for p in NOTEBOOK_DIR.glob("0*.ipynb")}
    # The mistakes list the checks cite comes with the notebooks (issue 18 §3).
    mistakes = (tmp_path / "release" / "MISTAKES.md").read_text(encoding="utf-8")
    assert mistakes == (NOTEBOOK_DIR / "MISTAKES.md").read_text(encoding="utf-8")
    for path in written:
        student = nbformat.read(path, 4)
        source = nbformat.read(NOTEBOOK_DIR / path.name, 4)
        assert len(student.cells) == len(source.cells), path.name
        for mine, theirs in zip(student.cells, source.cells, strict=True):
            meta = _meta(theirs)
            assert "BEGIN SOLUTION" not in mine.source and "HIDDEN TESTS" not in mine.source
            assert mine.cell_type != "code" or not mine.outputs, "outputs cleared"
            if not meta:
                assert mine.source == theirs.source, "demo cells unchanged"
                continue
            kept = _meta(mine)
            for field in ("grade_id", "grade", "solution", "points"):
                assert kept.get(field) == meta.get(field), (path.name, meta["grade_id"], field)
            if meta.get("grade") and mine.cell_type == "code":
                assert kept.get("locked") and kept.get("checksum"), "check cells locked"
                assert "checks.check_" in mine.source, "the visible check stays"
                assert "checks.hidden_" not in mine.source, "the hidden test is gone"
            elif meta.get("solution") and mine.cell_type == "code":
                assert "raise NotImplementedError()" in mine.source
            elif meta.get("solution"):
                assert mine.source.strip() == "YOUR ANSWER HERE"


# --- autograde ------------------------------------------------------------------------


def test_the_source_version_gets_full_marks(graded: dict[str, Any]) -> None:
    for assignment in graded["ids"]:
        scores = _cell_scores(graded["course"], assignment, "full")
        assert scores, assignment
        lost = {gid: s for gid, s in scores.items() if s[0] != s[1]}
        assert not lost, f"{assignment}: the instructor's answers lost points in {lost}"


def test_the_untouched_release_gets_zero_and_runs_to_the_end(graded: dict[str, Any]) -> None:
    for assignment in graded["ids"]:
        scores = _cell_scores(graded["course"], assignment, "blank")
        assert all(auto == 0 for auto, _ in scores.values()), (assignment, scores)
        nb = _autograded(graded["course"], assignment, "blank")
        last_code = [c for c in nb.cells if c.cell_type == "code"][-1]
        assert last_code.execution_count is not None, f"{assignment} stopped before its end"
        assert not _error_text(last_code), f"{assignment}: the clean-up cell failed"
        for cell in nb.cells:
            if _meta(cell).get("grade") and cell.cell_type == "code":
                assert "not written yet" in _error_text(cell), (assignment, cell.source[:80])


@pytest.mark.parametrize("student", ["mistakes-a", "mistakes-b"])
def test_each_typical_mistake_loses_exactly_its_points(
    graded: dict[str, Any], student: str
) -> None:
    for assignment in graded["ids"]:
        nb = _autograded(graded["course"], assignment, student)
        wrong = _wrong_ids(nb, student)
        scores = _cell_scores(graded["course"], assignment, student)
        for solution_id in _exercises(nb):
            check = _check_of(nb, solution_id)
            auto, most = scores[_meta(check)["grade_id"]]
            if solution_id in wrong:
                assert auto == 0, f"{assignment}: the wrong {solution_id} still scored {auto}"
                feedback = _error_text(check)
                phrase = WRONG[solution_id][1]
                assert phrase in feedback, f"{solution_id}: {phrase!r} not in\n{feedback}"
                heading = CHECKS[_meta(check)["grade_id"]].section.heading
                assert heading in feedback, f"{solution_id}: no pointer to its section"
            else:
                assert auto == most, f"{assignment}: the right {solution_id} lost points"


def test_more_typical_mistakes_each_lose_exactly_their_points(graded_more: dict[str, Any]) -> None:
    """Issue 18: an exercise's further typical wrong answers, each handed in on its own (every
    other answer right), each lose exactly that exercise's points, with feedback naming it."""
    course = graded_more["course"]
    assert graded_more["ids"], "the notebooks of MORE_WRONG were graded"
    totals = {(r["assignment"], r["student_id"]): float(r["score"]) for r in graded_more["rows"]}
    seen: set[str] = set()
    for assignment in graded_more["ids"]:
        full = sum(most for _, most in _cell_scores(course, assignment, MORE[0]).values())
        for student in MORE:
            nb = _autograded(course, assignment, student)
            wrong = _more_wrong(student)
            scores = _cell_scores(course, assignment, student)
            lost = 0.0
            for solution_id in _exercises(nb):
                check = _check_of(nb, solution_id)
                auto, most = scores[_meta(check)["grade_id"]]
                if solution_id not in wrong:
                    assert auto == most, f"{student}: the right {solution_id} lost points"
                    continue
                assert auto == 0, f"{student}: the wrong {solution_id} still scored {auto}"
                lost += most
                feedback = _error_text(check)
                phrase = wrong[solution_id][1]
                assert phrase in feedback, f"{student} {solution_id}: {phrase!r} not in\n{feedback}"
                heading = CHECKS[_meta(check)["grade_id"]].section.heading
                assert heading in feedback, f"{student} {solution_id}: no pointer to its section"
            seen |= set(wrong) & set(_exercises(nb))
            assert totals[(assignment, student)] == full - lost, (assignment, student)
    assert seen == set(MORE_WRONG), "every exercise of MORE_WRONG was graded"


def test_exported_grades(graded: dict[str, Any]) -> None:
    rows = {(r["assignment"], r["student_id"]): r for r in graded["rows"]}
    assert len(rows) == len(graded["ids"]) * len(STUDENTS)
    for assignment in graded["ids"]:
        source = nbformat.read(NOTEBOOK_DIR / f"{assignment}.ipynb", 4)
        points = {
            _meta(c)["grade_id"]: _meta(c)["points"]
            for c in source.cells
            if _meta(c).get("grade") and c.cell_type == "code"
        }
        manual = sum(
            _meta(c)["points"]
            for c in source.cells
            if _meta(c).get("grade") and c.cell_type == "markdown"
        )
        auto_total = sum(points.values())
        assert float(rows[(assignment, "full")]["max_score"]) == auto_total + manual
        expected = {"full": auto_total, "blank": 0}
        for student in ("mistakes-a", "mistakes-b"):
            lost = sum(
                points[_meta(_check_of(source, sid))["grade_id"]]
                for sid in _wrong_ids(source, student)
            )
            expected[student] = auto_total - lost
        for student, score in expected.items():
            assert float(rows[(assignment, student)]["score"]) == score, (assignment, student)


def test_no_feedback_shows_a_hidden_test(graded: dict[str, Any]) -> None:
    """Tracebacks in the graded notebooks show the grading call, never a test's cases."""
    for assignment in graded["ids"]:
        for student in STUDENTS:
            nb = _autograded(graded["course"], assignment, student)
            for cell in nb.cells:
                text = _error_text(cell)
                assert "assert " not in text and "_expect(" not in text, (assignment, text)


def test_checksum_warnings_name_only_the_cells_whose_hidden_tests_come_back(
    graded: dict[str, Any],
) -> None:
    """Issue 18 §2: ``autograde`` says "Attribute 'checksum' for cell … has changed!" even
    for an untouched release. nbgrader's own doing (GRADING.md explains it): it saves each
    check cell with its hidden tests, releases it without them, and at autograde puts
    the saved cell back — warning each time. Nothing else may trigger the warning."""
    pattern = re.compile(r"Attribute 'checksum' for cell (\S+) has changed")
    for assignment in graded["ids"]:
        source = nbformat.read(graded["course"] / "source" / assignment / f"{assignment}.ipynb", 4)
        hidden = {
            _meta(c)["grade_id"] for c in source.cells if "### BEGIN HIDDEN TESTS" in c.source
        }
        warned = set(pattern.findall(graded["logs"][assignment]))
        assert warned, f"{assignment}: nbgrader no longer warns (update GRADING.md)"
        assert warned <= hidden, (assignment, warned - hidden)


def test_autograde_time_per_notebook(graded: dict[str, Any]) -> None:
    for assignment, spent in graded["seconds"].items():
        # Four submissions each; nbgrader's per-cell timeout (30 s) never came close.
        assert spent < 40 * len(STUDENTS), f"{assignment}: autograde took {spent:.0f} s"


# --- per-student numbers and hidden tests, without nbgrader --------------------------------


@pytest.mark.timeout(1800)  # thirty autogrades (every notebook, five times): 4 min at load 10
def test_one_submission_gets_the_same_score_on_five_runs(graded_five_times: dict[str, Any]) -> None:
    """Issue 18 §2: the same submission, autograded five times, gets the same score in
    every cell of every notebook: each right answer its full points, and each answer
    that used to pass by luck none, every time."""
    course = graded_five_times["course"]
    graded = {path.stem for path in NOTEBOOK_DIR.glob("0*.ipynb")}
    assert set(graded_five_times["ids"]) == graded, "every notebook is graded five times"
    exercises: set[str] = set()
    for assignment in graded_five_times["ids"]:
        runs = {student: _cell_scores(course, assignment, student) for student in AGAIN}
        first = runs[AGAIN[0]]
        assert all(scores == first for scores in runs.values()), (assignment, runs)
        nb = _autograded(course, assignment, AGAIN[0])
        for solution_id in _exercises(nb):
            auto, most = first[_meta(_check_of(nb, solution_id))["grade_id"]]
            assert auto == (0 if solution_id in LUCKY else most), (assignment, solution_id)
            exercises.add(solution_id)
    assert set(LUCKY) <= exercises, "each LUCKY answer was handed in"
    totals = [float(r["score"]) for r in graded_five_times["rows"] if r["student_id"] in AGAIN]
    assert len(totals) == 5 * len(graded_five_times["ids"])


def test_make_lab_opens_the_students_edition_and_lab_instructor_the_solutions() -> None:
    """Issue 18 §3: a newcomer's first command opens the release (git-ignored), not the
    instructor's notebooks; the instructor's edition is one documented command away."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    lab = re.search(r"^lab:.*\n\t(.*)$", makefile, re.M)
    instructor = re.search(r"^lab-instructor:.*\n\t(.*)$", makefile, re.M)
    assert lab and "jupyter lab release/" in lab.group(1)
    assert instructor and "jupyter lab notebooks/" in instructor.group(1)
    assert "tools/release.py --out release" in makefile
    assert "/release/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    for readme in ("README.md", "README.ru.md"):
        text = (ROOT / readme).read_text(encoding="utf-8")
        assert "make lab-instructor" in text and "release/" in text, readme


def test_variants_differ_between_students_and_repeat_for_one() -> None:
    one, again, other = variants.variant("s1"), variants.variant("s1"), variants.variant("s2")
    assert one == again
    assert (one.p, one.a, one.B) != (other.p, other.a, other.B)
    for mine in (one, other):
        assert groups.is_probable_prime(mine.p) and groups.is_probable_prime(mine.group.q)
        assert pow(mine.B, mine.group.q, mine.p) == 1
    ps = {variants.variant(f"student{i}").p for i in range(30)}
    assert len(ps) >= 25, "most students get a group of their own"


def test_student_id_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LABCRYPTO_STUDENT_ID", "NBGRADER_EXECUTION", "JUPYTERHUB_USER"):
        monkeypatch.delenv(name, raising=False)
    assert variants.student_id("") == ""
    monkeypatch.setenv("JUPYTERHUB_USER", "hubuser")
    assert variants.student_id("") == "hubuser"
    assert variants.student_id(" typed ") == "typed"
    graded_dir = tmp_path / "autograded" / "s42" / "01_keys"
    graded_dir.mkdir(parents=True)
    monkeypatch.chdir(graded_dir)
    assert variants.student_id("typed") == "typed", "outside nbgrader the folder does not count"
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert variants.student_id("copied-from-a-friend") == "s42"
    monkeypatch.setenv("LABCRYPTO_STUDENT_ID", "set-by-instructor")
    assert variants.student_id("typed") == "set-by-instructor"


def test_pasted_numbers_fail_for_another_student(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("LABCRYPTO_STUDENT_ID", raising=False)
    friend = variants.variant("friend")
    answers = pow(friend.g, friend.a, friend.p), pow(friend.B, friend.a, friend.p)
    checks_01_keys.hidden_my_numbers("friend", *answers)
    with pytest.raises(CheckFailed):
        checks_01_keys.hidden_my_numbers("me", *answers)


def test_hidden_failures_are_generic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Right on the visible check, wrong on this student's group: the message gives nothing away."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("LABCRYPTO_STUDENT_ID", "s7")
    mine = variants.variant("s7")

    def sneaky(group, a):
        return pow(group.g, a, group.p) + (1 if group.p == mine.p else 0)

    checks_01_keys.check_public_value(sneaky)
    with pytest.raises(CheckFailed) as info:
        checks_01_keys.hidden_public_value(sneaky)
    message = str(info.value)
    assert "hidden test" in message and "2 · Exercise: compute a public value" in message
    for secret in (mine.p, mine.a, pow(mine.g, mine.a, mine.p)):
        assert str(secret) not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_every_section_pointer_names_a_real_heading() -> None:
    assert len(CHECKS) >= 14, "every notebook's checks are found"
    for grade_id, check in CHECKS.items():
        notebook, heading = check.section.notebook, check.section.heading
        assert check.__module__ == f"labcrypto.lab.checks_{notebook}", (
            "a check lives with its notebook"
        )
        nb = nbformat.read(NOTEBOOK_DIR / f"{notebook}.ipynb", as_version=4)
        markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
        lines = [line for source in markdown for line in source.splitlines()]
        assert any(line.startswith("#") and line.endswith(f"# {heading}") for line in lines), (
            f"{grade_id}: no heading {heading!r} in {notebook}"
        )
        graded = [c.metadata.get("nbgrader", {}) for c in nb.cells]
        checks = {meta["grade_id"] for meta in graded if meta.get("grade")}
        assert grade_id in checks, f"{grade_id} is not a check of {notebook}"


# --- this term's submissions, graded by today's package through the old names --------------


@pytest.fixture(scope="module")
def graded_this_term(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A course made from this term's notebooks, graded with today's package."""
    return _grade_course(
        tmp_path_factory.mktemp("this-term"),
        THIS_TERM / "source",
        ["answered", "mistakes-a"],
        released_dir=THIS_TERM / "release",
    )


def test_this_terms_submissions_grade_the_same(graded_this_term: dict[str, Any]) -> None:
    """nbgrader puts this term's check cells back (``exercises.check_…``, ``grading.hidden_…``):
    through the shims they give every point of a right answer, and take exactly the
    points of each typical mistake, with its feedback."""
    course, rows = graded_this_term["course"], graded_this_term["rows"]
    assert graded_this_term["ids"] == release.assignments(THIS_TERM / "release")
    for assignment in graded_this_term["ids"]:
        source = nbformat.read(THIS_TERM / "source" / f"{assignment}.ipynb", 4)
        calls = "".join(c.source for c in source.cells if _meta(c).get("grade"))
        assert "exercises.check_" in calls and "grading.hidden_" in calls, "the old names"
        scores = _cell_scores(course, assignment, "answered")
        assert scores and all(auto == most for auto, most in scores.values()), scores
        nb = _autograded(course, assignment, "mistakes-a")
        wrong = _wrong_ids(nb, "mistakes-a")
        scores = _cell_scores(course, assignment, "mistakes-a")
        for solution_id in _exercises(nb):
            check = _check_of(nb, solution_id)
            auto, most = scores[_meta(check)["grade_id"]]
            assert auto == (0 if solution_id in wrong else most), (assignment, solution_id)
            if solution_id in wrong:
                assert WRONG[solution_id][1] in _error_text(check), solution_id
                assert "assert " not in _error_text(check)
    totals = {(r["assignment"], r["student_id"]): float(r["score"]) for r in rows}
    for assignment in graded_this_term["ids"]:
        assert totals[(assignment, "answered")] == sum(
            most for _, most in _cell_scores(course, assignment, "answered").values()
        )


# --- the Russian edition: the same assignments, graded the same ------------------------------


def _grading_metadata(nb: Any) -> list[tuple[str, str, Any, Any, Any]]:
    """(cell type, grade id, graded?, solution?, points) of every nbgrader cell, in order."""
    return [
        (c.cell_type, m["grade_id"], m.get("grade"), m.get("solution"), m.get("points"))
        for c in nb.cells
        if (m := _meta(c)).get("grade_id")
    ]


def test_the_russian_release_has_the_same_grade_ids_and_points(tmp_path: Path) -> None:
    """``tools/release.py --lang ru`` releases notebooks/ru/: the same assignments, cells,
    grade ids and points as the English edition; only the prose is Russian. (The English
    release keeps the English source's ids and points: test_release_is_what_students_should_get.)
    """
    assert release.main(["--lang", "ru", "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert written == [f"{a}.ipynb" for a in release.assignments(NOTEBOOK_DIR)]
    for name in written:
        russian = nbformat.read(tmp_path / name, 4)
        english = nbformat.read(NOTEBOOK_DIR / name, 4)
        assert _grading_metadata(english), name
        assert _grading_metadata(russian) == _grading_metadata(english), name
        assert len(russian.cells) == len(english.cells), name
        assert "raise NotImplementedError()" in "".join(c.source for c in russian.cells), name
        prose = [
            (a.source, b.source)
            for a, b in zip(english.cells, russian.cells, strict=True)
            if a.cell_type == "markdown" and a.source.strip()
        ]
        assert any(a != b for a, b in prose), f"{name}: the Russian release is not Russian"


@pytest.fixture(scope="module")
def graded_russian(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A course made from the Russian edition: its source version handed in, autograded."""
    return _grade_course(tmp_path_factory.mktemp("grading-ru"), NOTEBOOK_DIR / "ru", ["full"])


def test_the_russian_source_version_gets_full_marks(graded_russian: dict[str, Any]) -> None:
    assert graded_russian["ids"] == release.assignments(NOTEBOOK_DIR)
    for assignment in graded_russian["ids"]:
        scores = _cell_scores(graded_russian["course"], assignment, "full")
        assert scores, assignment
        lost = {gid: s for gid, s in scores.items() if s[0] != s[1]}
        assert not lost, f"{assignment} (ru): the instructor's answers lost points in {lost}"
    # The same points as the English edition: its auto-graded total, and its maximum.
    rows = {(r["assignment"], r["student_id"]): r for r in graded_russian["rows"]}
    for assignment in graded_russian["ids"]:
        english = nbformat.read(NOTEBOOK_DIR / f"{assignment}.ipynb", 4)
        graded_cells = [c for c in english.cells if _meta(c).get("grade")]
        auto = sum(_meta(c)["points"] for c in graded_cells if c.cell_type == "code")
        most = sum(_meta(c)["points"] for c in graded_cells)
        row = rows[(assignment, "full")]
        assert (float(row["score"]), float(row["max_score"])) == (auto, most), assignment
