"""Benchmark: orthogonal conv kernels (paper 002, Algorithm 1) and Procrustes projection (paper 003), NS vs SVD.

1. Building a ``k x k x c x c`` orthogonal kernel (:func:`rmt.orthogonal_conv_kernel`), next to the baseline of one
   Haar ``c x c`` matrix (:func:`rmt.delta_orthogonal_kernel`, the QR every orthogonal initialiser needs); both are
   checked: the largest ``|singular value - 1|`` of the operator on the ``n x n`` input.
2. Projecting a random ``k x k x c x c`` kernel on an ``n x n`` input to unit singular values, Newton-Schulz next to
   the SVD in the same run: the per-frequency polar step alone (``rmt.newton_schulz_polar`` vs ``numpy.linalg.svd``
   on the kernel's real-FFT half), the whole ``rmt.procrustes_project`` (which also measures the clipped operator's
   singular values by SVD), and ``validate.procrustes_`` in torch on the CPU and, when present, the GPU. Reports the
   NS iterations and the largest difference between the NS and SVD kernels.

    python benchmarks/bench_orthogonal.py [--channels 256] [--kernel 3] [--input 32] [--threads 1] [--skip-numpy-full]
                                          [--torch-dtypes float32,float64]

``--threads`` caps the BLAS/LAPACK threads of numpy (through threadpoolctl, when installed) and torch's CPU threads:
on a loaded machine multithreaded OpenBLAS on small batched matrices oversubscribes the cores and times become noise.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import rmt
from rmt.conv_operators import symbol_from_poly


def _timed(func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return time.perf_counter() - start, out


def _row(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:<44s} {seconds:9.3f} s  {note}")


def bench_orthogonal_kernel(c: int, k: int, n: int) -> None:
    print(f"orthogonal kernel {k}x{k}x{c}x{c} (checked on a {n}x{n} input)")
    t_base, delta = min(_timed(rmt.delta_orthogonal_kernel, c, c, k, rng=seed) for seed in range(3))
    t_orth, orth = min(_timed(rmt.orthogonal_conv_kernel, c, c, k, rng=seed) for seed in range(3))
    dev_base = np.max(np.abs(rmt.conv_singular_values(delta, n) - 1))
    dev_orth = np.max(np.abs(rmt.conv_singular_values(orth, n) - 1))
    _row("baseline: Haar c x c (delta_orthogonal_kernel)", t_base, f"max|sv-1| = {dev_base:.1e}")
    _row("orthogonal_conv_kernel (Algorithm 1)", t_orth, f"max|sv-1| = {dev_orth:.1e}  ({t_orth / t_base:.1f}x)")


def bench_procrustes(c: int, k: int, n: int, numpy_full: bool, torch_dtypes: list[str]) -> None:
    print(f"Procrustes projection of a random {k}x{k}x{c}x{c} kernel on a {n}x{n} input (target 1)")
    kernel = np.random.default_rng(1).standard_normal((c, c, k, k)) / np.sqrt(c * k * k)
    placed = np.zeros((c, c, n, n))
    index = np.ix_((np.arange(k) - k // 2) % n, (np.arange(k) - k // 2) % n)
    placed[:, :, index[0], index[1]] = kernel
    symbol = symbol_from_poly(placed.reshape(c, c, 1, 1, n, n), half=True)
    print(f"  polar step on {symbol.shape[0] * symbol.shape[1]} complex {c}x{c} matrices (real-FFT half):")
    t_svd, (u, _, vh) = _timed(np.linalg.svd, symbol, full_matrices=False)
    t_ns, (x, iters, conv, res) = _timed(rmt.newton_schulz_polar, symbol)
    _row("numpy SVD (baseline)", t_svd)
    diff = np.max(np.abs(x - u @ vh))
    _row("numpy Newton-Schulz", t_ns, f"{iters} iterations, converged={conv}, max|NS-SVD| = {diff:.1e}")
    if numpy_full:
        print("  rmt.procrustes_project (projection + inverse FFT + clip + SVD report of the clipped operator):")
        t_svd, r_svd = _timed(rmt.procrustes_project, kernel, n, method="svd")
        t_ns, r_ns = _timed(rmt.procrustes_project, kernel, n, method="newton-schulz")
        _row("method='svd' (baseline)", t_svd, f"clipped max|sv-1| = {r_svd.deviation:.3f}")
        _row("method='newton-schulz'", t_ns, f"max|NS-SVD kernel| = {np.max(np.abs(r_ns.kernel - r_svd.kernel)):.1e}")
    try:
        import torch

        from validate import procrustes_
    except ImportError:
        print("  torch not installed: torch rows skipped")
        return
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype in (getattr(torch, name) for name in torch_dtypes):
            w = torch.tensor(kernel, dtype=dtype, device=device)
            times = {}
            for method in ("svd", "newton-schulz"):
                work = w.clone()
                if device == "cuda":
                    procrustes_(work, n, method=method)  # warm-up (cuSOLVER / cuBLAS handles, FFT plans)
                    work = w.clone()
                if device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                procrustes_(work, n, method=method)
                if device == "cuda":
                    torch.cuda.synchronize()
                times[method] = (time.perf_counter() - start, work)
            diff = (times["svd"][1] - times["newton-schulz"][1]).abs().max().item()
            name = f"torch procrustes_ {device} {str(dtype).split('.')[-1]}"
            _row(f"{name} svd (baseline)", times["svd"][0])
            _row(f"{name} newton-schulz", times["newton-schulz"][0],
                 f"{times['svd'][0] / times['newton-schulz'][0]:.2f}x vs SVD, max|NS-SVD| = {diff:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--input", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for BLAS and torch (default 1)")
    parser.add_argument("--skip-numpy-full", action="store_true", help="skip the whole numpy procrustes_project rows")
    parser.add_argument("--torch-dtypes", default="float32,float64", help="comma-separated, e.g. float32")
    args = parser.parse_args()
    if min(args.channels, args.kernel, args.input, args.threads) < 1 or args.kernel > args.input:
        parser.error("--channels, --kernel, --input, --threads must be positive and --kernel <= --input")
    torch_dtypes = [name.strip() for name in args.torch_dtypes.split(",") if name.strip()]
    if any(name not in ("float32", "float64") for name in torch_dtypes):
        parser.error(f"--torch-dtypes must list float32 and/or float64, got {args.torch_dtypes!r}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
        print("threadpoolctl not installed: numpy BLAS threads not limited")
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    print(f"CPU threads: {args.threads}")
    limits = threadpool_limits(limits=args.threads) if threadpool_limits else None
    try:
        bench_orthogonal_kernel(args.channels, args.kernel, args.input)
        bench_procrustes(args.channels, args.kernel, args.input, not args.skip_numpy_full, torch_dtypes)
    finally:
        if limits is not None:
            limits.unregister()


if __name__ == "__main__":
    main()
