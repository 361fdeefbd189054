"""The command line starts fast: ``keel --help`` loads no heavy library.

Timing goals live in bench/cli.py; this pins what makes them reachable, so a
module-level import of pandas or SQLAlchemy in a command module fails here.
"""

from __future__ import annotations

import textwrap

from tests.conftest import run_python

HEAVY = ("pandas", "sqlalchemy", "sklearn", "matplotlib", "pyarrow", "numpy", "fsspec")


def _imported_by(*argv: str) -> list[str]:
    code = textwrap.dedent(f"""
        import sys
        sys.argv = ["keel", *{list(argv)!r}]
        from keel.cli.main import main
        try:
            main()
        except SystemExit:
            pass
        print(",".join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    last = (result.stderr.strip().splitlines() or [""])[-1]
    return [m for m in last.split(",") if m]


def test_keel_help_imports_no_heavy_library() -> None:
    assert _imported_by("--help") == []


def test_subcommand_help_imports_no_heavy_library() -> None:
    for group in (("runs", "--help"), ("data", "--help"), ("model", "promote", "--help")):
        assert _imported_by(*group) == [], group


def test_import_keel_loads_no_heavy_library() -> None:
    result = run_python("import sys, keel\n"
                        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_no_change_data_status_opens_no_database(backend: str, tmp_path: object) -> None:
    from pathlib import Path

    import keel.data

    folder = Path(str(tmp_path)) / "data"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(str(i))
    keel.data.add(folder, "small")
    code = textwrap.dedent("""
        import sys
        sys.argv = ["keel", "data", "status", "small"]
        from keel.cli.main import main
        try:
            main()
        except SystemExit as exit_:
            assert exit_.code in (0, None), exit_.code
        print(",".join(m for m in ("sqlalchemy", "pandas", "numpy") if m in sys.modules),
              file=sys.stderr)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert result.stderr.strip().splitlines()[-1:] in ([""], [])


def _loaded_by(argv: list[str], modules: tuple[str, ...]) -> tuple[str, list[str]]:
    """What a command printed, and which of ``modules`` it imported."""
    code = textwrap.dedent(f"""
        import sys
        sys.argv = ["keel", *{argv!r}]
        from keel.cli.main import main
        try:
            main()
        except SystemExit as exit_:
            assert exit_.code in (0, None), exit_.code
        print(",".join(m for m in {modules!r} if m in sys.modules), file=sys.stderr)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    last = (result.stderr.strip().splitlines() or [""])[-1]
    return result.stdout, [m for m in last.split(",") if m]


def test_short_commands_import_no_sqlalchemy_on_the_embedded_store(tmp_path: object) -> None:
    """`keel runs list`, a cached `keel pipeline run` and `keel data checkout` read
    the embedded store through the standard library (0.2-0.3 s less each), and
    `keel data add` writes its version that way."""
    from pathlib import Path

    import keel
    import keel.data
    from keel.workspace import init_workspace

    root = Path(str(tmp_path))
    init_workspace(root)
    with keel.start_run(experiment="e", name="first"):
        keel.log_metric("acc", 0.5)
    (root / "d").mkdir()
    (root / "d" / "x.txt").write_text("x")
    keel.data.add(root / "d", "ds")
    (root / "chain.py").write_text(textwrap.dedent("""
        import keel

        @keel.step
        def one():
            return {"n": 1}

        @keel.pipeline
        def chain():
            one()
    """))
    from tests.conftest import run_keel

    assert run_keel("pipeline", "run", "chain.py").returncode == 0
    heavy = ("sqlalchemy", "pandas", "numpy")
    out, loaded = _loaded_by(["runs", "list"], heavy)
    assert "first" in out and loaded == []
    out, loaded = _loaded_by(["pipeline", "run", "chain.py"], heavy)
    assert "cached" in out and loaded == []
    (root / "d" / "x.txt").unlink()
    out, loaded = _loaded_by(["data", "checkout", "ds"], heavy)
    assert (root / "d" / "x.txt").read_text() == "x" and loaded == []
    # Adding a new version writes one row: through sqlite3 as well.
    (root / "d" / "y.txt").write_text("y")
    out, loaded = _loaded_by(["data", "add", "d", "--name", "ds"], heavy)
    assert "Created ds@2" in out and loaded == []
    assert keel.data.get("ds").files == 2
    # A filter is the filter language's: the store answers it, and the same runs.
    out, loaded = _loaded_by(["runs", "list", "-f", "metrics.acc > 0.4"], heavy)
    assert "first" in out and loaded == ["sqlalchemy"]
