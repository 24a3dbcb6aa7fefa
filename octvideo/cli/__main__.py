"""``python -m octvideo.cli``: the ``octvideo`` command."""

import sys

from octvideo.cli import entry

sys.exit(entry())
