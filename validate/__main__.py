"""``python -m validate``: see :mod:`validate.cli`."""

import sys

from validate.cli import main

sys.exit(main())
