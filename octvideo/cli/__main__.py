"""``python -m octvideo.cli``: the ``octvideo`` command."""

import sys

from octvideo.cli import main

sys.exit(main())
