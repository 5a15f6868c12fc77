"""The home-directory jail: paths as words, walks that never follow links, atomic files."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from labcrypto.errors import BadPathName, FileServiceError, PathOutsideHome, PathRefused
from labcrypto.jail import (
    AtomicFile,
    FileInfo,
    Jail,
    check_name,
    open_directory,
    show_path,
    split_path,
)

# --- paths as words ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "cwd", "names"),
    [
        ("/", "/", ()),
        (".", "/docs", ("docs",)),
        ("a.txt", "/docs", ("docs", "a.txt")),
        ("/a.txt", "/docs", ("a.txt",)),
        ("../b", "/docs/sub", ("docs", "b")),
        ("a//b/./c/", "/", ("a", "b", "c")),
        ("x/..", "/", ()),
        ("..", "/docs", ()),
        ("café ünïcode.txt", "/", ("café ünïcode.txt",)),
        ("with space", "/", ("with space",)),
    ],
)
def test_split_path_reads_words(path: str, cwd: str, names: tuple[str, ...]) -> None:
    assert split_path(path, cwd) == names


@pytest.mark.parametrize(
    "path",
    ["..", "/..", "../x", "a/../../x", "/a/b/../../../etc/passwd", "./../alice2"],
)
def test_climbing_above_the_home_is_refused(path: str) -> None:
    with pytest.raises(PathOutsideHome, match="above your home"):
        split_path(path)


@pytest.mark.parametrize(
    "name",
    [
        "a\x00b",  # NUL
        "..\\etc",  # backslash
        "a\nb",  # control character
        "a\x7fb",  # DEL
        "a\u202eb",  # right-to-left override (invisible, reorders the display)
        "a\u200bb",  # zero-width space
        "..\u2215etc",  # DIVISION SLASH
        "..\u2044etc",  # FRACTION SLASH
        "..\uff0fetc",  # FULLWIDTH SOLIDUS (NFKC makes it '/')
        "..\u29f8etc",  # BIG SOLIDUS
        "\u2024\u2024",  # ONE DOT LEADER twice: NFKC makes it '..'
        "e\u0301",  # decomposed é: NFKC composes it, two spellings of one name
        "ﬁle",  # ligature fi
        "a" * 256,  # over NAME_MAX
        "\udc80",  # a lone surrogate (not valid text)
    ],
)
def test_odd_names_are_refused(name: str) -> None:
    with pytest.raises(BadPathName):
        check_name(name)
    with pytest.raises(PathRefused):
        split_path(f"docs/{name}")


def test_long_paths_are_refused_before_touching_the_disk() -> None:
    split_path("/".join(["d" * 200] * 20))  # 4019 bytes: fine
    with pytest.raises(BadPathName, match="too long"):
        split_path("/".join(["d" * 200] * 21))


def test_show_path() -> None:
    assert show_path(()) == "/"
    assert show_path(("docs", "a.txt")) == "/docs/a.txt"


# --- the walk ----------------------------------------------------------------------------


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    """root/alice with a folder, root/alice2 (the sibling-prefix trap), and an outside secret."""
    root = tmp_path / "root"
    (root / "alice" / "docs").mkdir(parents=True)
    (root / "alice" / "docs" / "a.txt").write_text("alice's")
    (root / "alice2").mkdir()
    (root / "alice2" / "secret.txt").write_text("alice2's secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("outside secret")
    os.symlink(tmp_path / "outside", root / "alice" / "link_dir")
    os.symlink(tmp_path / "outside" / "secret.txt", root / "alice" / "link_file")
    os.symlink("../alice2", root / "alice" / "sibling")
    return root


def read(jail: Jail, path: str) -> bytes:
    fd = jail.open_file(split_path(path))
    try:
        return os.read(fd, 1000)
    finally:
        os.close(fd)


def test_home_is_created_on_first_use(tmp_path: Path) -> None:
    with Jail.open(tmp_path, "bob") as jail:
        assert jail.listdir(()) == []
    assert (tmp_path / "bob").is_dir()
    assert (tmp_path / "bob").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_bad_home_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        Jail.open(tmp_path, name)


@pytest.mark.parametrize(
    "path", ["link_dir/secret.txt", "link_file", "sibling/secret.txt", "docs/../link_file"]
)
def test_links_are_never_followed(homes: Path, path: str) -> None:
    with Jail.open(homes, "alice") as jail, pytest.raises(PathOutsideHome, match="link"):
        read(jail, path)


def test_a_link_is_listed_and_removed_as_itself(homes: Path) -> None:
    with Jail.open(homes, "alice") as jail:
        kinds = {entry.name: entry.kind for entry in jail.listdir(())}
        assert kinds == {"docs": "dir", "link_dir": "link", "link_file": "link", "sibling": "link"}
        assert [e.kind for e in jail.listdir(("link_dir",))] == ["link"]  # not its target
        with pytest.raises(PathOutsideHome):
            jail.listdir(("link_dir", "x"))
        jail.remove(("link_file",))
    assert (homes.parent / "outside" / "secret.txt").read_text() == "outside secret"


def test_writing_through_a_link_is_refused(homes: Path) -> None:
    with Jail.open(homes, "alice") as jail:
        with pytest.raises(FileServiceError):
            jail.writer(("link_file",), overwrite=True)
        with pytest.raises(PathOutsideHome):
            jail.writer(("link_dir", "new.txt"))
        with pytest.raises(PathOutsideHome):
            jail.mkdir(("link_dir", "new"))
    assert sorted(os.listdir(homes.parent / "outside")) == ["secret.txt"]


def test_the_home_itself_cannot_be_removed_or_renamed(homes: Path) -> None:
    with Jail.open(homes, "alice") as jail:
        for action in (
            lambda: jail.rmdir(()),
            lambda: jail.remove(()),
            lambda: jail.rename((), ("x",)),
            lambda: jail.rename(("docs",), ()),
        ):
            with pytest.raises(PathOutsideHome, match="home folder itself"):
                action()
    assert (homes / "alice" / "docs" / "a.txt").exists()


def test_an_open_folder_stays_inside_when_swapped_for_a_link(homes: Path) -> None:
    """The check is the use: a descriptor opened before the swap still means the old folder."""
    with Jail.open(homes, "alice") as jail, jail.directory(("docs",)) as fd:
        os.rename(homes / "alice" / "docs", homes / "alice" / "moved")
        os.symlink(homes.parent / "outside", homes / "alice" / "docs")
        assert os.listdir(fd) == ["a.txt"]  # still the real folder, now called "moved"
        with pytest.raises(PathOutsideHome):
            read(jail, "docs/secret.txt")  # a new walk meets the link and stops


def test_a_link_swapped_in_by_another_process_never_leads_out(homes: Path) -> None:
    """One thread flips docs between a folder and a link to outside; reads never escape."""
    home = homes / "alice"
    (home / "docs" / "secret.txt").write_text("inside")
    stop = threading.Event()

    def flip() -> None:
        for _ in range(20_000):
            if stop.is_set():
                return
            os.rename(home / "docs", home / "real")
            os.symlink(homes.parent / "outside", home / "docs")
            os.unlink(home / "docs")
            os.rename(home / "real", home / "docs")
            time.sleep(0)  # let the reader run while the real folder is in place

    flipper = threading.Thread(target=flip)
    flipper.start()
    seen = set()
    try:
        with Jail.open(homes, "alice") as jail:
            for _ in range(3000):
                try:
                    seen.add(read(jail, "docs/secret.txt"))
                except FileServiceError:
                    seen.add(b"refused")
            stop.set()
            flipper.join(10)
            # The flipper always ends with the real folder back: the jail still reads it.
            assert read(jail, "docs/secret.txt") == b"inside"
    finally:
        stop.set()
        flipper.join(10)
    assert b"outside secret" not in seen
    assert seen <= {b"inside", b"refused"}


def test_sibling_with_a_common_prefix_is_out_of_reach(homes: Path) -> None:
    with Jail.open(homes, "alice") as jail:
        for path in ("../alice2/secret.txt", "/../alice2/secret.txt"):
            with pytest.raises(PathOutsideHome):
                read(jail, path)
        with pytest.raises(FileServiceError, match="no such"):
            read(jail, "/alice2/secret.txt")  # '/' is alice's home: there is no alice2 in it


def test_fifo_is_refused_without_blocking(homes: Path) -> None:
    os.mkfifo(homes / "alice" / "pipe")
    with Jail.open(homes, "alice") as jail, pytest.raises(FileServiceError, match="regular"):
        read(jail, "pipe")


def test_errors_show_the_users_path_never_the_real_one(homes: Path) -> None:
    with Jail.open(homes, "alice") as jail, pytest.raises(FileServiceError) as caught:
        read(jail, "docs/missing.txt")
    assert "/docs/missing.txt" in str(caught.value)
    assert str(homes) not in str(caught.value)


def test_usage_counts_files_but_not_link_targets(homes: Path) -> None:
    (homes / "alice" / "docs" / "big").write_bytes(b"x" * 1000)
    with Jail.open(homes, "alice") as jail:
        assert jail.usage() == 1000 + len("alice's")


# --- atomic files ----------------------------------------------------------------------


def test_atomic_file_lands_whole_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("old")
    fd = open_directory(str(tmp_path))
    try:
        with AtomicFile(fd, "f.txt", overwrite=True) as target:
            target.write(b"new ")
            assert (tmp_path / "f.txt").read_text() == "old"
            assert len(os.listdir(tmp_path)) == 2  # the temporary is beside it
        assert (tmp_path / "f.txt").read_text() == "old"  # not committed: aborted
        assert os.listdir(tmp_path) == ["f.txt"]

        with AtomicFile(fd, "f.txt", overwrite=True) as target:
            target.write(b"new")
            target.commit()
        assert (tmp_path / "f.txt").read_text() == "new"

        with AtomicFile(fd, "f.txt", overwrite=False) as target:
            target.write(b"newer")
            with pytest.raises(FileServiceError, match="already exists"):
                target.commit()
        assert (tmp_path / "f.txt").read_text() == "new"
        assert os.listdir(tmp_path) == ["f.txt"]
    finally:
        os.close(fd)


def test_a_listing_row_shows_the_time_as_people_read_it():
    """``ls`` in a notebook table: a date and a minute, not seconds since 1970."""
    moment = datetime(2026, 12, 1, 14, 5, 59)
    entry = FileInfo("notes.txt", "file", 42, moment.timestamp())
    row = entry.row()
    assert row == {"name": "notes.txt", "kind": "file", "size": 42, "mtime": "2026-12-01 14:05"}
    assert entry.when == row["mtime"]
