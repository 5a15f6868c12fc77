"""Messages in the reader's language: English by default, Russian from a catalog.

The lab speaks to students in two places: the notebooks (checks, widgets,
plots) and the ``labcrypto`` command. Both say what they say through this
module, with the standard library's ``gettext``::

    from labcrypto.i18n import _, ngettext

    _("wrote {path}").format(path=key_path)              # translate, then fill in
    ngettext("{n} key", "{n} keys", count).format(n=count)

The English text in the code *is* the message id. The Russian text lives in
``labcrypto/locale/ru/LC_MESSAGES/labcrypto.po`` and, compiled, in the
``.mo`` file beside it (shipped with the package: nothing to build at
install time). A message without a Russian translation is shown in English,
and a test fails until someone translates it.

Which language:

1. ``set_language("ru")`` — the first cell of a Russian notebook;
2. else the ``LABCRYPTO_LANG`` environment variable (``ru``, ``en``);
3. else the locale: the first of ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``,
   ``LANG`` that is set (``ru_RU.UTF-8`` → Russian), as every gettext
   program does;
4. else English.

``set_language`` writes ``LABCRYPTO_LANG``, so a ``!labcrypto ...`` command
started from a Russian notebook answers in Russian too.

Three rules keep translations safe:

- Fill placeholders *after* translating: ``_("… {path}").format(path=p)``,
  never ``_(f"… {p}")`` (that would look up a message nobody wrote;
  ``ruff``'s INT rules refuse it).
- A message marked for later with ``N_("…")`` (a module-level constant) is
  translated where it is shown, with ``_(CONSTANT)``; a table of them is a
  ``Messages`` dict, whose lookups translate.
- An error is raised with its English template and the values that fill
  it: ``KeyNotAllowed(N_("… {fingerprint} …"), fingerprint=fp)``. Its
  ``str`` is in the current language (the traceback a student reads);
  ``in_english(exc)`` is what a server writes to its log and sends on the
  wire, so neither changes language with the process (``labcrypto/errors.py``).

A new message: write it in English with ``_()`` (or ``N_()`` in a table),
run ``make catalog``, write its Russian in the ``.po``, run ``make catalog``
again (it compiles the ``.mo``). ``tests/test_i18n.py`` fails until then.
"""

from __future__ import annotations

import contextlib
import functools
import gettext as _gettext
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "Messages",
    "_",
    "argparse_in_language",
    "gettext",
    "language",
    "ngettext",
    "set_language",
]

DOMAIN = "labcrypto"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "ru")  # English first: the default and the language of the code
ENV_VAR = "LABCRYPTO_LANG"
LOCALE_VARS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")  # gettext's order


def _language_code(value: str) -> str:
    """``"ru_RU.UTF-8"`` → ``"ru"``, ``"en-GB"`` → ``"en"``, ``"C"`` → ``"c"``."""
    return value.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()


def language() -> str:
    """The language messages are shown in now: ``"en"`` or ``"ru"``."""
    chosen = os.environ.get(ENV_VAR, "")
    if chosen.strip():
        code = _language_code(chosen)
        return code if code in LANGUAGES else "en"
    for var in LOCALE_VARS:
        value = os.environ.get(var, "")
        if value:
            # LANGUAGE may list several ("ru:en"): the first one we speak wins.
            for item in value.split(":"):
                if _language_code(item) in LANGUAGES:
                    return _language_code(item)
            return "en"
    return "en"


def set_language(code: str) -> str:
    """Show messages in ``code`` (``"ru"`` or ``"en"``) from now on; return it.

    The first cell of a Russian notebook calls ``set_language("ru")``.
    """
    wanted = _language_code(code)
    if wanted not in LANGUAGES:
        raise ValueError(f"language {code!r} is not available: choose one of {LANGUAGES}")
    os.environ[ENV_VAR] = wanted
    return wanted


@functools.cache
def _catalog(code: str) -> _gettext.NullTranslations:
    """The compiled catalog of one language, read once (English: the messages as written)."""
    if code == "en":
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[code], fallback=True)


def gettext(message: str) -> str:
    """``message`` in the current language (unchanged if it has no translation)."""
    return _catalog(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message that fits the number ``n`` (Russian has three)."""
    return _catalog(language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for translation without translating it yet (translate with ``_``)."""
    return message


_ = gettext


class Messages(dict[str, str]):
    """One exercise's texts by key, translated when looked up: ``TABLE["wrong"]``.

    The values are the English texts, each marked ``N_("...")`` so that
    ``make catalog`` finds them; ``TABLE[key]`` gives the text in the current
    language, ready for ``.format``. A checks module keeps each check's texts
    together in one of these, and the hints it picks from it come back
    translated too. (Only lookups by key translate; ``.values()`` is English.)
    """

    def __getitem__(self, key: str) -> str:
        return gettext(super().__getitem__(key))


# The words argparse itself prints, which a student meets in ``labcrypto``'s help
# and errors. argparse looks them up with gettext; ``argparse_in_language`` sends
# those look-ups here, and these marks put them into our catalog.
ARGPARSE_MESSAGES = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("invalid %(type)s value: %(value)r"),
    N_("expected one argument"),
    N_("expected at least one argument"),
    N_("expected at most one argument"),
    N_("ignored explicit argument %r"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
)


@contextlib.contextmanager
def argparse_in_language() -> Iterator[None]:
    """While inside, argparse's own words ("usage:", "options", its errors) are translated.

    argparse translates with the functions it imported from ``gettext`` when it
    was first imported, reading the process-wide default domain. Rather than
    change that domain for every library in the process, we point argparse's
    two names at ours for the duration of one command, then put them back.
    """
    import argparse

    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    argparse._, argparse.ngettext = gettext, ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]
