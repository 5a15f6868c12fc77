"""The import direction of the package, as ARCHITECTURE.md draws it.

Each module of ``labcrypto`` belongs to one layer; it may import its own
layer and the layers below it, never one above. The protocol core imports
no sockets, threads, widgets or matplotlib. The imports are read from the
source with ``ast`` (every ``import`` statement, also inside functions), so
nothing here runs the package.

To add a module: put its name in its layer below. A name stands for the
module and all its submodules (``"ftp"`` covers ``ftp.py`` and, once split
into a package, ``ftp/server.py``); a module in no layer fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

PACKAGE = Path(__file__).resolve().parents[1] / "labcrypto"


class Layer(NamedTuple):
    name: str
    modules: str  #: its modules, separated by spaces (each with all its submodules)
    forbids: str = ""  #: top-level modules no module of this layer may import


#: The layers, lowest first. The package's own ``__init__`` counts as protocol core.
LAYERS = [
    Layer(
        "protocol core",
        "errors groups keys key_pool ciphers handshake jsonwire untrusted streams i18n",
        forbids="socket socketserver selectors threading ipywidgets IPython matplotlib",
    ),
    Layer("channel", "channel", forbids="socket ipywidgets IPython matplotlib"),
    Layer(
        "services",
        "allowlist known_servers admission ports server client handoff jail atomic_file "
        "ftp wiretap chat chat_messages chat_server chat_client",
        forbids="ipywidgets IPython matplotlib",
    ),
    Layer("lab", "lab exercises grading widgets plots"),
    Layer("cli", "cli __main__"),
]


def module_name(path: Path, root: Path) -> str:
    """``labcrypto/lab/feedback.py`` -> ``lab.feedback``; the package's ``__init__`` -> ``""``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str, layers: list[Layer] = LAYERS) -> int | None:
    """The index of the layer ``module`` (or the module it is a part of) belongs to."""
    if module == "":
        return 0
    for index, layer in enumerate(layers):
        for member in layer.modules.split():
            if module == member or module.startswith(member + "."):
                return index
    return None


def imports_of(path: Path, root: Path) -> tuple[set[str], set[str]]:
    """(modules of the package, other top-level modules) that ``path`` imports."""
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    own: set[str] = set()
    other: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, _, rest = alias.name.partition(".")
                if top == root.name:
                    own.add(rest)
                else:
                    other.add(top)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            top, _, rest = (node.module or "").partition(".")
            if top == root.name:
                own.update(_from(rest, node.names, root))
            else:
                other.add(top)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".") if package else []
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, *([node.module] if node.module else [])])
            own.update(_from(target, node.names, root))
    return own, other


def _from(target: str, names: list[ast.alias], root: Path) -> set[str]:
    """``from target import names``: the submodules named, or ``target`` itself."""
    found = set()
    for alias in names:
        sub = f"{target}.{alias.name}" if target else alias.name
        folder = root.joinpath(*sub.split("."))
        is_module = folder.with_suffix(".py").exists() or (folder / "__init__.py").exists()
        found.add(sub if is_module else target)
    return found


def violations(root: Path, layers: list[Layer] = LAYERS) -> list[str]:
    """Every import in the package at ``root`` that points up a layer or is forbidden."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root) or "(the package itself)"
        mine = layer_of(module_name(path, root), layers)
        if mine is None:
            found.append(f"{name} is in no layer: add it to LAYERS (tests/test_architecture.py)")
            continue
        own, other = imports_of(path, root)
        for target in sorted(own):
            theirs = layer_of(target, layers)
            if theirs is None or theirs > mine:
                where = "no layer" if theirs is None else layers[theirs].name
                found.append(f"{name} ({layers[mine].name}) imports {target} ({where})")
        for top in sorted(other & set(layers[mine].forbids.split())):
            found.append(f"{name} ({layers[mine].name}) imports {top}, which that layer may not")
    return found


def test_every_import_points_down_the_layers() -> None:
    assert violations(PACKAGE) == []


def test_the_check_sees_an_import_that_points_up(tmp_path: Path) -> None:
    """The same check on a small package that breaks each rule once."""
    root = tmp_path / "labcrypto"
    (root / "lab").mkdir(parents=True)
    (root / "__init__.py").write_text("from .errors import LabCryptoError\n")
    (root / "errors.py").write_text("")
    (root / "groups.py").write_text("import socket\nfrom . import errors\n")
    (root / "keys.py").write_text("def f():\n    from .lab import helper\n")
    (root / "server.py").write_text("from labcrypto.cli import main\nimport matplotlib.pyplot\n")
    (root / "lab" / "__init__.py").write_text("")
    (root / "lab" / "helper.py").write_text("from .. import server, groups\n")
    (root / "cli.py").write_text("from .lab.helper import x\n")
    (root / "stray.py").write_text("")
    assert violations(root) == [
        "groups (protocol core) imports socket, which that layer may not",
        "keys (protocol core) imports lab.helper (lab)",
        "server (services) imports cli (cli)",
        "server (services) imports matplotlib, which that layer may not",
        "stray is in no layer: add it to LAYERS (tests/test_architecture.py)",
    ]


def test_a_name_covers_its_submodules_once_split() -> None:
    assert layer_of("ftp.server") == layer_of("ftp") == layer_of("wiretap.attacks")
    assert layer_of("lab.checks_01_keys") == layer_of("lab")
    assert layer_of("ftpx") is None and layer_of("labx") is None
