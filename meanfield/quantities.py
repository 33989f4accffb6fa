"""Fixed points, susceptibilities, depth scales and phases of fully connected networks at initialization.

Notation (Poole et al. 2016; Schoenholz et al. 2017; ``docs/formulas.md``): weights have variance
``sigma_w2 / N`` and biases variance ``sigma_b2`` (variances throughout, never standard deviations), ``z ~ N(0, 1)``,
``V(q) = E[phi(sqrt(q) z)^2]``, ``D(q) = E[phi'(sqrt(q) z)^2]``.

- length map ``q' = sigma_w2 V(q) + sigma_b2``; ``q*`` is its stable fixed point reached from below (the smallest
  fixed point where the map crosses the diagonal from above). ``q* = inf`` where the map has none: see
  :data:`Q_STAR_MAX` and :class:`NoFixedPointWarning`.
- ``chi_1 = sigma_w2 D(q*)``; ``xi_q = -1/log(sigma_w2 V'(q*))`` with ``V'(q) = E[phi'^2] + E[phi phi'']``
  (heat-equation identity; ``sigma_w2 V'(q*) = chi_1 + sigma_w2 E[phi'' phi]``).
- correlation map ``c' = (sigma_w2 E[phi(u1) phi(u2)] + sigma_b2) / q*`` (Mehler series of Hermite coefficients);
  ``c* = 1`` in the ordered phase (``chi_1 < 1``, also on the critical line), ``c* < 1`` in the chaotic phase;
  ``chi_c = sigma_w2 E[phi'(u1) phi'(u2)]`` at ``c*``; ``xi_c = -1/log(chi_c)``, computed with ``log1p(chi_c - 1)``.
- phase: ``"critical"`` when ``|chi_1 - 1| <= CRITICAL_TOL``, else ``"ordered"`` (``chi_1 < 1``) or ``"chaotic"``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from .activations import get_activation
from .fixed_points import CRITICAL_TOL, Q_STAR_MAX, FixedPointError, NoFixedPointWarning, is_stable
from .solver import solver_for
from .two_point import gaussian_kernel

if TYPE_CHECKING:  # pandas is imported only when a DataFrame is built
    import pandas as pd

__all__ = [
    "CRITICAL_TOL",
    "MeanFieldPoint",
    "FixedPointError",
    "NoFixedPointWarning",
    "Q_STAR_MAX",
    "q_star",
    "c_star",
    "chi_1",
    "chi_c",
    "xi_q",
    "xi_c",
    "phase",
    "mean_field_point",
    "mean_field_grid",
    "critical_sigma_w2",
    "critical_line",
    "critical_point",
    "iterate_maps",
]

@dataclass(frozen=True)
class MeanFieldPoint:
    """All fully connected mean-field quantities at one ``(sigma_w2, sigma_b2)``.

    Attributes
    ----------
    activation : str
        Activation name.
    sigma_w2, sigma_b2 : float
        Weight and bias variances.
    q_star : float
        Fixed point of the length map (``inf`` if there is none; then ``q_star_finite`` is False and the other
        fixed-point quantities are NaN).
    c_star, chi_1, chi_c, xi_q, xi_c : float
        Correlation fixed point, susceptibilities and depth scales (``xi_c = inf`` exactly at criticality).
    phase : str
        ``"ordered"``, ``"chaotic"`` or ``"critical"``.
    q_star_finite : bool
        Whether a finite fixed point ``q*`` exists.
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    c_star: float
    chi_1: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str
    q_star_finite: bool

    def to_dict(self) -> dict:
        """The fields as a plain dict (floats may be inf/nan)."""
        return asdict(self)


def _check_variances(sigma_w2, sigma_b2) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name, value in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a real number or array of them, got {value!r}") from None
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite (a variance in [0, inf)), got {value!r}")
        if np.any(arr < 0):
            raise ValueError(f"{name} must be a variance >= 0, got {value!r}")
        out.append(arr)
    if np.any(out[0] == 0):
        raise ValueError("sigma_w2 must be > 0 (a weight variance in (0, inf))")
    return out[0], out[1]


