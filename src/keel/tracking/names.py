"""Readable default run names: ``bold-heron-417``."""

from __future__ import annotations

import random

_ADJECTIVES = ("amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "fair", "gentle",
               "keen", "lucid", "merry", "noble", "quick", "quiet", "rapid", "sharp", "steady",
               "sunny", "swift", "tidy", "vivid", "warm", "wise")
_NOUNS = ("badger", "bee", "crane", "falcon", "ferret", "finch", "fox", "heron", "ibis", "lark",
          "lynx", "marten", "otter", "owl", "panda", "puffin", "raven", "seal", "stoat", "swan",
          "tern", "vole", "wren", "yak")


def run_name() -> str:
    """A random, memorable run name."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"
