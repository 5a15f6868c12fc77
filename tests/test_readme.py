"""What README.md and README.ru.md tell a newcomer is true: the two commands run as written.

A newcomer reads two commands, ``make lab`` and ``make test``, and what each is said
to do. These tests run them (``make lab`` for real, up to JupyterLab answering and
Ctrl-C stopping it; ``.ci/run`` with stand-ins for ``apt-get`` and ``make``) and check
what the READMEs claim about them, in both languages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Each README and the heading of its section on dependencies.
READMES = {
    "README.md": "## Why each dependency is here",
    "README.ru.md": "## Зачем нужна каждая зависимость",
}
FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def the_two_commands(readme: str) -> dict[str, str]:
    """The README's first shell block: {"make lab": "its comment", "make test": "…"}."""
    block = FENCE.search(_read(readme))
    assert block, f"{readme} has no ```bash block"
    commands = {}
    for line in block.group(1).splitlines():
        command, _, comment = line.partition("#")
        commands[command.strip()] = comment.strip()
    return commands


def dependencies() -> set[str]:
    """Every package pyproject.toml installs: the lab's and the `dev` extra's."""
    project = tomllib.loads(_read("pyproject.toml"))["project"]
    specs = project["dependencies"] + [
        spec for extra in project["optional-dependencies"].values() for spec in extra
    ]
    names = {re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0] for spec in specs}
    return names - {"labcrypto"}


def explained(readme: str) -> set[str]:
    """The packages named in the first column of the README's dependency table."""
    text = _read(readme)
    heading = READMES[readme]
    assert heading in text, f"{readme} has no section {heading!r}"
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", row.split("|")[1]))
    return names


@pytest.mark.parametrize("readme", sorted(READMES))
def test_every_dependency_is_explained(readme: str) -> None:
    """Each package pyproject.toml (and so requirements.txt, which a test keeps equal)
    installs has a row saying why it is there, in both languages."""
    found = dependencies()
    assert {"cryptography", "jupyterlab", "nbgrader", "mypy"} <= found  # the reader works
    assert found - explained(readme) == set(), f"{readme} does not say why"


@pytest.mark.parametrize("readme", sorted(READMES))
def test_the_two_commands_are_the_same_in_both_readmes(readme: str) -> None:
    assert list(the_two_commands(readme)) == ["make lab", "make test"]


def _dry_run(target: str) -> str:
    """What ``make -n -B TARGET`` would run (nothing is run)."""
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_runs_what_the_readmes_say() -> None:
    """`make test`: "install, then ruff, mypy and the whole test suite" (both READMEs)."""
    steps = _dry_run("test")
    assert "pip install" in steps
    for tool in ("ruff", "mypy"):
        assert re.search(rf"^\S*/{tool}\b", steps, re.MULTILINE), tool
        for readme in READMES:
            assert tool in the_two_commands(readme)["make test"], (readme, tool)
    assert re.search(r"-m pytest\s*$", steps, re.MULTILINE), "the whole suite: no file chosen"