def _solve(activation, sigma_w2, sigma_b2, q_only: bool = False) -> dict[str, np.ndarray]:
    act = get_activation(activation)
    sw2, sb2 = _check_variances(sigma_w2, sigma_b2)
    sw2, sb2 = np.broadcast_arrays(sw2, sb2)
    table = solver_for(act).solve(sw2.ravel(), sb2.ravel(), q_only=q_only)
    n_inf = int(np.sum(~table["q_star_finite"]))
    if n_inf:
        warnings.warn(f"{act.name}: no finite fixed point q* at {n_inf} of {sw2.size} point(s) (q* reported as inf, "
                      "other fixed-point quantities as NaN)", NoFixedPointWarning, stacklevel=3)
    return {k: v.reshape(sw2.shape) for k, v in table.items()}


def _scalar(value: np.ndarray):
    if value.ndim == 0:
        return value.item()
    return value


def q_star(activation, sigma_w2, sigma_b2):
    """Fixed point ``q*`` of the length map ``q' = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2`` (Poole et al. 2016, Eq. 3).

    Parameters
    ----------
    activation : str or Activation
    sigma_w2, sigma_b2 : float or array_like
        Weight and bias variances (broadcast together).

    Returns
    -------
    float or ndarray
        ``inf`` where no finite fixed point exists (with a :class:`NoFixedPointWarning`).

    Only the length map is solved (no correlation fixed point), so this is cheaper than :func:`mean_field_point`.
    """
    return _scalar(_solve(activation, sigma_w2, sigma_b2, q_only=True)["q_star"])


def c_star(activation, sigma_w2, sigma_b2):
    """Stable fixed point ``c*`` of the correlation map (Schoenholz et al. 2017, Eq. 5): 1 unless chaotic."""
    return _scalar(_solve(activation, sigma_w2, sigma_b2)["c_star"])


def chi_1(activation, sigma_w2, sigma_b2):
    """``chi_1 = sigma_w2 E[phi'(sqrt(q*) z)^2]``, the slope of the c-map at ``c = 1`` (Poole et al. 2016, Eq. 7).

    For positively homogeneous activations (relu, leaky relu, linear) ``E[phi'^2]`` does not depend on ``q``, so
    ``chi_1`` is reported even where ``q* = inf`` (chaotic phase); elsewhere it is NaN where ``q* = inf``.
    """
    return _scalar(_solve(activation, sigma_w2, sigma_b2)["chi_1"])


def chi_c(activation, sigma_w2, sigma_b2):
    """``chi_c = sigma_w2 E[phi'(u1) phi'(u2)]`` at ``c*`` (Schoenholz et al. 2017, Eq. 8); chi_1 if ``c* = 1``."""
    return _scalar(_solve(activation, sigma_w2, sigma_b2)["chi_c"])


def xi_q(activation, sigma_w2, sigma_b2):
    """Depth scale of the length map, ``-1/log(chi_1 + sigma_w2 E[phi'' phi])`` at ``q*`` (Schoenholz et al. 2017).

    ``E[phi'' phi]`` is taken in the distributional sense (``sigma_w2 V'(q*) - chi_1``), so kinks contribute.
    If the slope ``sigma_w2 V'(q*)`` is negative (oscillating approach) its absolute value is used.
    """
    return _scalar(_solve(activation, sigma_w2, sigma_b2)["xi_q"])


def xi_c(activation, sigma_w2, sigma_b2):
    """Depth scale of correlations, ``-1/log(chi_c)`` (Schoenholz et al. 2017, Eq. 9); ``inf`` at ``chi_c = 1``."""
    return _scalar(_solve(activation, sigma_w2, sigma_b2)["xi_c"])


def phase(activation, sigma_w2, sigma_b2):
    """Phase: ``"ordered"`` (chi_1 < 1), ``"chaotic"`` (chi_1 > 1), ``"critical"`` (|chi_1 - 1| <= CRITICAL_TOL)."""
    return _scalar(_solve(activation, sigma_w2, sigma_b2)["phase"])


