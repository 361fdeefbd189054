"""The ``keel`` command line: parse, call the Python API, render with Rich."""
