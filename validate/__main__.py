"""``python -m validate``: see :mod:`validate.cli`.

Without torch (the light install) every invocation, ``--help`` included, prints which extra to install and exits 2.
"""

import sys

from meanfield.optional import MissingExtraError, require


def _main() -> int:
    try:
        require("torch", "validate", "python -m validate (training networks with PyTorch)")
    except MissingExtraError as exc:
        print(f"python -m validate: error: {exc}", file=sys.stderr)
        return 2
    from validate.cli import main

    return main()


sys.exit(_main())
