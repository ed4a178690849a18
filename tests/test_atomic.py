"""Atomic writes: the old version or the new one, never a partial file or folder."""

from __future__ import annotations

import pytest

from histo.io.atomic import atomic_directory, atomic_path, atomic_write_bytes, atomic_write_text, partial_leftovers


def test_write_text_and_bytes_replace(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "twö")
    assert target.read_text(encoding="utf-8") == "twö"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert partial_leftovers(tmp_path) == []


def test_atomic_path_keeps_suffix_and_old_file_on_error(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".csv" and tmp != target
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert partial_leftovers(tmp_path) == []


def test_atomic_path_without_a_write_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "x.txt"):
            pass
    assert not (tmp_path / "x.txt").exists()


def test_atomic_directory_replaces_only_when_complete(tmp_path):
    out = tmp_path / "results" / "slide"
    with atomic_directory(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(".")
        (tmp / "a.txt").write_text("first")
        assert not out.exists()  # nothing visible while the folder is built
    assert (out / "a.txt").read_text() == "first"

    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(out) as tmp:
            (tmp / "a.txt").write_text("second")
            (tmp / "b.txt").write_text("partial")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    assert (out / "a.txt").read_text() == "first"
    assert partial_leftovers(out.parent) == []

    with atomic_directory(out) as tmp:
        (tmp / "c.txt").write_text("third")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "d.txt").write_text("nested")
    assert sorted(p.name for p in out.iterdir()) == ["c.txt", "sub"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["slide"]  # old folder removed


def test_partial_leftovers_lists_killed_writers(tmp_path):
    (tmp_path / ".slide.partial-123-abcd").mkdir()
    (tmp_path / ".fibers.partial-1-x.csv").write_text("")
    (tmp_path / "slide").mkdir()
    assert [p.name for p in partial_leftovers(tmp_path)] == [".fibers.partial-1-x.csv", ".slide.partial-123-abcd"]
    assert partial_leftovers(tmp_path / "missing") == []
