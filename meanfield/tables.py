"""Chebyshev tables of the functions of ``q`` a fully connected grid needs, built from functions of ``q`` and cached
on disk.

Every fully connected quantity depends on ``(sigma_w2, sigma_b2)`` only through ``q*`` and ``c``. The functions of
``q`` -- ``V(q) = E[phi^2]`` (tabulated as ``W(q) = (V(q) - V(0))/q``, so that ``V`` keeps its relative accuracy at
small ``q``, where the fixed point at ``sigma_b2 = 0`` depends on ``V(q)/q``), ``D(q) = E[phi'^2]``, ``V'(q)`` and the
squared Hermite coefficients ``b_k(q) = a_k(q)^2`` -- are sampled once per activation at the nodes of piecewise
Chebyshev interpolants in
``s = sqrt(q)`` (panels of width :data:`PANEL` in ``s``, :data:`DEGREE` + 1 nodes each), built lazily up to the largest
``q*`` a grid needs (at most :data:`S_MAX`\\ ^2). On each panel the Mehler series keeps ``K`` terms, ``K`` the smallest
degree of :func:`meanfield.hermite.degree_schedule` with Parseval tail ``V - sum_k b_k <= TAIL_RTOL V`` at the panel's
largest ``q``. Each panel's interpolants are checked against the sampled function at two off-node points when built
(``max_error`` records the largest relative error of ``V, D, V'``; a warning is issued above 1e-12).

Disk cache: the coefficients are stored (``.npz``, written to a temporary file and renamed) in
``$SIGPROP_CACHE_DIR``, else ``$XDG_CACHE_HOME/sigprop-theory``, else ``~/.cache/sigprop-theory``, keyed by a hash of
the activation's name and :data:`TABLE_VERSION`; a file that cannot be read or does not match is ignored and rebuilt,
a directory that cannot be written is silently not used.
"""

from __future__ import annotations

import hashlib
import math
import os
import pathlib
import tempfile
import warnings
from collections.abc import Callable

import numba
import numpy as np

from .hermite import DEGREE_MAX, degree_schedule
from .quadrature import QuadratureWarning

__all__ = [
    "DEGREE", "PANEL", "Q_SERIES_MIN", "S_MAX", "TABLE_VERSION",
    "ChebyshevTables", "cache_dir", "chebyshev_basis", "locate", "table_moments", "table_rows",
]

#: Panel width in ``s = sqrt(q)``.
PANEL = 0.25
#: Chebyshev degree per panel.
DEGREE = 15
#: Largest ``s = sqrt(q)`` the tables cover (``q <= 100``); beyond, points go to the scalar path.
S_MAX = 10.0
#: Parseval tail at which a panel's Mehler series is truncated.
TAIL_RTOL = 1e-15
#: Below this ``q`` (the first panel) the interpolated ``b_k ~ q^k`` lose their relative accuracy: chaotic points with a
#: smaller ``q*`` go to the scalar path.
Q_SERIES_MIN = PANEL**2
#: Smallest series degree of a panel.
PANEL_DEGREE_START = 64
#: Bumped whenever the tables' numerics change, so stale cache files are not used.
TABLE_VERSION = "3"

_NODES = np.cos(np.pi * (np.arange(DEGREE + 1) + 0.5) / (DEGREE + 1))  # Chebyshev points of the first kind


def cache_dir() -> pathlib.Path:
    """Directory of the on-disk table cache (see the module docstring)."""
    explicit = os.environ.get("SIGPROP_CACHE_DIR")
    if explicit:
        return pathlib.Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "sigprop-theory"


