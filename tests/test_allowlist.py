"""Tests for labcrypto.allowlist: the server's CSV list of allowed public keys."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labcrypto import groups, keys
from labcrypto.allowlist import HEADER, Allowlist, Entry
from labcrypto.errors import AllowlistError, LabCryptoError, NameNotOnAllowlist
from labcrypto.keys import PublicKey


def fresh_keys(count: int) -> list[PublicKey]:
    """``count`` different ffdhe2048 public keys (2 ms each)."""
    found: dict[int, PublicKey] = {}
    while len(found) < count:
        key = keys.generate(groups.FFDHE2048).public_key
        found[key.value] = key
    return list(found.values())


def bump_mtime(path: Path) -> None:
    """Move the file's mtime forward, so a same-size rewrite within one clock tick is seen."""
    info = path.stat()
    later = info.st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(later, later))


def write_rows(path: Path, rows: list[str], header: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([",".join(HEADER)] if header else []) + rows
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return tmp_path / "class" / "allowlist.csv"


# --- empty, add, remove, round trip ----------------------------------------------


def test_missing_file_is_an_empty_list_and_is_not_created(csv_path: Path) -> None:
    allow = Allowlist(csv_path)
    (key,) = fresh_keys(1)
    assert len(allow) == 0
    assert allow.entries() == []
    assert allow.problems == []
    assert not allow.is_allowed(key)
    assert key not in allow
    assert allow.name_of(key) is None
    assert not csv_path.exists()


def test_add_save_reload_remove_round_trip(csv_path: Path) -> None:
    alice, bob, carol = fresh_keys(3)
    allow = Allowlist(csv_path)
    added = allow.add("alice", alice, "group A, Tuesday")
    allow.add("bob", bob)
    assert csv_path.exists()
    assert added == Entry("alice", alice, "group A, Tuesday", 2)

    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(HEADER)
    assert len(lines) == 3

    again = Allowlist(csv_path)  # a second object: everything comes from the file
    assert [(e.name, e.key, e.comment) for e in again.entries()] == [
        ("alice", alice, "group A, Tuesday"),
        ("bob", bob, ""),
    ]
    assert again.name_of(bob) == "bob"
    assert again.is_allowed(alice) and alice in again
    assert not again.is_allowed(carol)
    assert again.problems == []

    removed = again.remove("bob")
    assert removed is not None and removed.key == bob
    third = Allowlist(csv_path)
    assert [e.name for e in third.entries()] == ["alice"]
    assert not third.is_allowed(bob)
    assert len(third) == 1


def test_the_file_holds_the_public_key_text_form(csv_path: Path) -> None:
    (key,) = fresh_keys(1)
    Allowlist(csv_path).add("alice", key)
    cell = csv_path.read_text(encoding="utf-8").splitlines()[1].split(",")[1]
    assert PublicKey.from_text(cell) == key
    assert cell == key.to_text()


def test_add_refuses_a_taken_name_or_a_known_key(csv_path: Path) -> None:
    alice, bob = fresh_keys(2)
    allow = Allowlist(csv_path)
    allow.add("alice", alice)
    with pytest.raises(AllowlistError, match="already on the allowlist"):
        allow.add("alice", bob)
    with pytest.raises(AllowlistError, match="already on the allowlist"):
        allow.add("ALICE", bob)  # names differing only in case would share a home folder
    with pytest.raises(AllowlistError, match="as 'alice'"):
        allow.add("alice2", alice)
    assert [(e.name, e.key) for e in allow.entries()] == [("alice", alice)]


@pytest.mark.parametrize("name", ["", "-rf", ".hidden", "a/b", "../etc", "x" * 65, "a b", "é"])
def test_add_refuses_names_that_are_not_key_names(csv_path: Path, name: str) -> None:
    (key,) = fresh_keys(1)
    with pytest.raises(AllowlistError, match="not allowed"):
        Allowlist(csv_path).add(name, key)
    assert not csv_path.exists()


def test_add_refuses_what_is_not_a_public_key_or_a_multiline_comment(csv_path: Path) -> None:
    (key,) = fresh_keys(1)
    allow = Allowlist(csv_path)
    with pytest.raises(AllowlistError, match="PublicKey"):
        allow.add("alice", key.to_text())  # type: ignore[arg-type]
    with pytest.raises(AllowlistError, match="one line"):
        allow.add("alice", key, "two\nlines")
    assert len(allow) == 0


def test_membership_is_by_key_not_by_name_or_address(csv_path: Path) -> None:
    (key,) = fresh_keys(1)
    allow = Allowlist(csv_path)
    allow.add("alice", key)
    with pytest.raises(TypeError, match="PublicKey"):
        _ = "alice" in allow
    with pytest.raises(TypeError, match="PublicKey"):
        allow.is_allowed("127.0.0.1")  # type: ignore[arg-type]


def test_remove_an_unknown_name_says_so(csv_path: Path) -> None:
    (key,) = fresh_keys(1)
    allow = Allowlist(csv_path)
    allow.add("alice", key)
    with pytest.raises(NameNotOnAllowlist, match="'bob' is not on the allowlist") as info:
        allow.remove("bob")
    assert isinstance(info.value, LabCryptoError)
    assert isinstance(info.value, LookupError)
    assert "alice" in str(info.value)  # the message lists the names there are
    assert allow.is_allowed(key)


# --- one key, many spellings ------------------------------------------------------


def spellings(key: PublicKey) -> list[str]:
    """Five ways to write the same key in the public_key cell."""
    digits = f"{key.value:x}"
    return [
        f"labcrypto-dh1 ffdhe2048 0x{digits.lower()}",
        f"labcrypto-dh1 FFDHE2048 0x{digits.upper()}",
        f"labcrypto-dh1 ffdhe2048 0x0000{digits}",
        f"  labcrypto-dh1 \t ffdhe2048    0x{digits}  ",
        f"labcrypto-dh1 ffdhe2048 {key.value}",
    ]


def test_one_key_has_one_spelling_on_the_allowlist(csv_path: Path) -> None:
    """Spaces around the words are CSV layout; the group and number have one spelling."""
    key, other = fresh_keys(2)
    texts = spellings(key)
    assert len(set(texts)) == 5  # really five different texts
    rows = [f"student{i},{text},spelling {i}" for i, text in enumerate(texts)]
    write_rows(csv_path, [*rows, f"zoe,{other.to_text()},"])
    allow = Allowlist(csv_path)

    assert [e.name for e in allow.entries()] == ["student0", "zoe"]
    for text in texts:
        spelled = PublicKey.from_text(text)  # the same key, however a reader spells it
        assert allow.is_allowed(spelled)
        assert allow.name_of(spelled) == "student0"
    # rows 3, 4 and 6: another spelling of the group or the number, reported with the fix;
    # row 5 (only spaces differ) is the same text: a duplicate of line 2
    assert len(allow.problems) == 4
    for line, problem in zip(range(3, 7), allow.problems, strict=True):
        assert problem.startswith(f"{csv_path}, line {line}:")
    assert "only ffdhe2048 keys" in allow.problems[0]
    assert f"write {key.value:#x}" in allow.problems[1]
    assert "already on line 2" in allow.problems[2]
    assert f"write {key.value:#x}" in allow.problems[3]

    for i, text in enumerate(texts):
        with pytest.raises(AllowlistError, match="student0"):
            allow.add(f"new{i}", PublicKey.from_text(text))


def test_remove_takes_the_key_away_even_from_a_skipped_duplicate_row(csv_path: Path) -> None:
    key, other = fresh_keys(2)
    texts = spellings(key)
    write_rows(csv_path, [f"alice,{texts[0]},", f"bob,{other.to_text()},", f"alias,{texts[3]},"])
    allow = Allowlist(csv_path)
    assert allow.name_of(key) == "alice" and len(allow.problems) == 1

    allow.remove("alice")
    assert not allow.is_allowed(key)  # the 'alias' row must not come back to life
    assert allow.problems == []
    assert [e.name for e in allow.entries()] == ["bob"]


# --- changes on disk -----------------------------------------------------------------


def test_edits_by_another_allowlist_object_are_seen(csv_path: Path) -> None:
    alice, bob = fresh_keys(2)
    server = Allowlist(csv_path)
    cli = Allowlist(csv_path)
    assert not server.is_allowed(alice)
    cli.add("alice", alice)
    assert server.is_allowed(alice)
    cli.add("bob", bob)
    assert server.name_of(bob) == "bob"
    cli.remove("alice")
    assert not server.is_allowed(alice)
    assert server.is_allowed(bob)


def test_a_raw_edit_of_the_file_is_seen_without_a_restart(csv_path: Path) -> None:
    alice, bob = fresh_keys(2)
    write_rows(csv_path, [f"alice,{alice.to_text()},", f"bob,{bob.to_text()},"])
    server = Allowlist(csv_path)
    assert server.is_allowed(alice) and server.is_allowed(bob)

    # The instructor deletes bob's row in an editor that rewrites the file in place.
    inode = csv_path.stat().st_ino
    with open(csv_path, "w", encoding="utf-8") as handle:
        handle.write(f"{','.join(HEADER)}\nalice,{alice.to_text()},\n")
    bump_mtime(csv_path)
    assert csv_path.stat().st_ino == inode  # same file: only size and mtime tell
    assert not server.is_allowed(bob)
    assert server.is_allowed(alice)

    # Same size, same inode, only the mtime differs: a changed comment letter.
    before = csv_path.read_text(encoding="utf-8")
    csv_path.write_text(before.replace("alice,", "alicf,"), encoding="utf-8")
    bump_mtime(csv_path)
    assert server.name_of(alice) == "alicf"

    csv_path.unlink()
    assert not server.is_allowed(alice)
    assert len(server) == 0


def test_reload_forces_a_read(csv_path: Path) -> None:
    (alice,) = fresh_keys(1)
    write_rows(csv_path, [f"alice,{alice.to_text()},"])
    allow = Allowlist(csv_path)
    assert allow.name_of(alice) == "alice"
    info = csv_path.stat()
    csv_path.write_text(csv_path.read_text().replace("alice,", "alicf,"))
    os.utime(csv_path, ns=(info.st_atime_ns, info.st_mtime_ns))  # hide the change
    allow.reload()
    assert allow.name_of(alice) == "alicf"


# --- bad files -----------------------------------------------------------------------


def test_malformed_rows_are_reported_by_line_and_skipped(csv_path: Path) -> None:
    good1, good2, dup = fresh_keys(3)
    rows = [
        f"alice,{good1.to_text()},fine",  # line 2
        "too,few",  # 3: not a key
        f"many,{good2.to_text()},a,b",  # 4: four columns
        "mallory,labcrypto-dh1 ffdhe2048 0x1,",  # 5: forbidden value
        "eve,labcrypto-dh1 nosuchgroup 0x1234,",  # 6: unknown group
        "pat,labcrypto-dh1 ffdhe2048 0xZZ,",  # 7: not a number
        f"bad name,{dup.to_text()},",  # 8: name with a space
        f"alice,{dup.to_text()},",  # 9: name taken
        '"broken,quote',  # 10: CSV syntax
        "",  # 11: blank, ignored
        "# a comment line, ignored",  # 12
        f"bob,{good2.to_text()}",  # 13: two columns, no comment: fine
    ]
    write_rows(csv_path, rows)
    allow = Allowlist(csv_path)

    reported = [int(p.split(", line ")[1].split(":")[0]) for p in allow.problems]
    assert reported == [3, 4, 5, 6, 7, 8, 9, 10]
    assert all(p.startswith(f"{csv_path}, line ") for p in allow.problems)
    assert "3 columns" in allow.problems[1]
    assert "forbidden" in allow.problems[2]
    assert "only ffdhe2048 keys" in allow.problems[3]
    assert "already on line 2" in allow.problems[6]
    assert [(e.name, e.line) for e in allow.entries()] == [("alice", 2), ("bob", 13)]
    assert allow.is_allowed(good1) and allow.is_allowed(good2)
    assert not allow.is_allowed(dup)


def test_add_keeps_rows_with_problems_and_comments(csv_path: Path) -> None:
    alice, bob = fresh_keys(2)
    write_rows(csv_path, ["# instructor notes", f"alice,{alice.to_text()},", "oops,not a key,"])
    before = csv_path.read_bytes()
    allow = Allowlist(csv_path)
    allow.add("bob", bob)
    after = csv_path.read_bytes()
    assert after.startswith(before)  # appended, nothing rewritten
    assert len(allow.problems) == 1 and "line 4" in allow.problems[0]
    assert allow.is_allowed(alice) and allow.is_allowed(bob)


def test_an_empty_file_is_reported(csv_path: Path) -> None:
    csv_path.parent.mkdir(parents=True)
    csv_path.write_bytes(b"")
    allow = Allowlist(csv_path)
    assert len(allow) == 0
    assert len(allow.problems) == 1 and "empty" in allow.problems[0]
    (key,) = fresh_keys(1)
    allow.add("alice", key)  # the header is written first
    assert csv_path.read_text().splitlines()[0] == ",".join(HEADER)
    assert allow.problems == [] and allow.is_allowed(key)


def test_a_missing_header_is_reported_and_the_rows_still_read(csv_path: Path) -> None:
    (key,) = fresh_keys(1)
    write_rows(csv_path, [f"alice,{key.to_text()},"], header=False)
    allow = Allowlist(csv_path)
    assert len(allow.problems) == 1
    assert "line 1" in allow.problems[0] and "header" in allow.problems[0]
    assert allow.name_of(key) == "alice"


def test_non_utf8_bytes_are_reported_and_the_rest_works(csv_path: Path) -> None:
    alice, bob = fresh_keys(2)
    csv_path.parent.mkdir(parents=True)
    csv_path.write_bytes(
        b"\xef\xbb\xbfname,public_key,comment\n"  # a spreadsheet's byte-order mark
        + f"alice,{alice.to_text()},\n".encode()
        + b"j\xf6rg,labcrypto-dh1 ffdhe2048 0x2,latin-1\n"
        + f"bob,{bob.to_text()},\n".encode()
    )
    allow = Allowlist(csv_path)
    assert len(allow.problems) == 1
    assert "line 3" in allow.problems[0] and "UTF-8" in allow.problems[0]
    assert allow.is_allowed(alice) and allow.is_allowed(bob)
    allow.remove("bob")  # editing keeps the undecodable line as it was
    assert b"j\xf6rg" in csv_path.read_bytes()
    assert not allow.is_allowed(bob) and allow.is_allowed(alice)


def test_a_directory_instead_of_a_file_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "allowlist.csv").mkdir()
    allow = Allowlist(tmp_path / "allowlist.csv")
    assert len(allow) == 0
    assert len(allow.problems) == 1 and "cannot read" in allow.problems[0]


