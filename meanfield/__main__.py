"""``python -m meanfield``: see :mod:`meanfield.cli`."""

import sys

from .cli import main

sys.exit(main())