def test_ci_runs_the_readmes_test_command(tmp_path: Path) -> None:
    """``.ci/run`` installs the system packages the README names, then runs the README's
    test command in the repository. Run for real, with ``apt-get`` and ``make``
    replaced by stand-ins that write down how they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    for name in ("apt-get", "make"):
        stand_in = bin_dir / name
        stand_in.write_text(f'#!/bin/sh\necho "{name} $* (in $PWD)" >> {calls}\n')
        stand_in.chmod(0o755)
    for name in ("bash", "dirname", "env"):  # what the script itself needs, nothing else
        (bin_dir / name).symlink_to(shutil.which(name) or f"/usr/bin/{name}")
    (bin_dir / "python3").write_text("#!/bin/sh\nexit 1\n")  # a python3 without venv
    (bin_dir / "python3").chmod(0o755)
    done = subprocess.run(
        [str(ROOT / ".ci" / "run")],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    installed = lines[-2].split(" (in ")[0].split() if len(lines) > 1 else []
    assert installed[:3] == ["apt-get", "install", "-y"], lines
    assert {"nodejs", "npm"} <= set(installed)  # no npm on this PATH: it must be installed
    assert "python3-venv" in installed  # `make` makes a venv: Debian's python3 needs this
    if not Path("/usr/bin/chromium").exists():
        assert "chromium" in installed
    assert lines[-1] == f"make test (in {ROOT})"  # README.md's command, in the repository
    assert "make test" in the_two_commands("README.md")
    for readme in READMES:
        assert "chromium" in _read(readme) and "npm" in _read(readme), readme


def _wait_for_url(process: subprocess.Popen[str], log: Path, timeout: float) -> str:
    """The ``http://127.0.0.1:PORT/lab?token=…`` JupyterLab prints, waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"http://127\.0\.0\.1:\d+/lab\?token=[0-9a-f]+", log.read_text())
        if found:
            return found.group(0)
        if process.poll() is not None:
            raise AssertionError(f"make lab ended ({process.returncode}):\n{log.read_text()}")
        time.sleep(0.5)
    raise AssertionError(f"no JupyterLab address within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.timeout(600)
def test_make_lab_opens_both_editions_and_ctrl_c_twice_stops_it(tmp_path: Path) -> None:
    """`make lab` as README.md and README.ru.md describe it: it prints the address,
    JupyterLab answers there with the students' notebooks (no solutions) and the Russian
    edition in ru/, and Ctrl-C twice (SIGINT to the terminal's process group) stops it."""
    installed = subprocess.run(
        ["make", "-q", ".venv/.installed"], cwd=ROOT, capture_output=True, timeout=60
    )
    if installed.returncode != 0:
        pytest.skip("the .venv of this checkout is not installed (or is out of date): make lab "
                    "would install first; `make install`, then run this test")  # fmt: skip
    # Made afresh by this `make lab`, so that an older release/ru/ cannot pass for it.
    (ROOT / "release" / ".made").unlink(missing_ok=True)
    shutil.rmtree(ROOT / "release" / "ru", ignore_errors=True)
    log = tmp_path / "make-lab.log"
    env = dict(os.environ, BROWSER="true")  # jupyter "opens a browser" with /bin/true
    with log.open("w") as out:
        lab = subprocess.Popen(
            ["make", "lab"], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=out,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
    try:
        url = _wait_for_url(lab, log, timeout=400)
        api = url.replace("/lab?", "/api/contents?")
        with urllib.request.urlopen(api, timeout=30) as answer:
            top = {item["name"] for item in json.load(answer)["content"]}
        with urllib.request.urlopen(api.replace("/api/contents?", "/api/contents/ru?"),
                                    timeout=30) as answer:  # fmt: skip
            russian = {item["name"] for item in json.load(answer)["content"]}
        notebooks = {p.name for p in (ROOT / "notebooks").glob("[0-9]*.ipynb")}
        assert notebooks <= top and "MISTAKES.md" in top and "ru" in top
        assert notebooks <= russian and "MISTAKES.md" in russian
        first = json.loads((ROOT / "release" / "ru" / "01_keys.ipynb").read_text("utf-8"))
        text = "".join("".join(cell["source"]) for cell in first["cells"])
        assert "### BEGIN SOLUTION" not in text and "raise NotImplementedError" in text
        assert re.search("[а-яё]{4}", text), "release/ru/ holds the Russian edition"

        # Ctrl-C, Ctrl-C: the terminal signals the whole group. The first makes JupyterLab
        # ask "Shut down this Jupyter server (y/[n])?" and wait 5 s for an answer on its
        # stdin (a pipe nobody writes, as a terminal nobody types in); the second stops it.
        for _press in range(2):
            os.killpg(lab.pid, signal.SIGINT)
            time.sleep(1)
        lab.wait(timeout=60)
        with pytest.raises(OSError):
            urllib.request.urlopen(api, timeout=5)
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait(timeout=30)
        if lab.stdin is not None:
            lab.stdin.close()


def test_python_on_path_is_the_one_the_readme_means() -> None:
    """The README asks for Python 3.11 or newer; pyproject.toml says the same."""
    project = tomllib.loads(_read("pyproject.toml"))["project"]
    assert project["requires-python"] == ">=3.11"
    assert "Python 3.11 or newer" in _read("README.md")
    assert "Python 3.11 или новее" in _read("README.ru.md")
    assert sys.version_info >= (3, 11)