def mean_field_point(activation, sigma_w2: float, sigma_b2: float) -> MeanFieldPoint:
    """All mean-field quantities at one point, as a frozen :class:`MeanFieldPoint`.

    Parameters
    ----------
    activation : str or Activation
    sigma_w2, sigma_b2 : float
        Weight and bias variances.
    """
    act = get_activation(activation)
    if np.ndim(sigma_w2) or np.ndim(sigma_b2):
        raise TypeError("mean_field_point takes scalar sigma_w2, sigma_b2; use mean_field_grid for arrays")
    r = _solve(act, sigma_w2, sigma_b2)
    return MeanFieldPoint(act.name, float(sigma_w2), float(sigma_b2),
                          *(float(r[k]) for k in ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c")),
                          str(r["phase"]), bool(r["q_star_finite"]))


def mean_field_grid(activation, sigma_w2, sigma_b2, *, outer: bool = True, progress: bool | None = None
                    ) -> pd.DataFrame:
    """All mean-field quantities on a grid of points, one DataFrame row per point.

    Parameters
    ----------
    activation : str or Activation
    sigma_w2, sigma_b2 : array_like, 1-D
        Weight and bias variances. With ``outer=True`` (default) the grid is their outer product, rows ordered with
        ``sigma_b2`` varying fastest; with ``outer=False`` they must have equal shapes and are paired elementwise.
    progress : bool or None
        Show a tqdm progress bar; None (default) shows one for grids of more than 100 000 points.

    Returns
    -------
    pandas.DataFrame
        Columns ``sigma_w2, sigma_b2, q_star, c_star, chi_1, chi_c, xi_q, xi_c, phase, q_star_finite``.
    """
    act = get_activation(activation)
    sw2 = np.atleast_1d(np.asarray(sigma_w2, dtype=np.float64))
    sb2 = np.atleast_1d(np.asarray(sigma_b2, dtype=np.float64))
    if outer:
        if sw2.ndim != 1 or sb2.ndim != 1:
            raise ValueError("mean_field_grid: sigma_w2 and sigma_b2 must be 1-D arrays for an outer-product grid")
        sw2, sb2 = (a.ravel() for a in np.meshgrid(sw2, sb2, indexing="ij"))
    elif sw2.shape != sb2.shape:
        raise ValueError(f"mean_field_grid: with outer=False sigma_w2 and sigma_b2 need equal shapes, got "
                         f"{sw2.shape} and {sb2.shape}")
    sw2, sb2 = _check_variances(sw2.ravel(), sb2.ravel())
    if progress is None:
        progress = sw2.size > 100_000
    table = solver_for(act).solve(sw2, sb2, progress=progress)
    n_inf = int(np.sum(~table["q_star_finite"]))
    if n_inf:
        warnings.warn(f"{act.name}: no finite fixed point q* at {n_inf} of {sw2.size} grid points "
                      "(column q_star_finite is False there)", NoFixedPointWarning, stacklevel=2)
    import pandas as pd

    return pd.DataFrame({"sigma_w2": sw2, "sigma_b2": sb2, **table})


def critical_point(activation, q_star: float) -> tuple[float, float]:
    """The point of the critical line (``chi_1 = 1``) whose length fixed point is ``q_star``.

    ``sigma_w2 = 1 / E[phi'(sqrt(q*) z)^2]`` and ``sigma_b2 = q* - sigma_w2 E[phi(sqrt(q*) z)^2]`` (Pennington et al.
    2017, Sec. 4: a small ``q*`` on the critical line gives dynamical isometry for tanh-like activations).

    Raises
    ------
    ValueError
        ``q_star`` negative or not finite, or no critical point has this ``q*`` (``sigma_b2`` would be negative, or
        ``E[phi'^2] = 0``).
    FixedPointError
        ``q_star`` would be an unstable fixed point there (the length map started below converges to another ``q*``,
        where ``chi_1 != 1``).
    """
    act = get_activation(activation)
    q = float(q_star)
    if not math.isfinite(q) or q < 0:
        raise ValueError(f"q_star must be a finite variance >= 0, got {q_star!r}")
    solver = solver_for(act)
    sw2, sb2 = solver.critical_point(q)
    if not math.isfinite(sw2):
        raise ValueError(f"{act.name}: E[phi'^2] = 0 at q* = {q:g}; no critical point")
    if sb2 < -1e-14 * max(q, 1.0):
        raise ValueError(f"{act.name}: no critical point with q* = {q:g} (it would need sigma_b2 = {sb2:.6g} < 0)")
    sb2 = max(sb2, 0.0)
    if not solver.homogeneous:
        stable, found = is_stable(solver.moments, q, sw2, sb2)
        if not stable:
            raise FixedPointError(f"{act.name}: q* = {q:g} is an unstable fixed point at sigma_w2 = {sw2:.6g}, "
                                  f"sigma_b2 = {sb2:.6g} (the length map from below converges to q* = {found:.6g}, "
                                  "where chi_1 != 1); no critical point has this q*")
    return sw2, sb2


def critical_sigma_w2(activation, sigma_b2: float) -> tuple[float, float]:
    """The critical weight variance at a given bias variance: ``sigma_w2`` with ``chi_1 = 1``, and ``q*`` there.

    Solves ``critical_point(activation, q)[1] = sigma_b2`` for ``q`` (Brent's method, bracketed on a geometric
    ladder of ``q``), then ``sigma_w2 = 1/E[phi'(sqrt(q) z)^2]``, keeping only a root that is the *stable* fixed
    point the length map reaches (Schoenholz et al. 2017: the critical line is a line of stable fixed points).

    Returns
    -------
    (sigma_w2, q_star) : tuple of float
        ``q_star = inf`` (with a :class:`NoFixedPointWarning`) for positively homogeneous activations (relu, leaky relu,
        linear) with ``sigma_b2 > 0``, whose critical line has no finite fixed point.

    Raises
    ------
    FixedPointError
        No critical point exists at this ``sigma_b2``, or ``chi_1 = 1`` only at unstable fixed points (the message
        says which, e.g. gelu, swish, ``x*tanh(x)``, ``exp(x)`` at some ``sigma_b2``).
    """
    act = get_activation(activation)
    _, sb2 = _check_variances(1.0, sigma_b2)
    if sb2.ndim:
        raise TypeError("critical_sigma_w2 takes a scalar sigma_b2; use critical_line for arrays")
    return solver_for(act).critical_sigma_w2(float(sb2))


def critical_line(activation, sigma_b2) -> pd.DataFrame:
    """The critical line ``chi_1 = 1`` at each bias variance: DataFrame with columns ``sigma_b2, sigma_w2, q_star``."""
    act = get_activation(activation)
    sb2 = np.atleast_1d(np.asarray(sigma_b2, dtype=np.float64)).ravel()
    rows = [critical_sigma_w2(act, float(b)) for b in sb2]
    import pandas as pd

    return pd.DataFrame({"sigma_b2": sb2, "sigma_w2": [r[0] for r in rows], "q_star": [r[1] for r in rows]})


def iterate_maps(activation, sigma_w2: float, sigma_b2: float, q0: float, c0: float, depth: int) -> pd.DataFrame:
    """Layer-by-layer iteration of the length and correlation maps from two inputs with ``q^0 = q0``, ``c^0 = c0``.

    ``q^{l+1} = sigma_w2 V(q^l) + sigma_b2`` and
    ``c^{l+1} = (sigma_w2 E[phi(h1) phi(h2)] + sigma_b2) / q^{l+1}`` with ``(h1, h2)`` of variance ``q^l`` and
    correlation ``c^l`` (exact two-point kernel, not linearised).

    Returns
    -------
    pandas.DataFrame
        Columns ``layer`` (0..depth), ``q``, ``c``.
    """
    act = get_activation(activation)
    sw2, sb2 = (float(v) for v in _check_variances(sigma_w2, sigma_b2))
    q0 = float(q0)
    c0 = float(c0)
    if not math.isfinite(q0) or q0 < 0:
        raise ValueError(f"q0 must be a finite variance >= 0, got {q0!r}")
    if not math.isfinite(c0) or abs(c0) > 1:
        raise ValueError(f"c0 must be a correlation in [-1, 1], got {c0!r}")
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ValueError(f"depth must be an integer >= 0, got {depth!r}")
    moments = solver_for(act).moments
    qs, cs = [q0], [c0]
    q, c = q0, c0
    for _ in range(int(depth)):
        q_next = sw2 * moments(q)[0] + sb2
        k12 = gaussian_kernel(act, q, q, c * q)
        if not math.isfinite(q_next):
            raise FloatingPointError(f"iterate_maps: q diverged to {q_next} (no finite fixed point?)")
        c = (sw2 * k12 + sb2) / q_next if q_next > 0 else 1.0
        c = min(max(c, -1.0), 1.0)
        q = q_next
        qs.append(q)
        cs.append(c)
    import pandas as pd

    return pd.DataFrame({"layer": np.arange(len(qs)), "q": qs, "c": cs})