_LINE_PARTS = st.sampled_from(
    [
        b"name,public_key,comment",
        b"alice,",
        b"labcrypto-dh1 ",
        b"toy23 ",
        b"0x",
        b"1f",
        b"5",
        b",",
        b'"',
        b"\n",
        b"\r",
        b"\r\n",
        b"#",
        b" ",
        b"\xff",
        b"\xef\xbb\xbf",
        b"ffdhe2048 ",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.one_of(st.binary(max_size=300), st.lists(_LINE_PARTS, max_size=40).map(b"".join)))
def test_any_bytes_are_read_without_an_exception(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    allow = Allowlist(path)
    entries = allow.entries()
    assert all(isinstance(problem, str) for problem in allow.problems)
    assert len({e.key for e in entries}) == len(entries)  # never one key twice
    assert len({e.name.casefold() for e in entries}) == len(entries)
    for entry in entries:
        assert allow.name_of(entry.key) == entry.name


# --- saving ----------------------------------------------------------------------------


def test_saving_leaves_no_temporary_files(csv_path: Path) -> None:
    some = fresh_keys(4)
    allow = Allowlist(csv_path)
    for i, key in enumerate(some):
        allow.add(f"s{i}", key)
    allow.remove("s1")
    allow.remove("s3")
    assert sorted(os.listdir(csv_path.parent)) == ["allowlist.csv"]
    assert [e.name for e in Allowlist(csv_path).entries()] == ["s0", "s2"]


def test_a_failed_save_leaves_the_old_file_whole(
    csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = fresh_keys(2)
    allow = Allowlist(csv_path)
    allow.add("alice", alice)
    before = csv_path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        allow.add("bob", bob)
    monkeypatch.undo()
    assert csv_path.read_bytes() == before
    assert sorted(os.listdir(csv_path.parent)) == ["allowlist.csv"]
    assert not allow.is_allowed(bob) and allow.is_allowed(alice)


def test_saving_keeps_the_file_permissions(csv_path: Path) -> None:
    alice, bob = fresh_keys(2)
    allow = Allowlist(csv_path)
    allow.add("alice", alice)
    os.chmod(csv_path, 0o600)
    allow.add("bob", bob)
    assert csv_path.stat().st_mode & 0o777 == 0o600


# --- threads -----------------------------------------------------------------------------


def test_readers_never_see_a_half_written_file(csv_path: Path) -> None:
    stable, *changing = fresh_keys(5)
    Allowlist(csv_path).add("stable", stable)
    writer_list = Allowlist(csv_path)
    reader_list = Allowlist(csv_path)  # shared by every reader thread
    stop = threading.Event()
    failures: list[str] = []
    reads = [0] * 6

    def reader(slot: int) -> None:
        deadline = time.monotonic() + 5
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                if not reader_list.is_allowed(stable):
                    failures.append("the stable key vanished")
                if reader_list.problems:
                    failures.append(f"problems seen: {reader_list.problems}")
                if not 1 <= len(reader_list) <= 1 + len(changing):
                    failures.append(f"odd length {len(reader_list)}")
            except Exception as exc:  # any exception in a reader is a failure
                failures.append(repr(exc))
            reads[slot] += 1

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(len(reads))]
    for thread in threads:
        thread.start()
    try:
        for _round in range(10):
            for i, key in enumerate(changing):
                writer_list.add(f"k{i}", key)
            for i in range(len(changing)):
                writer_list.remove(f"k{i}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert all(count > 0 for count in reads)
    assert [e.name for e in reader_list.entries()] == ["stable"]
