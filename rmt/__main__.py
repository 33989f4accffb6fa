"""``python -m rmt``: see :mod:`rmt.cli`."""

import sys

from .cli import main

sys.exit(main())
