"""Content-addressed storage of bytes, keyed by BLAKE3 digests, over fsspec."""

from keel.blobs.digest import hash_bytes, hash_file
from keel.blobs.store import BlobStore, copy_blob

__all__ = ["BlobStore", "copy_blob", "hash_bytes", "hash_file"]
