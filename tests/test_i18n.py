"""Messages in two languages: choosing the language, and catalogs that stay complete.

The catalog tests read the code the way ``make catalog`` does (Babel's
extractor) and fail when a message has no Russian translation, when a
translation lost or gained a placeholder, or when the compiled ``.mo`` that
ships with the package no longer matches the ``.po`` it was built from.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import gettext
import re
import string
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from labcrypto import i18n

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "labcrypto"
PO = i18n.LOCALE_DIR / "ru" / "LC_MESSAGES" / "labcrypto.po"
MO = PO.with_suffix(".mo")
POT = i18n.LOCALE_DIR / "labcrypto.pot"


@pytest.fixture
def no_language_set(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with neither LABCRYPTO_LANG nor any locale variable."""
    for var in (i18n.ENV_VAR, *i18n.LOCALE_VARS):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


# --- choosing the language ------------------------------------------------------


def test_english_is_the_default(no_language_set) -> None:
    assert i18n.language() == "en"
    assert i18n._("usage: ") == "usage: "


def test_the_locale_chooses_in_gettext_order(no_language_set) -> None:
    no_language_set.setenv("LANG", "ru_RU.UTF-8")
    assert i18n.language() == "ru"
    no_language_set.setenv("LC_ALL", "C.UTF-8")  # LC_ALL comes before LANG
    assert i18n.language() == "en"
    no_language_set.setenv("LANGUAGE", "de:ru:en")  # a list: the first we speak
    assert i18n.language() == "ru"
    no_language_set.setenv("LANGUAGE", "fr_FR")  # nothing we speak: English
    assert i18n.language() == "en"


def test_labcrypto_lang_wins_over_the_locale(no_language_set) -> None:
    no_language_set.setenv("LANG", "ru_RU.UTF-8")
    no_language_set.setenv(i18n.ENV_VAR, "en")
    assert i18n.language() == "en"
    no_language_set.setenv("LANG", "en_US.UTF-8")
    no_language_set.setenv(i18n.ENV_VAR, "ru")
    assert i18n.language() == "ru"
    no_language_set.setenv(i18n.ENV_VAR, "klingon")  # unknown: English, never a crash
    assert i18n.language() == "en"


