"""The Russian instructor's documents keep up with the English ones (issue 16).

INSTRUCTORS.ru.md and GRADING.ru.md are translations a person writes; nothing
regenerates them. So when someone adds a section or a command to the English
original and forgets the Russian, these tests fail and say what differs: the
headings (their number and levels, in order), the commands (the code blocks,
comments aside, and every inline command), and the documents each links to.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: English original → its Russian version.
PAIRS = {"INSTRUCTORS.md": "INSTRUCTORS.ru.md", "GRADING.md": "GRADING.ru.md"}

#: An inline code span that starts with one of these is a command a reader types.
COMMAND_WORDS = (
    "labcrypto ", "nbgrader ", "make ", "python ", "python3 ", "sudo ", "pip ", ".venv/bin/",
    "mkdir ", "chmod ", "git ", "pytest ", "jupyter ", "LABCRYPTO_", "curl ",
)  # fmt: skip

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMENT = re.compile(r"(?:^|\s)#(?:\s.*)?$")  # a shell comment: "# ..." or a lone "#"
LINK = re.compile(r"\]\(([^)#]+\.md)\)")
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _prose(text: str) -> str:
    """The document without its fenced code blocks."""
    return FENCE.sub("", text)


def headings(text: str) -> list[int]:
    """The level of each heading, in order (``## Foo`` → 2), code blocks left out."""
    return [len(m.group(1)) for m in re.finditer(r"^(#+) \S", _prose(text), re.MULTILINE)]


def code_blocks(text: str) -> list[list[str]]:
    """Each fenced block's lines with shell comments and blank lines removed.

    A translation may translate the comments; every command stays as written.
    """
    blocks = []
    for match in FENCE.finditer(text):
        lines = [COMMENT.sub("", line).rstrip() for line in match.group(1).splitlines()]
        blocks.append([line for line in lines if line.strip()])
    return blocks


def inline_commands(text: str) -> set[str]:
    """The inline code spans of the prose that are commands (``labcrypto serve``, …)."""
    spans = (" ".join(m.group(1).split()) for m in re.finditer(r"`([^`]+)`", _prose(text)))
    return {span for span in spans if span.startswith(COMMAND_WORDS)}


def links(text: str, *, russian: bool) -> set[str]:
    """The Markdown documents linked to; in a Russian text, ``X.ru.md`` counts as ``X.md``."""
    found = set(LINK.findall(text))
    return {name.replace(".ru.md", ".md") for name in found} if russian else found


def test_the_helpers_see_what_they_should() -> None:
    """The comparisons below are only as good as these readers: a small document of each kind."""
    text = (
        "# T\n\n## A\n\nrun `labcrypto serve` or `x = 1`, see [g](GRADING.md)\n\n"
        "```bash\nmake test   # the tests\n# a comment line\n```\n\n### B\n"
    )
    assert headings(text) == [1, 2, 3]
    assert code_blocks(text) == [["make test"]]
    assert inline_commands(text) == {"labcrypto serve"}
    assert links(text, russian=False) == {"GRADING.md"}
    assert links("[x](GRADING.ru.md)", russian=True) == {"GRADING.md"}


@pytest.mark.parametrize("english", sorted(PAIRS))
def test_russian_document_has_the_same_sections(english: str) -> None:
    """Same number of headings at the same levels, in the same order."""
    ours, theirs = headings(_read(english)), headings(_read(PAIRS[english]))
    assert theirs == ours, (
        f"{PAIRS[english]} has headings at levels {theirs}, {english} at {ours}: "
        f"translate the section that was added to (or removed from) {english}"
    )


@pytest.mark.parametrize("english", sorted(PAIRS))
def test_russian_document_names_the_same_commands(english: str) -> None:
    """Every code block and every inline command of the original, unchanged, in the translation."""
    original, russian = _read(english), _read(PAIRS[english])
    assert code_blocks(russian) == code_blocks(original), (
        f"the code blocks of {PAIRS[english]} differ from {english}'s (only comments may be "
        "translated): copy the changed commands over"
    )
    missing = inline_commands(original) - inline_commands(russian)
    extra = inline_commands(russian) - inline_commands(original)
    assert not missing and not extra, (
        f"{PAIRS[english]}: commands missing {sorted(missing)}, not in {english} {sorted(extra)}"
    )


def code_spans(text: str) -> set[str]:
    """Every inline code span of the prose (names, paths, commands, numbers in a table)."""
    return {" ".join(m.group(1).split()) for m in re.finditer(r"`([^`]+)`", _prose(text))}


def untranslated_spans(english: str, russian: str) -> list[str]:
    """The English text's code spans the Russian lacks, beyond the ones it translated.

    A span may be translated (a message a student reads, quoted in Russian): each span
    of the Russian text with Cyrillic in it stands in for one missing English span.
    """
    missing = code_spans(english) - code_spans(russian)
    translated = [s for s in code_spans(russian) - code_spans(english) if CYRILLIC.search(s)]
    return sorted(missing) if len(missing) > len(translated) else []


@pytest.mark.parametrize("english", sorted(PAIRS))
def test_russian_document_names_the_same_things(english: str) -> None:
    """Every name, path and value the original writes as code (the exercises of a table,
    a setting, a file) is in the translation too: a row added in English shows up here."""
    missing = untranslated_spans(_read(english), _read(PAIRS[english]))
    assert not missing, f"{PAIRS[english]} does not mention {missing}, which {english} does"


def test_a_span_added_to_the_original_is_caught() -> None:
    russian = "`public_value` и `→ Объяснение: блокнот 01`"
    assert untranslated_spans("`public_value` and `→ Explained in notebook 01`", russian) == []
    assert untranslated_spans(
        "`public_value`, `dh_server` and `→ Explained in notebook 01`", russian
    ) == ["dh_server", "→ Explained in notebook 01"]


@pytest.mark.parametrize("english", sorted(PAIRS))
def test_russian_document_links_the_same_documents(english: str) -> None:
    """The same documents are linked (each to its Russian version where one exists)."""
    original, russian = _read(english), _read(PAIRS[english])
    ours = links(original, russian=False) - {PAIRS[english]}
    theirs = links(russian, russian=True) - {english}
    assert theirs == ours
    for name in LINK.findall(russian):
        assert (ROOT / name).exists(), f"{PAIRS[english]} links to {name}, which does not exist"
        if name != english and name.replace(".md", ".ru.md") in PAIRS.values():
            pytest.fail(f"{PAIRS[english]} links to {name}: link its Russian version instead")


def test_each_document_links_its_other_language() -> None:
    for english, russian in PAIRS.items():
        assert f"]({russian})" in _read(english), f"{english} does not link {russian}"
        assert f"]({english})" in _read(russian), f"{russian} does not link {english}"
    readme = _read("README.ru.md")
    for russian in PAIRS.values():
        assert f"]({russian})" in readme, f"README.ru.md does not link {russian}"


def _section(text: str, heading: str) -> str:
    """The text under the ``## `` heading that starts with ``heading``, up to the next one."""
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section «{heading}»"
    return match.group(1)


def test_readme_ru_protocol_names_what_the_english_one_does() -> None:
    """README.ru.md's protocol section says what README.md's says (the current handshake):
    the same messages, fields, key terms, modes and groups, written as code."""
    english = _section(_read("README.md"), "The protocol in one screen")
    russian = _section(_read("README.ru.md"), "Протокол на одном экране")

    def spans(text: str) -> set[str]:
        return {" ".join(m.split()) for m in re.findall(r"`([^`]+)`", text)}

    assert spans(russian) == spans(english)
    from labcrypto import handshake

    for term in ("ee = Y^x", "es = B^x", "se = Y^a", "ss = B^a", "client_finished"):
        assert term in spans(russian)
    assert set(handshake.MODES) <= spans(russian)
