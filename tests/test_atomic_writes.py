"""Tests of rainforest.atomic_writes: files written whole or not at all, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rainforest.atomic_writes import atomic_path, write_json, write_text


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name]


# --- atomic_path -----------------------------------------------------------------


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"  # parent is created
    with atomic_path(target) as temporary:
        assert temporary != target
        assert temporary.parent == target.parent
        temporary.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    assert _no_temporaries(target.parent)


def test_atomic_path_replaces_existing(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as temporary:
        temporary.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"


def test_atomic_path_failure_leaves_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as temporary:
        temporary.write_text("half-written")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _no_temporaries(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_failure_without_old_file(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temporary:
        temporary.write_text("x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_block_that_writes_nothing_fails(tmp_path):
    # Nothing written: the rename has nothing to move, so it is an error, not an empty file.
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out.txt"):
        pass
    assert list(tmp_path.iterdir()) == []


# --- write_json / write_text -----------------------------------------------------


def test_write_json_sorted_and_newline_terminated(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"b": 1, "a": {"z": 2.5, "y": [1, 2]}})
    text = path.read_text()
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    assert text.index('"a"') < text.index('"b"')
    assert text.index('"y"') < text.index('"z"')
    assert json.loads(text) == {"a": {"y": [1, 2], "z": 2.5}, "b": 1}
    assert text == json.dumps({"a": {"y": [1, 2], "z": 2.5}, "b": 1}, indent=2) + "\n"
    assert _no_temporaries(tmp_path)


def test_write_json_failure_keeps_old(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert _no_temporaries(tmp_path)


def test_write_text(tmp_path):
    path = tmp_path / "submission.csv"
    write_text(path, "recording_id,s0\na,0.5\n")
    assert path.read_text() == "recording_id,s0\na,0.5\n"