def test_set_language_is_what_a_russian_notebook_calls(no_language_set) -> None:
    assert i18n.set_language("ru_RU") == "ru"
    assert i18n.language() == "ru"
    assert i18n._("usage: ") != "usage: "
    # A command started from that notebook inherits the language.
    out = subprocess.run(
        [sys.executable, "-c", "from labcrypto import i18n; print(i18n.language())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "ru"
    with pytest.raises(ValueError, match="'de' is not available"):
        i18n.set_language("de")
    assert i18n.language() == "ru"  # a refused choice changes nothing
    i18n.set_language("en")
    assert i18n._("usage: ") == "usage: "


def test_placeholders_are_filled_after_translation(monkeypatch) -> None:
    monkeypatch.setenv(i18n.ENV_VAR, "ru")
    message = i18n._("%(prog)s: error: %(message)s\n") % {"prog": "labcrypto", "message": "x"}
    assert message == "labcrypto: ошибка: x\n"


def test_a_table_of_messages_translates_on_lookup(monkeypatch) -> None:
    table = i18n.Messages({"usage": i18n.N_("usage: "), "new": "not in the catalog yet"})
    monkeypatch.setenv(i18n.ENV_VAR, "ru")
    assert table["usage"] == "Использование: "
    assert table["new"] == "not in the catalog yet"  # untranslated: English, not an error
    monkeypatch.setenv(i18n.ENV_VAR, "en")
    assert table["usage"] == "usage: "


def test_argparse_speaks_russian_only_inside_the_block(monkeypatch) -> None:
    monkeypatch.setenv(i18n.ENV_VAR, "ru")
    with i18n.argparse_in_language():
        parser = argparse.ArgumentParser(prog="demo")
        parser.add_argument("--count", type=int)
        text = parser.format_help()
        with pytest.raises(SystemExit):
            parser.parse_args(["--count", "many"])
    assert "Использование: demo" in text and "параметры:" in text
    assert "показать эту справку и выйти" in text
    assert "usage:" not in text and "options:" not in text
    # Outside the block argparse is back to its own words.
    assert "usage: demo" in argparse.ArgumentParser(prog="demo").format_help()


def test_importing_i18n_is_cheap() -> None:
    code = (
        "import sys; before = set(sys.modules); import labcrypto.i18n; "
        "print(sorted(m for m in ('argparse', 'babel', 'locale', 'socket', 'threading') "
        "if m in sys.modules and m not in before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_protocol_core_answers_in_english_whatever_the_language(no_language_set) -> None:
    """The core's errors speak the reader's language (labcrypto/errors.py), but what a
    server sends its peer stays English: a Russian process refuses a key in English."""
    from labcrypto import handshake
    from labcrypto.errors import KeyNotAllowed
    from labcrypto.groups import TOY
    from labcrypto.keys import generate

    no_language_set.setenv(i18n.ENV_VAR, "ru")
    server_key = generate(TOY)
    # The toy group has few keys: a client holding the server's own key would be
    # refused for that instead. Draw until it differs (1 in 20 each time; bounded).
    client_key = next(
        key for key in (generate(TOY) for _ in range(200)) if key.public != server_key.public
    )
    server = handshake.ServerHandshake(server_key, "toy", allow=lambda key: False)
    client = handshake.ClientHandshake(client_key, "toy")
    with pytest.raises(KeyNotAllowed) as refused:
        server.receive(client.start())
    assert "нет в списке разрешённых ключей" in str(refused.value)
    sent = handshake.decode_message(server.error_message(refused.value))
    assert sent["code"] == "not_allowed"
    assert sent["message"].endswith("is not on the allowlist"), sent
    assert not re.search("[а-яё]", sent["message"], re.IGNORECASE)


# --- the catalogs ---------------------------------------------------------------


def code_messages() -> dict[str, tuple[str, ...]]:
    """Every message marked in the package's code, as ``make catalog`` extracts it.

    Key: the msgid; value: (msgid,) or (msgid, msgid_plural) for ngettext.
    """
    found: dict[str, tuple[str, ...]] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(PACKAGE):
        ids = (message,) if isinstance(message, str) else tuple(message)
        found[ids[0]] = ids
    return found


def russian_catalog() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="ru")


_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")


def placeholders(text: str) -> set[str]:
    """The ``{name}`` fields and ``%(name)s``/``%s`` directives a message is filled with."""
    fields = {
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        for _, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    }
    return fields | {d for d in _PERCENT.findall(text) if d != "%%"}


def translation_problems(message: Message) -> list[str]:
    """What is wrong with one entry of the Russian catalog (nothing: an empty list)."""
    ids = message.id if isinstance(message.id, tuple) else (message.id,)
    texts = message.string if isinstance(message.string, tuple) else (message.string,)
    if message.fuzzy:
        return [f"{ids[0]!r}: marked fuzzy (check the translation, then remove the mark)"]
    if not all(texts):
        return [f"{ids[0]!r}: no Russian translation"]
    wanted = set().union(*(placeholders(i) for i in ids))
    problems = []
    for text in texts:
        # Every Russian form keeps every field: form 0 serves 1 but also 21, 31, ...
        if placeholders(text) != wanted:
            problems.append(
                f"{ids[0]!r}: translation {text!r} has {sorted(placeholders(text))}, "
                f"the message has {sorted(wanted)}"
            )
    return problems


def test_every_message_in_the_code_has_a_russian_translation() -> None:
    catalog = russian_catalog()
    messages = code_messages()
    assert len(messages) >= len(i18n.ARGPARSE_MESSAGES)  # the extractor found the marks
    problems = []
    for msgid in sorted(messages):
        entry = catalog.get(msgid)
        if entry is None:
            problems.append(f"{msgid!r}: not in the .po (run `make catalog`, then translate)")
        else:
            problems += translation_problems(entry)
    assert problems == []


def test_translations_keep_their_placeholders() -> None:
    problems = [p for entry in russian_catalog() if entry.id for p in translation_problems(entry)]
    assert problems == []


def test_the_placeholder_check_catches_a_lost_or_added_placeholder() -> None:
    """The check above can fail: a translation that drops or invents a field is caught."""
    good = Message("wrote {path}", "записан файл {path}")
    lost = Message("wrote {path}", "файл записан")
    added = Message("wrote {path}", "записан файл {path} ({size})")
    renamed = Message("%(prog)s: error: %(message)s\n", "%(prog)s: ошибка: %(msg)s\n")
    unlimited = Message("returned {got!r:.60}", "вернула {got}")  # the repr and the limit
    plural = Message(("{n} key", "{n} keys"), ("{n} ключ", "{n} ключа", "ключей"))
    untranslated = Message("wrote {path}", "")
    assert translation_problems(good) == []
    for bad in (lost, added, renamed, unlimited, plural, untranslated):
        assert len(translation_problems(bad)) == 1, bad.id


def test_the_template_lists_exactly_the_messages_in_the_code() -> None:
    with POT.open("rb") as f:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    assert template == set(code_messages()), "run `make catalog` to refresh labcrypto.pot"


def test_the_compiled_catalog_matches_the_po() -> None:
    """The .mo the package ships says exactly what the .po says (`make catalog` compiles it)."""
    with MO.open("rb") as f:
        compiled = dict(gettext.GNUTranslations(f)._catalog)  # type: ignore[attr-defined]
    compiled.pop("", None)  # the header
    expected: dict[object, str] = {}
    for entry in russian_catalog():
        if not entry.id or entry.fuzzy or not entry.string:
            continue  # the header; and what `make catalog` leaves out until it is translated
        if isinstance(entry.id, tuple):
            for index, text in enumerate(entry.string):
                expected[(entry.id[0], index)] = text
        else:
            expected[entry.id] = entry.string
    assert compiled == expected, "the .mo is out of date: run `make catalog`"


def test_russian_has_three_plural_forms() -> None:
    with MO.open("rb") as f:
        plural = gettext.GNUTranslations(f).plural  # type: ignore[attr-defined]
    # 1 ключ, 2 ключа, 5 ключей, 11 ключей, 21 ключ, 22 ключа, 112 ключей
    assert [plural(n) for n in (1, 2, 5, 11, 21, 22, 112)] == [0, 1, 2, 2, 0, 1, 2]


def test_the_compiled_catalog_ships_with_the_package() -> None:
    """pyproject's package data picks up the .mo (a wheel or `pip install .` carries it)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["labcrypto"]
    relative = MO.relative_to(PACKAGE).as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


def test_argparse_still_uses_the_words_we_translated() -> None:
    """A Python whose argparse rewords a message would show the new words untranslated."""
    source = Path(argparse.__file__).read_text(encoding="utf-8")
    used = {
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("_", "ngettext")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert set(i18n.ARGPARSE_MESSAGES) <= used


# --- JupyterLab itself ----------------------------------------------------------


def test_jupyterlab_has_its_russian_language_pack() -> None:
    """Settings → Language → Russian is there because the pack is in the requirements."""
    from importlib.metadata import entry_points

    packs = {e.name for e in entry_points(group="jupyterlab.languagepack")}
    assert "ru_RU" in packs
    requirements = (REPO / "requirements.txt").read_text()
    assert re.search(r"^jupyterlab-language-pack-ru-ru\b", requirements, re.MULTILINE)


# --- the command line in Russian ------------------------------------------------

COMMANDS = [[], ["keygen"], ["allow"], ["allow", "add"], ["allow", "list"], ["allow", "remove"]]
COMMANDS += [["serve"], ["chat"], ["ftp-serve"], ["ftp"]]

# Prose: two English words in a row ("one port", "the server"). Option names,
# metavars, paths and values ("--pool", "FIRST-LAST", "keys/", "secure") are not.
_ENGLISH_PROSE = re.compile(r"(?<![-\w./'{])[a-z]{2,} [a-z]{2,}(?![-\w./'}])")


def english_prose(help_text: str) -> list[str]:
    """The lines of a help text that still read as English prose (examples and usage aside)."""
    found = []
    in_usage = False
    for line in help_text.splitlines():
        in_usage = line.startswith(("usage:", "Использование:")) or (in_usage and bool(line))
        if in_usage or line.strip().startswith("labcrypto "):
            continue  # the usage lists options; an example's comment is checked on its own
        if _ENGLISH_PROSE.search(line):
            found.append(line)
    return found


def cli_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    from labcrypto.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "labcrypto")
def test_every_help_page_is_russian_with_labcrypto_lang_ru(command, capsys, monkeypatch) -> None:
    english = cli_help(command, capsys)
    assert english_prose(english), "the check must see English where there is English"
    monkeypatch.setenv(i18n.ENV_VAR, "ru")
    russian = cli_help(command, capsys)
    assert russian.startswith("Использование: labcrypto")
    assert "показать эту справку и выйти" in russian
    assert english_prose(russian) == []
    # Example comments are Russian too; the commands in them are unchanged.
    for line in russian.splitlines():
        if line.strip().startswith("labcrypto ") and "#" in line:
            assert not _ENGLISH_PROSE.search(line.split("#", 1)[1]), line
    assert commands_in(russian) == commands_in(english)


def test_labcrypto_help_prints_russian_and_english_by_default(no_language_set) -> None:
    """What a person types: ``LABCRYPTO_LANG=ru labcrypto --help``, and the same without it."""
    script = Path(sys.executable).with_name("labcrypto")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "labcrypto"]
    english = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert english.returncode == 0 and english.stdout.startswith("usage: labcrypto")
    assert "Key exchange and secure channels" in english.stdout
    no_language_set.setenv(i18n.ENV_VAR, "ru")
    russian = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert russian.returncode == 0 and russian.stdout.startswith("Использование: labcrypto")
    assert "Обмен ключами и защищённые каналы" in russian.stdout
    assert "занятие за пять команд" in russian.stdout


def test_cli_errors_are_russian(tmp_path, capsys, monkeypatch) -> None:
    from labcrypto.cli import main

    monkeypatch.setenv(i18n.ENV_VAR, "ru")
    with pytest.raises(SystemExit) as exit_info:  # argparse's own error
        main(["chat", "--message", "hi"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "labcrypto chat: ошибка: не указаны обязательные аргументы: --key" in err
    with pytest.raises(SystemExit):
        main(["keygen", "x", "--group", "rsa"])
    assert "недопустимое значение 'rsa'" in capsys.readouterr().err
    # The CLI's own error: a missing key file, and what to do about it.
    assert main(["chat", "--key", "alice", "--keys-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ошибка: нет файла ключа ") and "labcrypto keygen alice" in err
    assert "преподавателя" in err
    # And its messages: a key pair written.
    assert main(["keygen", "alice", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(закрытый ключ: храните в секрете" in out and "отпечаток: " in out


def test_russian_counts_take_three_forms(monkeypatch) -> None:
    monkeypatch.setenv(i18n.ENV_VAR, "ru")
    said = {
        n: i18n.ngettext("{count} key", "{count} keys", n).format(count=n) for n in (1, 3, 5, 21)
    }
    assert said == {1: "1 ключ", 3: "3 ключа", 5: "5 ключей", 21: "21 ключ"}
    monkeypatch.setenv(i18n.ENV_VAR, "en")
    assert i18n.ngettext("{count} key", "{count} keys", 21).format(count=21) == "21 keys"


_COMMAND = re.compile(r"labcrypto(?: [-\w./{}=]+)+")


def commands_in(text: str) -> list[str]:
    """The ``labcrypto ...`` commands a text shows (they must never be translated)."""
    return sorted(_COMMAND.findall(text))


def test_translations_keep_the_commands_they_show() -> None:
    """``labcrypto keygen alice`` stays itself in Russian; only the prose around it changes."""
    problems = []
    for entry in russian_catalog():
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        texts = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for text in texts:
            if ids[0] and text and commands_in(text) != commands_in(ids[0]):
                problems.append((ids[0], commands_in(ids[0]), commands_in(text)))
    assert problems == []


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_OWN_SCOPES = (*_SCOPES, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _binds_underscore(scope: ast.AST) -> list[int]:
    """Lines where ``scope`` itself (not a nested function or comprehension) assigns ``_``."""
    found, stack = [], list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store):
            found.append(node.lineno)
        if not isinstance(node, _OWN_SCOPES):
            stack.extend(ast.iter_child_nodes(node))
    return found


def _calls_underscore(scope: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_"
        for node in ast.walk(scope)
    )


def test_no_module_that_translates_rebinds_underscore() -> None:
    """``key_path, _ = ...`` beside a ``_("...")`` turns every later message into a crash."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports_underscore = any(
            isinstance(node, ast.ImportFrom) and any(alias.name == "_" for alias in node.names)
            for node in ast.walk(tree)
        )
        if not imports_underscore:
            continue
        scopes = [tree, *(node for node in ast.walk(tree) if isinstance(node, _SCOPES))]
        for scope in scopes:
            if scope is tree or _calls_underscore(scope):
                problems += [
                    f"{path.relative_to(REPO)}:{line}" for line in _binds_underscore(scope)
                ]
    assert problems == []


def test_readme_ru_is_linked_and_says_what_works() -> None:
    """README.ru.md: linked from README.md, its two commands exist, its JupyterLab setting works."""
    import json

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    russian = (REPO / "README.ru.md").read_text(encoding="utf-8")
    assert "(README.ru.md)" in readme and "(README.md)" in russian
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make (\w+)", russian, re.MULTILINE):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
    assert "Settings → Language" in russian
    override = json.loads(re.search(r"```json\n(.*?)\n```", russian, re.DOTALL).group(1))
    locale = override["@jupyterlab/translation-extension:plugin"]["locale"]
    from importlib.metadata import entry_points

    assert locale in {e.name for e in entry_points(group="jupyterlab.languagepack")}


# --- the checks in Russian (notebook 01's; the other checks modules are still English) --


def _overwriting_key_file(path: Path) -> object:
    """A student's load_or_create_key with course mistake 8: a new key on every run."""
    import os

    from labcrypto import groups, keys

    pair = keys.generate(groups.FFDHE2048)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as file:
        file.write(f"private: {pair.private:#x}\n")
    return pair


WRONG_ANSWERS = {
    # name: (check, the student's wrong code, English words, the Russian that names the mistake)
    "base and exponent swapped": (
        "check_public_value",
        lambda group, a: pow(a, group.g, group.p),
        "the base and exponent are swapped",
        "основание и показатель степени перепутаны",
    ),
    "peer's value as the exponent (mistake 4)": (
        "check_shared_secret",
        lambda group, a, peer: pow(a, peer, group.p),
        "course mistake 4",
        "открытое значение собеседника стоит в показателе степени (типичная ошибка № 4)",
    ),
    "public values never checked (mistake 1)": (
        "check_shared_secret",
        lambda group, a, peer: pow(peer, a, group.p),
        "course mistake 1",
        "вместо отказа: при 0 получается K = 0",
    ),
    "a new key on every run (mistake 8)": (
        "check_load_or_create_key",
        _overwriting_key_file,
        "course mistake 8",
        "Второй вызов перезаписал файл ключа",
    ),
}


def _failure(check_name: str, student_code: object) -> str:
    from labcrypto.lab import checks_01_keys

    with pytest.raises(AssertionError) as failure:
        getattr(checks_01_keys, check_name)(student_code)
    return str(failure.value)


@pytest.mark.parametrize("mistake", WRONG_ANSWERS)
def test_a_russian_wrong_answer_gets_a_russian_message_naming_the_mistake(
    mistake, monkeypatch
) -> None:
    check_name, student_code, english_words, russian_words = WRONG_ANSWERS[mistake]
    monkeypatch.setenv(i18n.ENV_VAR, "en")
    assert english_words in _failure(check_name, student_code)
    monkeypatch.setenv(i18n.ENV_VAR, "ru")
    russian = _failure(check_name, student_code)
    assert russian_words in russian
    # The message is Russian throughout, down to the pointer to the Russian edition's
    # section (formulas are formulas).
    assert "→ Объяснение: блокнот 01_keys, раздел «" in russian
    assert [line for line in russian.splitlines() if _ENGLISH_PROSE.search(line)] == []


def test_a_russian_right_answer_is_praised_in_russian(capsys, monkeypatch) -> None:
    from labcrypto.lab import checks_01_keys

    monkeypatch.setenv(i18n.ENV_VAR, "ru")
    checks_01_keys.check_public_value(lambda group, a: pow(group.g, a, group.p))
    assert capsys.readouterr().out.startswith("✔ public_value верна: проверено примеров — ")


def _headings(notebook: Path) -> set[str]:
    import json

    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return {line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")}


def test_translated_section_names_are_the_russian_editions_headings() -> None:
    """A check names the section that explains it; in Russian, the Russian edition's heading."""
    catalog = russian_catalog()
    checked = 0
    for english_notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        russian_notebook = REPO / "notebooks" / "ru" / english_notebook.name
        if not russian_notebook.exists():
            continue
        russian_headings = _headings(russian_notebook)
        for heading in _headings(english_notebook):
            entry = catalog.get(heading)
            if entry is not None and entry.string:
                assert entry.string in russian_headings, (english_notebook.name, heading)
                checked += 1
    assert checked >= 4  # notebook 01's four exercises, at least