def _cheb_coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients (axis 0) from values at :data:`_NODES` (axis 0)."""
    n = DEGREE + 1
    theta = np.pi * (np.arange(n) + 0.5) / n
    basis = np.cos(np.outer(np.arange(n), theta))  # (j, node)
    coef = 2.0 / n * basis @ values
    coef[0] *= 0.5
    return coef


class ChebyshevTables:
    """Piecewise Chebyshev interpolants in ``s = sqrt(q)`` of ``(V, D, V')`` and ``b_k`` (built lazily, panel by
    panel).

    Parameters
    ----------
    moments : callable
        ``q -> (V(q), D(q), V'(q))`` for a float ``q > 0``.
    squares : callable or None
        ``(q_nodes, kmax) -> b`` with ``b[i, k] = a_k(q_nodes[i])^2``, shape ``(n, kmax + 1)`` (raises
        FloatingPointError when the degree is too high to compute); None when the correlation map is not needed from
        the tables (closed forms, kinked activations).
    key : str or None
        Name of the tabulated activation for the disk cache; None disables it.
    """

    def __init__(self, moments: Callable[[float], tuple[float, float, float]],
                 squares: Callable[[np.ndarray, int], np.ndarray] | None, key: str | None = None):
        self.moments = moments
        self.squares = squares
        self.moment_coef = np.zeros((0, DEGREE + 1, 3))  # (panel, j, [V, D, V'])
        self.b_coef = np.zeros((0, 1, DEGREE + 1))  # (panel, k, j)
        self.kmax = np.zeros(0, dtype=np.int64)
        self.max_error = 0.0
        self._path = None
        if key is not None:
            digest = hashlib.sha256(f"{key}|{TABLE_VERSION}|{PANEL}|{DEGREE}|{TAIL_RTOL}|{DEGREE_MAX}".encode())
            self._path = cache_dir() / f"fc-tables-{digest.hexdigest()[:24]}.npz"
            self._load()

    @property
    def s_hi(self) -> float:
        """Largest ``s = sqrt(q)`` covered."""
        return PANEL * self.kmax.size

    def ensure(self, q_needed: float) -> None:
        """Build panels until the table covers ``q <= q_needed`` (capped at ``S_MAX^2``); saves new panels."""
        s_needed = min(math.sqrt(max(q_needed, 0.0)), S_MAX)
        grown = False
        while self.s_hi < s_needed + 1e-12:
            self._add_panel()
            grown = True
        if grown:
            self._save()

    def _add_panel(self) -> None:
        i = self.kmax.size
        lo, hi = i * PANEL, (i + 1) * PANEL
        s_nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * _NODES
        q_nodes = s_nodes**2
        v0 = self.moments(0.0)[0]
        moments = np.array([self.moments(float(q)) for q in q_nodes])
        moments[:, 0] = (moments[:, 0] - v0) / q_nodes
        mc = _cheb_coefficients(moments)
        kmax, b = self._panel_series(q_nodes, hi * hi)
        bc = _cheb_coefficients(b)
        for t in (-0.37, 0.81):  # self-check at two off-node points
            s = 0.5 * (lo + hi) + 0.5 * (hi - lo) * t
            direct = np.array(self.moments(s * s))
            approx = np.polynomial.chebyshev.chebval(t, mc)
            approx[0] = v0 + s * s * approx[0]
            err = float(np.max(np.abs(approx - direct) / np.maximum(np.abs(direct), 1e-300)))
            self.max_error = max(self.max_error, err)
            if err > 1e-12:
                warnings.warn(f"Chebyshev table error {err:.1e} at q={s * s:.4g}", QuadratureWarning, stacklevel=3)
        width = max(self.b_coef.shape[1], kmax + 1)
        self.b_coef = _pad(self.b_coef, width)
        self.moment_coef = np.concatenate([self.moment_coef, mc[None]])
        self.b_coef = np.concatenate([self.b_coef, _pad(bc.T[None], width)])
        self.kmax = np.append(self.kmax, kmax)

    def _panel_series(self, q_nodes: np.ndarray, q_hi: float) -> tuple[int, np.ndarray]:
        """The panel's degree ``K`` (0 without series) and ``b_k`` at its nodes, shape ``(n, K + 1)``."""
        if self.squares is None:
            return 0, np.zeros((q_nodes.size, 1))
        v_hi = self.moments(q_hi)[0]
        kmax = 0
        for k in degree_schedule(PANEL_DEGREE_START):
            try:
                b = self.squares(np.array([q_hi]), k)[0]
            except FloatingPointError:
                break
            kmax = k
            if v_hi - b.sum() <= TAIL_RTOL * v_hi or b[k // 2:].sum() <= 1e-3 * TAIL_RTOL * v_hi:
                break
        return kmax, self.squares(q_nodes, kmax)

    def _load(self) -> None:
        try:
            with np.load(self._path, allow_pickle=False) as data:
                mc, bc, kmax = data["moment_coef"], data["b_coef"], data["kmax"]
                max_error = float(data["max_error"])
        except Exception:  # noqa: BLE001 - a missing, truncated or foreign file: rebuild
            return
        if (mc.ndim != 3 or mc.shape[1:] != (DEGREE + 1, 3) or bc.ndim != 3 or bc.shape[0] != mc.shape[0]
                or bc.shape[2] != DEGREE + 1 or kmax.shape != (mc.shape[0],) or not np.all(np.isfinite(mc))
                or not np.all(np.isfinite(bc)) or (kmax.size and bc.shape[1] < kmax.max() + 1)):
            return
        self.moment_coef, self.b_coef = np.ascontiguousarray(mc), np.ascontiguousarray(bc)
        self.kmax, self.max_error = kmax.astype(np.int64), max_error

    def _save(self) -> None:
        if self._path is None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, moment_coef=self.moment_coef, b_coef=self.b_coef, kmax=self.kmax,
                             max_error=np.array(self.max_error))
                os.replace(tmp, self._path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass  # a cache that cannot be written is not used


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    """Zero-pad axis 1 (the Hermite degree) to ``width``."""
    if a.shape[1] >= width:
        return a
    out = np.zeros((a.shape[0], width, a.shape[2]))
    out[:, : a.shape[1]] = a
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation inside Numba kernels
# ---------------------------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _cheb3(coef, panel, t):
    """Clenshaw evaluation of the three Chebyshev series ``coef[panel, :, 0..2]`` at ``t`` in [-1, 1] (one loop: the
    three recurrences run side by side)."""
    u1 = u2 = v1 = v2 = w1 = w2 = 0.0
    for j in range(coef.shape[1] - 1, 0, -1):
        u1, u2 = 2.0 * t * u1 - u2 + coef[panel, j, 0], u1
        v1, v2 = 2.0 * t * v1 - v2 + coef[panel, j, 1], v1
        w1, w2 = 2.0 * t * w1 - w2 + coef[panel, j, 2], w1
    return (t * u1 - u2 + coef[panel, 0, 0], t * v1 - v2 + coef[panel, 0, 1], t * w1 - w2 + coef[panel, 0, 2])


@numba.njit(cache=True)
def chebyshev_basis(t, out):
    """``out[j] = T_j(t)`` for ``j = 0..out.size - 1`` (three-term recurrence; stable for ``t`` in [-1, 1])."""
    out[0] = 1.0
    if out.size > 1:
        out[1] = t
    for j in range(2, out.size):
        out[j] = 2.0 * t * out[j - 1] - out[j - 2]


@numba.njit(cache=True, fastmath={"contract", "reassoc"})
def table_rows(coef, panel, basis, k_lo, k_hi, out):
    """``out[k] = max(b_k, 0)`` for ``k = k_lo..k_hi``: the Chebyshev series ``coef[panel, k, :]`` (``b_k`` on a
    panel) summed against ``basis = T_j(t)`` (:func:`chebyshev_basis`); returns ``(sum_k k b_k, sum_k b_k)`` over
    those ``k`` (the Mehler series' partial sums of ``q D`` and ``V``).

    Each row is an independent length-``DEGREE + 1`` dot product (summed in any order: the terms are bounded by the
    row's largest coefficient, so any order keeps the rounding error at a few ulps of it), which vectorizes, unlike
    Clenshaw's recurrence."""
    dsum = 0.0
    psum = 0.0
    for k in range(k_lo, k_hi + 1):
        s = 0.0
        for j in range(DEGREE + 1):
            s += coef[panel, k, j] * basis[j]
        s = max(s, 0.0)
        out[k] = s
        dsum = dsum + k * s
        psum = psum + s
    return dsum, psum


@numba.njit(cache=True)
def locate(q, s_hi):
    """Panel index and local coordinate ``t`` in [-1, 1] of ``q``; index -1 outside the table."""
    s = math.sqrt(q)
    if s >= s_hi:
        return -1, 0.0
    i = int(s / PANEL)
    t = 2.0 * (s - i * PANEL) / PANEL - 1.0
    return i, t


@numba.njit(cache=True)
def table_moments(mc, s_hi, q, m0):
    """``(V, D, V')`` at ``q`` from the tables (``m0 = (V(0), D(0), V'(0))``); nan outside the table."""
    if q == 0.0:
        return m0[0], m0[1], m0[2]
    i, t = locate(q, s_hi)
    if i < 0:
        return math.nan, math.nan, math.nan
    w, d, vp = _cheb3(mc, i, t)
    return m0[0] + q * w, d, vp
