"""Every command ends in one error line and a hint, never a raw traceback."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import run_keel


def test_an_unexpected_error_is_one_line_with_the_traceback_in_a_file(tmp_path: Path) -> None:
    assert run_keel("init").returncode == 0
    spool = tmp_path / ".keel" / "spool"
    spool.rmdir()
    spool.write_text("a file where keel keeps a folder")  # an environment keel does not expect
    result = run_keel("runs", "list", process=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: unexpected ")
    assert "KEEL_DEBUG=1" in result.stderr
    logs = list((tmp_path / ".keel" / "logs").glob("keel-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in result.stderr.replace("\n", "")
    assert "Traceback (most recent call last)" in logs[0].read_text()

    debug = run_keel("runs", "list", env={"KEEL_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def test_keel_errors_print_error_and_hint_only(tmp_path: Path) -> None:
    result = run_keel("runs", "show", "abc")  # no workspace here
    assert result.returncode == 1
    assert result.stderr.startswith("error: no .keel/ found")
    assert "hint: run `keel init`" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / ".keel").exists()


def test_usage_errors_keep_their_usage_message(tmp_path: Path) -> None:
    result = run_keel("runs", "list", "--no-such-option")
    assert result.returncode == 2
    assert "No such option" in result.stderr and "Traceback" not in result.stderr


def test_a_truncated_pack_index_does_not_stop_other_commands(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.txt").write_text(f"file {i}\n")
    assert run_keel("init").returncode == 0
    assert run_keel("data", "add", "data", "--name", "small").returncode == 0
    indexes = list((tmp_path / ".keel" / "blobs" / "packs").glob("*.idx"))
    assert indexes
    for index in indexes:
        os.truncate(index, 7)
    listed = run_keel("runs", "list")
    assert listed.returncode == 0, listed.stderr
    shown = run_keel("data", "list")
    assert shown.returncode == 0, shown.stderr
    checked_out = run_keel("data", "checkout", "small@1", "restored")
    assert checked_out.returncode == 0, checked_out.stderr  # rebuilt from its pack
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == \
        [f"{i}.txt" for i in range(5)]
