"""The package as a whole: a light import, and ruff-clean code."""

from __future__ import annotations

import subprocess
import sys


def test_import_labcrypto_is_light():
    code = (
        "import sys, labcrypto; "
        "heavy = ['socketserver', 'labcrypto.server', 'labcrypto.chat', 'ipywidgets', "
        "'matplotlib', 'labcrypto.widgets', 'labcrypto.plots', 'labcrypto.lab.widgets', "
        "'labcrypto.lab.plots']; "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_protocol_core_imports_no_sockets_threads_or_widgets():
    code = (
        "import sys; import labcrypto.groups, labcrypto.keys, labcrypto.ciphers, "
        "labcrypto.handshake; "
        "print([m for m in ('socket', 'threading', 'ipywidgets', 'matplotlib') "
        "if m in sys.modules and m not in before])"
    )
    prelude = "import sys; before = set(sys.modules); "
    out = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def _requirements() -> dict[str, str]:
    """requirements.txt as {name: version range}, without comments and the local package."""
    from pathlib import Path

    found = {}
    for line in (Path(__file__).parents[1] / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and line != ".":
            name = line.split(">")[0].split("<")[0].split("=")[0]
            found[name] = line[len(name) :]
    return found


def test_requirements_txt_and_pyproject_ask_for_the_same_ranges():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    declared = {}
    for spec in project["dependencies"] + project["optional-dependencies"]["lab"]:
        name = spec.split(">")[0].split("<")[0].split("=")[0]
        declared[name] = spec[len(name) :]
    assert _requirements() == declared
