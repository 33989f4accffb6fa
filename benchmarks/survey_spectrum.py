"""Survey: warm time of ``rmt.jacobian_spectrum`` (2000 points) for every built-in activation, both weight ensembles,
depths 1-10^4, at the critical ``sigma_w2`` of each ``sigma_b2`` (1.5 where there is no critical point).

Lists the cases over the issue-14 target (0.2 s warm on a quiet machine), any that raise, and the ``--top`` slowest.
With ``--baseline`` each listed case is also timed with the per-point baseline of ``benchmarks/bench_spectrum.py``
(complex Newton per grid point over a 64x rule, numpy sums) on the same grid in the same run.

Usage: ``python benchmarks/survey_spectrum.py [--depths 1,2,3,8,30,300,1000,10000] [--sigma-b2 0.05,0.5]
[--target 0.2] [--top 10] [--baseline]``.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings

import meanfield
import rmt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="1,2,3,8,30,300,1000,10000",
                        help="comma-separated depths (default 1,2,3,8,30,300,1000,10000)")
    parser.add_argument("--sigma-b2", default="0.05,0.5", help="comma-separated bias variances (default 0.05,0.5)")
    parser.add_argument("--top", type=int, default=10, help="also list the N slowest cases (default 10)")
    parser.add_argument("--target", type=float, default=0.2, help="seconds; cases above are listed (default 0.2)")
    parser.add_argument("--baseline", action="store_true", help="time the per-point baseline for the listed cases")
    args = parser.parse_args()
    if args.target <= 0 or not math.isfinite(args.target):
        parser.error(f"--target must be a positive number of seconds, got {args.target}")
    if args.top < 0:
        parser.error(f"--top must be >= 0, got {args.top}")
    try:
        depths = [int(d) for d in args.depths.split(",")]
        biases = [float(b) for b in args.sigma_b2.split(",")]
    except ValueError as exc:
        parser.error(f"--depths and --sigma-b2 take comma-separated numbers: {exc}")
    if any(d < 1 for d in depths) or any(not (b >= 0 and math.isfinite(b)) for b in biases):
        parser.error("depths must be >= 1 and sigma_b2 values finite and >= 0")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    warnings.simplefilter("ignore")
    rows = []
    for act in meanfield.builtin_activation_names():
        for sb2 in biases:
            try:
                sw2 = float(meanfield.critical_sigma_w2(act, sb2)[0])
            except Exception:  # no stable critical point (gelu, swish at some sigma_b2): a typical chaotic value
                sw2 = 1.5
            sw2 = sw2 if math.isfinite(sw2) else 1.5
            for weights in ("gaussian", "orthogonal"):
                for depth in depths:
                    try:
                        rmt.jacobian_spectrum(act, sw2, sb2, depth=depth, weights=weights)
                        t0 = time.perf_counter()
                        rmt.jacobian_spectrum(act, sw2, sb2, depth=depth, weights=weights)
                        rows.append((time.perf_counter() - t0, act, sb2, sw2, weights, depth, ""))
                    except Exception as exc:  # noqa: BLE001 - a survey lists every failure
                        rows.append((math.inf, act, sb2, sw2, weights, depth, f"{type(exc).__name__}: {exc}"[:100]))
    rows.sort(key=lambda r: -r[0])
    slow = [r for i, r in enumerate(rows) if r[0] > args.target or i < args.top]
    over = sum(r[0] > args.target for r in rows)
    print(f"{len(rows)} cases; {over} over {args.target} s or raising; slowest {rows[0][0]:.3f} s; "
          f"median {rows[len(rows) // 2][0]:.3f} s; the {len(slow)} listed:")
    base_head = f"{'baseline':>9}{'speed-up':>9}  " if args.baseline else ""
    head = f"{'activation':<12}{'sigma_b2':>9}{'sigma_w2':>10}  {'weights':<11}{'depth':>6}  error"
    print(f"{'seconds':>8}  {base_head}{head}")
    for t, act, sb2, sw2, weights, depth, err in slow:
        base = ""
        if args.baseline:
            t_base = baseline_seconds(act, sw2, sb2, depth, weights) if not err else math.nan
            base = f"{t_base:9.3f}{t_base / t:8.1f}x  " if math.isfinite(t_base) else f"{'-':>9}{'-':>9}  "
        print(f"{t:8.3f}  {base}{act:<12}{sb2:9.2f}{sw2:10.4g}  {weights:<11}{depth:6d}  {err}")


def baseline_seconds(activation: str, sigma_w2: float, sigma_b2: float, depth: int, weights: str) -> float:
    """Seconds of ``bench_spectrum.baseline_density`` on the solver's grid (NaN where the baseline has no edge)."""
    from bench_spectrum import BASELINE_NODES, baseline_density  # noqa: PLC0415 (this directory, only when asked)

    result = rmt.jacobian_spectrum(activation, sigma_w2, sigma_b2, depth=depth, weights=weights)
    if not result.lam.size:
        return math.nan
    law = rmt.d2_law(activation, result.params["q"], nodes_per_panel=BASELINE_NODES)
    grid = result.lam[:-1] if result.support[0] == 0.0 else result.lam[1:-1]
    t0 = time.perf_counter()
    try:
        baseline_density(grid, law, sigma_w2, depth, weights)
    except (IndexError, ValueError, ArithmeticError):
        return math.nan
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
