"""The one writer: atomic files and report sets, one-line errors, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from rocstack.errors import RocstackError
from rocstack.fsutil import check_writable, write_atomic, write_tree_atomic


def test_write_atomic_refuses_a_directory_in_one_line(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(RocstackError, match="is a directory"):
        write_atomic(tmp_path / "out", "x")
    assert os.listdir(tmp_path / "out") == []


def test_write_atomic_unwritable_is_one_line_and_leaves_nothing(tmp_path):
    (tmp_path / "plain").write_text("a file where a directory should be")
    with pytest.raises(RocstackError, match="cannot write .*plain/f.json"):
        write_atomic(tmp_path / "plain" / "f.json", "x")
    assert sorted(os.listdir(tmp_path)) == ["plain"]


def test_check_writable_refuses_before_the_work(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(RocstackError, match="--log .* is a directory"):
        check_writable(tmp_path / "d", "--log")
    assert check_writable(tmp_path / "new" / "deep" / "f.log", "--log") == tmp_path / "new" / "deep" / "f.log"
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(RocstackError, match="not writable"):
        check_writable(afile / "below" / "f.log", "--log")


def _write_set(args):
    directory, marker = args
    for _ in range(20):
        write_tree_atomic(directory, {"a.txt": marker * 1000, "b.txt": marker})
    return marker


def test_two_processes_writing_one_report_dir_each_leave_a_whole_set(tmp_path):
    target = tmp_path / "reports"
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert sorted(pool.map(_write_set, [(target, "x"), (target, "y")])) == ["x", "y"]
    a, b = (target / "a.txt").read_text(), (target / "b.txt").read_text()
    assert b in ("x", "y") and a == b * 1000  # one writer's complete set, never a mix
    assert sorted(os.listdir(tmp_path)) == ["reports"]  # no temp or lock files left


def test_tree_over_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(RocstackError, match="is a file, not a directory"):
        write_tree_atomic(tmp_path / "f", {"a": "b"})
