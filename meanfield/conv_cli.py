"""``python -m meanfield modes``: Fourier-mode depth scales of a random CNN (paper 002, eqn. 2.12).

Example::

    python -m meanfield modes --activation tanh --sigma-w2 1.76 --sigma-b2 0.05 --kernel GS2 --size 8 --json

Flags: ``--activation`` (name or expression in x), ``--sigma-w2`` (> 0), ``--sigma-b2`` (>= 0), ``--kernel``
(``uniform``, ``delta``, ``GS0`` .. ``GS4`` or a comma-separated variance vector such as ``"0.1,0.8,0.1"``),
``--kernel-size`` (odd, for named kernels; default 3), ``--size`` (image side n; default 8), ``--ndim`` (1 or 2;
default 2, a comma vector then gives the separable kernel ``outer(v, v)``), ``--json``.

JSON keys: ``activation``, ``sigma_w2``, ``sigma_b2``, ``kernel`` (the variance vector ``v``, nested lists in 2-D),
``size``, ``ndim``, ``q_star``, ``c_star``, ``chi_c``, ``xi_c`` and ``modes``: one object per Fourier mode with ``k``
(1-D) or ``k1``, ``k2`` (2-D), ``lambda_real``, ``lambda_imag``, ``abs_lambda``, ``xi`` (infinite values as ``"inf"``).
Invalid flags, and kernels that do not fit the image, exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys

from .arguments import activation_arg, int_at_least, json_value, nonnegative_float, positive_float, show_warnings

__all__ = ["add_parser", "run", "MAX_SIZE"]

PROG = "python -m meanfield modes"
#: Largest image side n (the 2-D mode table has n^2 rows).
MAX_SIZE = 1024


def _kernel_spec(text: str) -> str:
    from .kernels import kernel_variance

    try:
        kernel_variance(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_parser(subparsers) -> None:
    """Register the ``modes`` subcommand."""
    p = subparsers.add_parser(
        "modes",
        help="depth scale of every Fourier mode of a CNN's covariance (paper 002)",
        description="Eigenvalues lambda of the averaging operator A_v and depth scales xi = -1/log(chi_c* |lambda|) "
        "of the Fourier modes of a random CNN's spatial covariance on an n (1-D) or n x n (2-D) periodic image.",
    )
    p.add_argument("--activation", type=activation_arg, default="tanh",
                   help="built-in name or expression in x (default tanh)")
    p.add_argument("--sigma-w2", type=positive_float, required=True, help="weight variance, > 0")
    p.add_argument("--sigma-b2", type=nonnegative_float, required=True, help="bias variance, >= 0")
    p.add_argument("--kernel", type=_kernel_spec, default="uniform",
                   help='uniform, delta, GS0..GS4, or a comma-separated variance vector such as "0.1,0.8,0.1" '
                        "(non-negative, sums to 1, odd length; default uniform)")
    p.add_argument("--kernel-size", type=int_at_least(1, odd=True, maximum=MAX_SIZE), default=None,
                   help=f"odd kernel size k for named kernels, 1..{MAX_SIZE} (default 3)")
    p.add_argument("--size", type=int_at_least(1, maximum=MAX_SIZE), default=8,
                   help=f"image side n, kernel size <= n <= {MAX_SIZE} (default 8)")
    p.add_argument("--ndim", type=int, choices=(1, 2), default=2, help="1-D or 2-D images (default 2)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    """Run ``modes``; returns the exit status (2 when the kernel does not fit the flags)."""
    from .conv import fourier_depth_scales
    from .kernels import kernel_variance

    try:
        v = kernel_variance(args.kernel, args.kernel_size, args.ndim)
        if v.ndim != args.ndim:
            raise ValueError(f"--kernel gives a {v.ndim}-D kernel but --ndim is {args.ndim}")
        if max(v.shape) > args.size:
            raise ValueError(f"--size {args.size} must be at least the kernel size {max(v.shape)}")
    except (TypeError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    with show_warnings(PROG):
        result = fourier_depth_scales(args.activation, args.sigma_w2, args.sigma_b2, v, args.size)
    table = result.table
    header = {"q_star": result.q_star, "c_star": result.c_star, "chi_c": result.chi_c, "xi_c": result.xi_c}
    if args.json:
        modes = [{key: json_value(value) for key, value in row.items()} for row in table.to_dict("records")]
        document = {"activation": args.activation.name, "sigma_w2": args.sigma_w2, "sigma_b2": args.sigma_b2,
                    "kernel": v.tolist(), "size": args.size, "ndim": args.ndim,
                    **{key: json_value(value) for key, value in header.items()}, "modes": modes}
        print(json.dumps(document))
    else:
        print(f"activation {args.activation.name}, sigma_w2 {args.sigma_w2:g}, sigma_b2 {args.sigma_b2:g}, "
              f"kernel v = {v.tolist()}, image {'x'.join([str(args.size)] * args.ndim)}")
        for key, value in header.items():
            print(f"{key:<7} {value:.12g}")
        print(table.to_string(index=False))
    return 0
