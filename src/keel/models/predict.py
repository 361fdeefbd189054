"""Batch inference: score a CSV/Parquet file in chunks, with bounded memory,
recorded as a run linked to the model version and the input's digest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from keel.blobs.digest import hash_file
from keel.data.progress import NoProgress, Progress
from keel.errors import InvalidInput, NotFound
from keel.models.load import load_model
from keel.models.registry import resolve
from keel.packaging.model import PackagedModel
from keel.workspace import Workspace, resolve_workspace

BATCH_EXPERIMENT = "batch-inference"
CHUNK_ROWS = 50_000  # ~20 MB of float64 at 50 columns: bounded, and large enough to vectorise


@dataclass(frozen=True)
class BatchPrediction:
    """What a batch-inference job read, wrote and where it is recorded."""

    model: str
    input: str
    input_digest: str
    output: str
    output_digest: str
    rows: int
    run_id: str


def batch_predict(model: str, input_path: str | Path, output_path: str | Path,
                  chunk_rows: int = CHUNK_ROWS, trust: bool = False,
                  progress: Progress | None = None,
                  ws: Workspace | None = None) -> BatchPrediction:
    """Write ``input_path`` plus a ``prediction`` column (and ``proba_<class>``
    columns for classifiers) to ``output_path``; CSV or Parquet either side.

    >>> keel.models.batch_predict("models:/churn@champion", "today.parquet", "scored.parquet")
    """
    import pyarrow as pa

    from keel.tracking.api import start_run

    ws = resolve_workspace(ws)
    source, target = Path(input_path), Path(output_path)
    if not source.is_file():
        raise NotFound(f"input file {source} does not exist", hint="pass a CSV or Parquet file")
    _format(source)
    _format(target)
    if source.resolve() == target.resolve():
        raise InvalidInput("the output would overwrite the input",
                           hint="write the predictions to another file")
    if not target.parent.is_dir():  # checked before a run is started for the job
        raise NotFound(f"the output folder {target.parent} does not exist",
                       hint="create it first, or write the predictions elsewhere")
    if chunk_rows < 1:
        raise InvalidInput("chunk size must be at least 1 row")
    _check_readable(source)
    progress = progress or NoProgress()
    resolved = resolve(model, ws)
    loaded = load_model(model, trust=trust, ws=ws)
    label = resolved.label
    input_digest = hash_file(source)
    with start_run(experiment=BATCH_EXPERIMENT, name=f"predict {label}", nested=False, ws=ws,
                   tags={"keel.kind": "batch-inference", "keel.model": label,
                         "keel.model.package": resolved.package_digest},
                   params={"model": label, "input": str(source), "input.digest": input_digest,
                           "output": str(target), "chunk_rows": chunk_rows}) as run:
        temp = target.with_name(f".{target.name}.partial")
        try:
            rows = _stream(loaded, source, temp, _format(target), chunk_rows, progress)
            temp.replace(target)  # readers never see a half-written output
        except pa.ArrowInvalid as exc:  # a row further down the file is malformed
            raise _unreadable(source, exc) from exc
        finally:
            temp.unlink(missing_ok=True)
            progress.done()
        output_digest = hash_file(target)
        run.log_params({"output.digest": output_digest})
        run.log_metrics({"rows": rows})
    return BatchPrediction(label, str(source), input_digest, str(target), output_digest, rows,
                           run.id)


def _check_readable(path: Path) -> None:
    """Open the input and read its schema before any run is recorded: an empty or
    malformed file is the caller's mistake, not a failed job."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if _format(path) == "parquet":
            pq.ParquetFile(path)
        else:
            pacsv.open_csv(path).close()
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: BaseException) -> InvalidInput:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InvalidInput(f"cannot read {path} as {_format(path).upper()}: {reason}",
                        hint="pass a well-formed table with a header row and at least one "
                             "row of data")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InvalidInput(f"{path} is neither .csv nor .parquet",
                       hint="batch inference reads and writes CSV or Parquet files")


def _chunks(path: Path, chunk_rows: int, progress: Progress) -> Iterator[pd.DataFrame]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if _format(path) == "parquet":
        parquet = pq.ParquetFile(path)
        progress.start(f"predicting {path.name}", parquet.metadata.num_rows)
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    progress.start(f"predicting {path.name}", _count_lines(path) - 1)
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 22))
    pending: list[pd.DataFrame] = []
    held = 0
    for batch in reader:
        pending.append(batch.to_pandas())
        held += batch.num_rows
        if held >= chunk_rows:
            frame = pd.concat(pending, ignore_index=True)
            pending, held = [], 0
            for start in range(0, len(frame), chunk_rows):
                yield frame.iloc[start:start + chunk_rows]
    if pending:
        yield pd.concat(pending, ignore_index=True)


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
    return count


def _stream(model: PackagedModel, source: Path, target: Path, kind: str, chunk_rows: int,
            progress: Progress) -> int:
    """Score ``source`` chunk by chunk into ``target`` (written as ``kind``)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    writer: Any = None
    schema = None
    rows = 0
    try:
        for frame in _chunks(source, chunk_rows, progress):
            scored = _score(model, frame.reset_index(drop=True))
            table = pa.Table.from_pandas(scored, preserve_index=False)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(target, schema) if kind == "parquet" \
                    else pacsv.CSVWriter(target, schema)
            writer.write_table(table.cast(schema))
            rows += len(frame)
            progress.advance(len(frame))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise InvalidInput(f"{source} holds no rows", hint="pass a file with data to score")
    return rows


def _score(model: PackagedModel, frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    columns = model.signature.names
    features = frame[[c for c in frame.columns if str(c) in columns]] if columns else frame
    out["prediction"] = model.predict(features)
    if model.task == "classification" and model.classes:
        proba = np.asarray(model.predict_proba(features))
        for index, label in enumerate(model.classes):
            out[f"proba_{label}"] = proba[:, index]
    return out
