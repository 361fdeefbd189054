"""The schema revision this keel writes, and every revision it ever shipped.

Apart from ``schema.py`` so that the standard-library reader
(``sqlite_reader.py``) can check a database's revision without importing
SQLAlchemy.
"""

from __future__ import annotations

# Bump with every migration; a database at a revision this build does not know
# was written by a newer keel and is refused.
SCHEMA_REVISION = "0013"
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009",
                   "0010", "0011", "0012", "0013")
