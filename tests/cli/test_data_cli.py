"""``keel data`` as a user runs it: checks that block, diffs that show statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import run_keel


def write_table(path: Path, rows: int, shift: float = 0.0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "id": np.arange(rows),
        "amount": rng.normal(100 + shift, 10, rows).round(2),
        "country": rng.choice(["DE", "FR", "US"], rows),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_diff_shows_changed_column_statistics(backend: str, tmp_path: Path) -> None:
    write_table(tmp_path / "data" / "t.csv", 2000)
    assert run_keel("data", "add", "data", "--name", "tx").returncode == 0
    write_table(tmp_path / "data" / "t.csv", 2500, shift=30, seed=1)
    assert run_keel("data", "add", "data", "--name", "tx", "-m", "shifted").returncode == 0
    result = run_keel("data", "diff", "tx@1", "tx@2")
    assert result.returncode == 0, result.stderr
    assert "~ t.csv" in result.stdout
    assert "rows 2000 -> 2500" in result.stdout
    amount = next(line for line in result.stdout.splitlines() if line.strip("│ ").startswith(
        "amount"))
    assert "yes" in amount  # its distribution moved
    data = json.loads(run_keel("data", "diff", "tx@1", "tx@2", "--json").stdout)
    assert "amount" in data["tables"]["t.csv"]["moved_columns"]


def test_failing_check_blocks_the_version_and_prints_failing_rows(backend: str,
                                                                  tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 3], "amount": [10.0, -5.0, 20.0, None],
                          "country": ["DE", "FR", "XX", "US"]})
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "t.csv", index=False)
    (tmp_path / "keel.toml").write_text(
        '[datasets.tx.checks]\nnot_null = ["amount"]\nunique = ["id"]\n'
        'ranges = { amount = [0, 1000] }\nallowed = { country = ["DE", "FR", "US"] }\n')
    refused = run_keel("data", "add", "data", "--name", "tx", "--check")
    assert refused.returncode == 1
    assert "quality check(s) failed" in refused.stderr and "--allow-failing" in refused.stderr
    out = refused.stdout
    assert "FAIL" in out and "not_null(amount)" in out and '"row": 3' in out
    assert '"amount": -5.0' in out and '"country": "XX"' in out
    assert "no dataset 'tx'" in run_keel("data", "log", "tx").stderr  # nothing was created
    kept = run_keel("data", "add", "data", "--name", "tx", "--check", "--allow-failing")
    assert kept.returncode == 0 and "Created tx@1" in kept.stdout
    assert "fail" in run_keel("data", "log", "tx").stdout


def test_status_checkout_and_show(backend: str, tmp_path: Path) -> None:
    write_table(tmp_path / "data" / "t.csv", 100)
    run_keel("data", "add", "data", "--name", "tx")
    assert "up to date" in run_keel("data", "status", "tx").stdout
    write_table(tmp_path / "data" / "t.csv", 50, seed=3)
    assert "modified t.csv" in " ".join(run_keel("data", "status", "tx").stdout.split())
    refused = run_keel("data", "checkout", "tx@1")
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert run_keel("data", "checkout", "tx@1", "--force").returncode == 0
    assert "up to date" in run_keel("data", "status", "tx").stdout
    profile = run_keel("data", "profile", "tx@1")
    assert profile.returncode == 0 and "amount" in profile.stdout and "100 rows" in profile.stdout
    shown = json.loads(run_keel("data", "show", "tx@1", "--json").stdout)
    assert shown["ref"] == "tx@1" and shown["runs"] == []


def test_remote_errors_are_shown_whole_and_create_nothing(backend: str, tmp_path: Path) -> None:
    no_remote = run_keel("data", "push")
    assert no_remote.returncode == 1
    assert "[remote]" in no_remote.stderr  # TOML table names survive the terminal markup
    missing = tmp_path / "typo-remote"
    pulled = run_keel("data", "pull", "--remote", str(missing))
    assert pulled.returncode == 1 and "holds no dataset versions" in pulled.stderr
    assert not missing.exists()  # a mistyped remote is not created


# -- issue 10: checkout, worktree versions, names and escaping ---------------------


def write_files(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    return root


def test_checkout_onto_a_file_is_one_clear_error(backend: str, tmp_path: Path) -> None:
    write_files(tmp_path / "data", {"a.txt": "1", "b/c.txt": "2"})
    assert run_keel("data", "add", "data", "--name", "raw").returncode == 0
    (tmp_path / "notes.txt").write_text("mine")
    for dest in ("notes.txt", "notes.txt/sub"):
        result = run_keel("data", "checkout", "raw@1", dest)
        assert result.returncode == 1
        assert result.stderr.startswith("error:") and "hint:" in result.stderr
        assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
        assert "notes.txt is a file" in " ".join(result.stderr.split())
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_checkout_link_option(backend: str, tmp_path: Path) -> None:
    import os

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(os.urandom((1 << 20) + 1))
    assert run_keel("data", "add", "data", "--name", "raw").returncode == 0
    done = run_keel("data", "checkout", "raw@1", "out", "--link", "hardlink")
    assert done.returncode == 0, done.stderr
    assert os.stat(tmp_path / "out" / "big.bin").st_nlink == 2
    bad = run_keel("data", "checkout", "raw@1", "out2", "--link", "softlink")
    assert bad.returncode == 2 and "softlink" in bad.stderr


def test_status_and_add_name_the_version_checked_out(backend: str, tmp_path: Path) -> None:
    data = write_files(tmp_path / "data", {"red.txt": "1"})
    run_keel("data", "add", "data", "--name", "wine")
    write_files(data, {"red.txt": "2"})
    run_keel("data", "add", "data", "--name", "wine")
    assert run_keel("data", "checkout", "wine@1").returncode == 0
    assert "wine@1: up to date" in run_keel("data", "status", "wine").stdout
    added = run_keel("data", "add", "data", "--name", "wine")
    assert added.returncode == 0
    said = " ".join(added.stdout.split())
    assert "identical to wine@1 (the latest is wine@2); no new version created" in said
    assert "wine@3" not in run_keel("data", "log", "wine").stdout


def test_the_cli_uses_the_shared_name_validator(backend: str, tmp_path: Path) -> None:
    write_files(tmp_path / "data", {"a.txt": "1"})
    for bad in ("wine\n", "wine\x1b[31m"):
        for args in (("data", "add", "data", "--name", bad), ("data", "log", bad),
                     ("data", "status", bad)):
            result = run_keel(*args)
            assert result.returncode == 1 and "bad dataset name" in result.stderr, args
            assert "\x1b" not in result.stderr


def test_listings_never_print_stored_text_raw(backend: str, tmp_path: Path) -> None:
    import keel.data
    from keel.workspace import Workspace

    write_files(tmp_path / "data", {"a.txt": "1"})
    run_keel("data", "add", "data", "--name", "raw", "-m", "note \x1b[2J wiped")
    # A name written by another tool (or an older keel) straight into the store.
    ws = Workspace.open(tmp_path)
    try:
        version = keel.data.get("raw", ws=ws)
        ws.store.add_dataset_version("evil\x1b[31m", {
            "manifest_digest": version.manifest_digest, "files": 1, "bytes": 1,
            "message": "\x1b]0;owned\x07", "created_at": 0, "user": "x\x1b[1m",
            "source": "data\x1b[5m"})
    finally:
        ws.close()
    for args in (("data", "list"), ("data", "log", "raw"), ("data", "show", "raw@1")):
        result = run_keel(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "\x1b" not in result.stdout, args
    assert "evil\\x1b[31m" in run_keel("data", "list").stdout
    assert "note \\x1b[2J wiped" in run_keel("data", "log", "raw").stdout


def test_file_names_are_shown_literally(backend: str, tmp_path: Path) -> None:
    data = write_files(tmp_path / "data", {"a.txt": "1"})
    run_keel("data", "add", "data", "--name", "raw")
    write_files(data, {"[bold]x.txt": "2"})
    (data / "evil\x1b[2J.txt").write_text("3")
    status = run_keel("data", "status", "raw")
    assert "\x1b" not in status.stdout and "evil\\x1b[2J.txt" in status.stdout
    assert "[bold]x.txt" in status.stdout
    (data / "evil\x1b[2J.txt").unlink()
    run_keel("data", "add", "data", "--name", "raw")
    assert "+ [bold]x.txt" in run_keel("data", "diff", "raw@1", "raw@2").stdout
