"""``python -m octvideo.cli``: the ``octvideo`` command."""

from octvideo.cli import entry

entry()
