"""A Python environment that every student account can execute, for the hub tests.

A hub with real accounts starts each student's server *as that student*,
so the student's uid must be able to reach and run the environment. The
test's own venv usually cannot serve: on this machine (and in CI, which
clones into another folder of the same machine) its ``python`` is a link to
pyenv's interpreter under ``/root``, a folder no other account may enter; a
checkout under ``/root`` or in a 0700 home hides the venv itself; and
``labcrypto`` is installed from the checkout in editable mode.

Another interpreter will not do either: Debian's ``/usr/bin/python3.11`` is
3.11.2, and the venv's packages are tested with this one (soupsieve, which
nbgrader's feedback needs, fails on 3.11.2's ``re``). So every run makes a
copy of *this* environment in its work folder under /tmp (which everyone
can traverse), the same way each time:

* ``python/``: this interpreter's installation (``sys.base_prefix``: the
  binary, ``libpython``, the standard library; not its own site-packages
  or test suite);
* the venv beside it: its ``lib/`` (site-packages), ``share/`` (nbconvert's
  templates, JupyterLab) and ``etc/`` (server extensions), with the
  checkout's ``labcrypto`` package in place of the editable-install hook,
  a ``pyvenv.cfg`` naming the copied interpreter, and ``bin/`` console
  scripts (``jupyterhub-singleuser``, ``nbgrader``, ``alembic`` …) that
  start with the new ``bin/python``.

Files are hard-linked, not copied (no data written, no disk used; copied
when the work folder is on another file system). A hard link shares the
file, not the folder: a student reads the same bytes through a path that is
open to them, and the folders around it are new ones owned by root, so
nobody can change what others run. An interpreter built with a shared
``libpython`` finds it through ``LD_LIBRARY_PATH`` (``SharedEnv.environment``),
since the binary's own search path points into the original installation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

__all__ = ["SharedEnv", "build_shared_env"]

REPO = Path(__file__).resolve().parent.parent
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


class SharedEnv:
    """The built environment: its root, ``bin/``, ``python``, and the variables it needs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.python = self.bin / "python"
        self.interpreter = root / "python"  # the copy of sys.base_prefix
        self.environment = {"LD_LIBRARY_PATH": str(self.interpreter / "lib")}

    def __repr__(self) -> str:
        return f"SharedEnv({self.root})"


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed here
        shutil.copy2(source, target)


def _leaving_out(top: Path, names_at_top: set[str], anywhere: Callable[[str], bool]):
    """A ``copytree`` ignore function: ``names_at_top`` in ``top``, ``anywhere(name)`` below."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        left_out = [name for name in names if anywhere(name)]
        if Path(folder) == top:
            left_out += [name for name in names if name in names_at_top]
        return left_out

    return ignore


def _copy_interpreter(dest: Path) -> None:
    """This interpreter's installation, without its site-packages and test suite."""
    base = Path(sys.base_prefix)
    stdlib = base / "lib" / f"python{VERSION}"

    def ignore(folder: str, names: list[str]) -> list[str]:
        if Path(folder) == stdlib:
            return [name for name in names if name in {"site-packages", "test", "idlelib"}]
        if Path(folder) == base:
            return [name for name in names if name not in {"bin", "lib"}]
        if Path(folder) == base / "bin":  # only the interpreter, not the tools installed here
            return [name for name in names if not name.startswith("python")]
        return []

    shutil.copytree(base, dest, copy_function=_link_or_copy, ignore=ignore, symlinks=True)


def _rewrite_scripts(venv_bin: Path, new_bin: Path) -> None:
    """Copy the venv's console scripts, each now starting with ``#!new_bin/python``."""
    old_shebang = f"#!{venv_bin}/python".encode()
    for script in venv_bin.iterdir():
        if script.is_symlink() or not script.is_file() or script.name.startswith("python"):
            continue
        data = script.read_bytes()
        target = new_bin / script.name
        if data.startswith(old_shebang):
            first, _, rest = data.partition(b"\n")
            new_first = f"#!{new_bin}/python".encode() + first[len(old_shebang) :]
            target.write_bytes(new_first + b"\n" + rest)
            target.chmod(0o755)
        elif not data.startswith(b"#!"):
            _link_or_copy(str(script), str(target))


def _runs_for(env: SharedEnv, uid: int, gid: int) -> str | None:
    """None if account ``uid`` can import the lab with the env's python; else what it said."""
    done = subprocess.run(
        [str(env.python), "-c", "import labcrypto, jupyterhub, nbgrader, ipykernel"],
        user=uid,
        group=gid,
        extra_groups=[],
        env={"PATH": f"{env.bin}:/usr/bin:/bin", **env.environment},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


def build_shared_env(dest: Path, uid: int, gid: int) -> SharedEnv | str:
    """Build the students' environment in ``dest``; or the reason it cannot serve them.

    ``uid``/``gid``: a student account that must be able to use it.
    """
    env = SharedEnv(dest)
    _copy_interpreter(env.interpreter)
    venv = Path(sys.prefix)
    top = {"bin", "lib64", "include", "pyvenv.cfg", "node", ".installed", "python"}
    editable = lambda name: name.startswith("__editable__") and "labcrypto" in name  # noqa: E731
    shutil.copytree(
        venv, dest, copy_function=_link_or_copy, ignore=_leaving_out(venv, top, editable),
        dirs_exist_ok=True,
    )  # fmt: skip
    site = dest / Path(sysconfig.get_paths()["purelib"]).relative_to(venv)
    shutil.copytree(
        REPO / "labcrypto",
        site / "labcrypto",
        copy_function=_link_or_copy,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    env.bin.mkdir()
    real = env.interpreter / "bin" / f"python{VERSION}"
    for name in ("python", "python3", f"python{VERSION}"):
        (env.bin / name).symlink_to(real)
    (dest / "pyvenv.cfg").write_text(
        f"home = {real.parent}\ninclude-system-site-packages = false\n"
        f"version = {'.'.join(map(str, sys.version_info[:3]))}\n",
        encoding="utf-8",
    )
    _rewrite_scripts(venv / "bin", env.bin)
    for folder in [dest, *dest.rglob("*")]:
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o755)
    problem = _runs_for(env, uid, gid)
    if problem is not None:
        return f"a student account cannot run the copied environment {dest}: {problem}"
    return env
