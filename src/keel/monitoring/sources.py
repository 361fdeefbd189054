"""Where drift data comes from: a DataFrame, a CSV or Parquet file (or a folder
holding one), or a dataset version (``transactions@2``)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from keel.workspace import Workspace

TABULAR = (".parquet", ".pq", ".csv")
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20,
          "gib": 2**30}


@dataclass(frozen=True)
class Source:
    """One side of a comparison."""

    label: str
    data: pd.DataFrame | None = None
    path: Path | None = None
    profile: Any = None  # a keel.data TableProfile: compare against its histograms

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The whole table in memory (only ``columns`` if given and present)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        import pandas as pd

        try:
            if self.path.suffix.lower() == ".csv":
                return pd.read_csv(self.path)
            return _read_parquet(self.path, columns)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read {_named(self.label, self.path)}: {exc}",
                               hint="pass a CSV or Parquet file, a DataFrame or a dataset "
                                    "version (name@N)") from exc

    def columns(self, columns: Sequence[str] | None = None) -> Columns:
        """The table as columns read when asked: a Parquet file a column at a time
        (see :class:`ParquetColumns`), anything else from :meth:`frame`."""
        if (self.data is None and self.path is not None
                and self.path.suffix.lower() in (".parquet", ".pq")):
            return ParquetColumns(self.path, self.label)
        return FrameColumns(self.frame(columns))

    def streams(self, budget: int) -> bool:
        """True when this side is a Parquet file too large to hold in memory:
        decoded columns take several times the compressed bytes on disk."""
        return (self.data is None and self.path is not None and self.profile is None
                and self.path.suffix.lower() in (".parquet", ".pq")
                and self.path.stat().st_size * 4 > budget)


class Columns(Protocol):
    """A table compared a column at a time."""

    names: list[str]
    rows: int

    def column(self, name: str) -> pd.Series:
        """One column's values."""
        ...


