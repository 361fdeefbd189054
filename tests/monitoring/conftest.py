"""Monitoring reuses serving's fixtures: registered versions and a real server."""

from tests.serving.conftest import registry, serve  # noqa: F401  (fixtures)
