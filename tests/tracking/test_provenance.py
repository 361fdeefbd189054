"""Every run records where its code and environment came from."""

from __future__ import annotations

import subprocess
from pathlib import Path

import keel
from keel.tracking import provenance


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(root: Path) -> str:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    git(root, "remote", "add", "origin", "https://alice:s3cret@example.com/team/proj.git")
    (root / "train.py").write_text("print('v1')\n")
    (root / ".gitignore").write_text(".keel/\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    return git(root, "rev-parse", "HEAD")


def test_git_commit_branch_remote_and_dirty_diff(backend: str, tmp_path: Path) -> None:
    commit = make_repo(tmp_path)
    (tmp_path / "train.py").write_text("print('v2 uncommitted')\n")
    provenance._git_cache.clear()
    with keel.start_run() as run:
        pass
    tags = keel.get_run(run.id).tags
    assert tags["keel.git.commit"] == commit
    assert tags["keel.git.branch"] == "main"
    assert tags["keel.git.dirty"] == "true"
    assert tags["keel.git.remote"] == "https://example.com/team/proj.git"  # no credentials
    keel.download_artifacts(run.id, "keel/git.diff", dst=tmp_path / "back")
    assert "v2 uncommitted" in (tmp_path / "back" / "keel" / "git.diff").read_text()


def test_clean_repo_has_no_diff(backend: str, tmp_path: Path) -> None:
    make_repo(tmp_path)
    provenance._git_cache.clear()
    with keel.start_run() as run:
        pass
    assert keel.get_run(run.id).tags["keel.git.dirty"] == "false"
    assert "keel/git.diff" not in {a.path for a in keel.list_artifacts(run.id)}


def test_outside_git_it_says_so(backend: str, tmp_path: Path) -> None:
    provenance._git_cache.clear()
    with keel.start_run() as run:
        pass
    tags = keel.get_run(run.id).tags
    assert tags["keel.git.status"] == "not a git repository"
    assert "keel.git.commit" not in tags


def test_environment_and_entry_point_are_recorded(backend: str, tmp_path: Path) -> None:
    with keel.start_run() as run:
        pass
    tags = keel.get_run(run.id).tags
    assert tags["keel.python"].startswith("3.")
    assert tags["keel.host"] and tags["keel.user"]
    assert "keel.source.entrypoint" in tags and "keel.source.argv" in tags
    keel.download_artifacts(run.id, "keel/requirements.txt", dst=tmp_path / "back")
    frozen = (tmp_path / "back" / "keel" / "requirements.txt").read_text().lower()
    assert "sqlalchemy==" in frozen and "keel==" in frozen