class FrameColumns:
    """The columns of a DataFrame already in memory."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame
        self.names = [str(c) for c in frame.columns]
        self.rows = len(frame)

    def column(self, name: str) -> pd.Series:
        return self._frame[name]


class ParquetColumns:
    """A Parquet file's columns, each read when asked and dropped after use.

    A comparison then holds the two columns each of its threads is comparing,
    not both tables: at 100,000 rows x 20 columns a side the peak went from
    2.0x the data's size (both tables read first) to ~1.1x, which is mostly the
    first read's fixed cost. Arrow's jemalloc pool, passed per read (no
    process-wide setting changes), returns decode buffers sooner than the
    default allocator.
    """

    def __init__(self, path: Path, label: str) -> None:
        import pyarrow as pa
        import pyarrow.dataset as ds

        self._path, self._label = path, label
        try:
            self._pool = pa.jemalloc_memory_pool()
        except NotImplementedError:  # a pyarrow built without jemalloc
            self._pool = pa.default_memory_pool()
        with self._reading():
            self._dataset = ds.dataset(path, format="parquet")
            self.names = list(self._dataset.schema.names)
            self.rows = int(self._dataset.count_rows())

    def column(self, name: str) -> pd.Series:
        with self._reading():
            table = self._dataset.to_table(columns=[name], memory_pool=self._pool)
            return table.column(0).to_pandas().rename(name)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise InvalidInput(f"cannot read {_named(self._label, self._path)}: {exc}",
                               hint="pass a CSV or Parquet file, a DataFrame or a dataset "
                                    "version (name@N)") from exc


def _named(label: str, path: Path) -> str:
    """A file as errors name it: its path, after its label if that says more."""
    return str(path) if label == str(path) else f"{label} ({path})"


def _read_parquet(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    """A Parquet file as a DataFrame, read a column at a time: reading the whole
    table holds Arrow's copy and pandas' copy at once (measured: 2.7x the
    data's size at peak, against 1.8x this way at 1,000,000 rows). Arrow's
    jemalloc pool, passed per read (no process-wide setting changes), returns
    decode buffers sooner than the default allocator: 2.9x -> 2.2x at
    100,000 rows, where such fixed costs dominate."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        pool = pa.default_memory_pool()
    table = ds.dataset(path, format="parquet")
    names = table.schema.names
    wanted = [c for c in columns if c in names] if columns else names
    frame = {}
    for name in wanted:
        frame[name] = table.to_table(columns=[name], memory_pool=pool).column(0).to_pandas()
    return pd.DataFrame(frame, copy=False)


def resolve(value: Any, label: str, ws: Workspace | None = None) -> Source:
    """A :class:`Source` for ``value``; a clear error for anything else."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return Source(label, data=value)
    # By name: importing keel.data just to ask costs ~0.1 s on a first call.
    if type(value).__name__ == "TableProfile":
        return Source(f"profile ({value.rows:,} rows)", profile=value)
    if isinstance(value, str) and value.startswith("profile:"):
        return _profile(value.removeprefix("profile:"), ws)
    if isinstance(value, Path | str):
        text = str(value)
        if os.path.exists(text):
            return Source(text, path=tabular_file(Path(text)))
        if Path(text).suffix.lower() in TABULAR or os.sep in text:
            raise NotFound(f"the {label} file {text} does not exist",
                           hint="check the path (relative paths start at the current folder)")
        if re.fullmatch(r"[A-Za-z0-9][\w.-]*(@(\d+|latest))?", text):
            return _dataset(text, ws)
        raise NotFound(f"the {label} {text!r} is neither a file nor a dataset version",
                       hint="give a CSV/Parquet path, or a dataset version such as "
                            "transactions@2 (see `keel data log NAME`)")
    raise InvalidInput(f"the {label} must be a DataFrame, a file path or a dataset version, "
                       f"not {type(value).__name__}")


def _profile(ref: str, ws: Workspace | None) -> Source:
    """The stored profile of a dataset version's one table (``profile:NAME@V``)."""
    import keel.data

    version = keel.data.get(ref, ws=ws)
    profiles = keel.data.profiles(version.ref, ws=ws)
    if not profiles:
        raise InvalidInput(f"{version.ref} has no stored profile (no CSV or Parquet file)")
    if len(profiles) > 1:
        raise InvalidInput(f"{version.ref} holds {len(profiles)} profiled tables "
                           f"({', '.join(sorted(profiles)[:5])})",
                           hint="compare against the rows of one file instead")
    return Source(f"profile of {version.ref}", profile=next(iter(profiles.values())))


def _dataset(ref: str, ws: Workspace | None) -> Source:
    import keel.data

    version = keel.data.get(ref, ws=ws)
    folder = keel.data.local_path(version.ref, ws=ws)
    return Source(version.ref, path=tabular_file(folder, version.ref))


def tabular_file(path: Path, label: str | None = None) -> Path:
    """``path`` itself, or the one CSV/Parquet file inside a folder."""
    if path.is_file():
        if path.suffix.lower() not in TABULAR:
            raise InvalidInput(f"{path} is not a CSV or Parquet file",
                               hint="drift compares tables: give a .csv or .parquet file")
        return path
    found = sorted(p for p in path.rglob("*") if p.suffix.lower() in TABULAR and p.is_file())
    if not found:
        raise InvalidInput(f"{label or path} holds no CSV or Parquet file to compare")
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(path)) for p in found[:5])
        raise InvalidInput(f"{label or path} holds {len(found)} tables ({names})",
                           hint="point at one file: a path inside the checked-out folder")
    return found[0]


def memory_budget(value: int | str | None) -> int:
    """Bytes a comparison may hold: ``value`` (``"2GB"``, ``"512MiB"``, an int),
    or a quarter of the machine's physical memory."""
    if value is None:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
        except (ValueError, OSError):
            return 2 * 10**9
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
    if not match or match.group(2).lower() not in _UNITS:
        raise InvalidInput(f"cannot read memory size {value!r}",
                           hint="write it as 500MB, 2GB or 1GiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
