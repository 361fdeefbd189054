"""``keel ci init github``: a GitHub Actions workflow with tiers of training cost.

- every push and pull request: the tests, and ``keel ci smoke`` (the pipeline
  on a sample of its data, minutes);
- nightly: the full pipeline on the current data, then the promotion gates
  in CI (``keel ci gate``, with a summary on the job page);
- weekly: the data pulled fresh from the remote and the pipeline forced to
  re-run its first step, so every cached result is recomputed.
"""

from __future__ import annotations

from pathlib import Path

from keel.errors import AlreadyExists, InvalidInput

TEMPLATE = """\
# Written by `keel ci init github`. Tiers of training cost:
#   push / pull request -> tests + smoke run on a sample (minutes)
#   nightly             -> full pipeline + promotion gates
#   weekly              -> fresh data from the remote, every step recomputed
name: keel

on:
  push:
  pull_request:
  schedule:
    - cron: "17 2 * * *"      # nightly tier
    - cron: "43 3 * * 0"      # weekly tier (Sundays)
  workflow_dispatch:

env:
  KEEL_STORE: ${{{{ secrets.KEEL_STORE }}}}      # a shared PostgreSQL or keel server
  KEEL_BLOBS: ${{{{ secrets.KEEL_BLOBS }}}}
  KEEL_REMOTE: ${{{{ secrets.KEEL_REMOTE }}}}

jobs:
  push:
    if: github.event_name == 'push' || github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "{python}"}}
      - run: pip install -r requirements.txt
      - run: python -m pytest -q
      - run: keel ci smoke {pipeline} --rows {rows} --summary smoke.md
      - run: cat smoke.md >> "$GITHUB_STEP_SUMMARY"
        if: always()

  nightly:
    if: github.event_name == 'schedule' && github.event.schedule == '17 2 * * *'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "{python}"}}
      - run: pip install -r requirements.txt
      - run: keel pipeline run {pipeline}
      - run: keel ci gate {model}/latest --alias champion --summary gate.md
      - run: cat gate.md >> "$GITHUB_STEP_SUMMARY"
        if: always()

  weekly:
    if: github.event_name == 'schedule' && github.event.schedule == '43 3 * * 0'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "{python}"}}
      - run: pip install -r requirements.txt
      - run: keel data pull
      - run: keel pipeline run {pipeline} --force {first_step}
"""


def github_workflow(pipeline: str, model: str, first_step: str, rows: int = 1000,
                    python: str = "3.11") -> str:
    """The workflow's text."""
    return TEMPLATE.format(pipeline=pipeline, model=model, first_step=first_step, rows=rows,
                           python=python)


def write_github_workflow(root: Path, pipeline: str, model: str, first_step: str,
                          force: bool = False) -> Path:
    """Write ``.github/workflows/keel.yml`` under ``root``; refuse to overwrite one."""
    if not model:
        raise InvalidInput("name the registered model the nightly gate checks",
                           hint="pass --model NAME")
    path = root / ".github" / "workflows" / "keel.yml"
    if path.exists() and not force:
        raise AlreadyExists(f"{path} exists", hint="pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(github_workflow(pipeline, model, first_step))
    return path
