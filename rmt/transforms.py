"""Free-probability transforms of the building blocks of a deep network's Jacobian ``J = prod_l D^l W^l``.

Conventions (Pennington, Schoenholz, Ganguli 2017, 2018; ``docs/formulas.md``, "From S-transforms to a
density"): for a spectral law ``rho`` (of ``W W^T``, ``D^2`` or ``J J^T``)

* Stieltjes transform ``G(z) = int rho(t) / (z - t) dt``, so that ``rho(x) = -Im G(x + i0) / pi``;
* moment generating function ``M(z) = z G(z) - 1 = sum_k m_k / z^k``;
* S-transform ``S(m) = (1 + m) / (m M^{-1}(m))`` on the branch of ``M^{-1}`` with ``M^{-1}(m) -> infinity`` as
  ``m -> 0`` (so ``S(0) = 1 / m_1``). S-transforms of free factors multiply.

Weight ensembles (``weights="gaussian"`` or ``"orthogonal"``). A layer ``W`` of shape ``(n_out, n_in)`` has
i.i.d. ``N(0, sigma_w2 / n_in)`` entries (Gaussian) or is ``sqrt(sigma_w2)`` times a Haar orthogonal matrix (square).
The law of ``W W^T`` is Marchenko-Pastur with ``ratio = n_out / n_in`` (an atom of mass ``1 - 1/ratio`` at 0 when
``ratio > 1``), respectively a point mass at ``sigma_w2``.

``D^2 = diag(phi'(h)^2)`` with ``h ~ N(0, q)``: every expectation over it is a weighted sum over the core's Gaussian
quadrature nodes (:func:`meanfield.gaussian_nodes`), so ``D^2`` is represented by atoms ``d_i = phi'(h_i)^2`` with
weights ``w_i`` (:func:`d2_law`). Its transforms are exact sums over those atoms; off the real axis (``Im z`` larger
than the spacing of the atoms) or outside the range of ``phi'^2`` they equal the transforms of the continuous law to
the accuracy of the quadrature (measured against adaptive quadrature: 1e-11; 1e-6 at ``Im z = 0.3``, 1e-3 at
``Im z = 0.1`` inside the range, for tanh at ``q = 0.57``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numba
import numpy as np

from meanfield import NoFixedPointWarning, gaussian_nodes, get_activation, q_star
from meanfield.quadrature import standard_normal_rule

from .checks import check_positive, check_sigma_b2, check_weights, is_positively_homogeneous

__all__ = [
    "D2Law",
    "d2_law",
    "stieltjes_sums",
    "d2_moment_generating",
    "d2_moments",
    "d2_s_transform",
    "d2_stieltjes",
    "fixed_point_variance",
    "marchenko_pastur_density",
    "marchenko_pastur_edges",
    "weight_moment_generating",
    "weight_s_transform",
    "weight_stieltjes",
]



# --------------------------------------------------------------------------------------------------------------------
# Marchenko-Pastur and Haar orthogonal weights
# --------------------------------------------------------------------------------------------------------------------


def marchenko_pastur_edges(ratio: float = 1.0, sigma_w2: float = 1.0) -> tuple[float, float]:
    """Edges ``(a, b) = sigma_w2 (1 -+ sqrt(ratio))^2`` of the continuous part of the Marchenko-Pastur law.

    Parameters
    ----------
    ratio : float
        ``y > 0``: the law of ``X^T X`` for ``X`` of shape ``(N, M)`` with i.i.d. ``N(0, sigma_w2 / N)`` entries and
        ``y = M / N`` (for a network layer ``W`` of shape ``(n_out, n_in)``, ``W W^T`` has ``y = n_out / n_in``).
    sigma_w2 : float
        Entry variance times ``N`` (the law's mean).
    """
    ratio = check_positive(ratio, "ratio")
    sigma_w2 = check_positive(sigma_w2, "sigma_w2")
    return sigma_w2 * (1.0 - np.sqrt(ratio)) ** 2, sigma_w2 * (1.0 + np.sqrt(ratio)) ** 2


def marchenko_pastur_density(x: np.ndarray | float, ratio: float = 1.0, sigma_w2: float = 1.0) -> np.ndarray:
    """Density of the continuous part of the Marchenko-Pastur law (docs/formulas.md, "From S-transforms to a density").

    ``rho(x) = sqrt((b - x)(x - a)) / (2 pi sigma_w2 y x)`` on ``[a, b]`` (:func:`marchenko_pastur_edges`), 0 outside.
    For ``ratio > 1`` the law also has an atom of mass ``1 - 1/ratio`` at 0 that this density does not include
    (the continuous part then integrates to ``1/ratio``).

    Parameters
    ----------
    x : array_like
        Points (any shape); the result has the same shape.
    ratio, sigma_w2 : float
        As in :func:`marchenko_pastur_edges`.
    """
    a, b = marchenko_pastur_edges(ratio, sigma_w2)
    x = np.asarray(x, dtype=np.float64)
    inside = (x > a) & (x < b)
    xs = np.where(inside, x, 0.5 * (a + b))
    return np.where(inside, np.sqrt((b - xs) * (xs - a)) / (2.0 * np.pi * sigma_w2 * ratio * xs), 0.0)


def weight_stieltjes(z: np.ndarray | complex, weights: str, sigma_w2: float = 1.0, ratio: float = 1.0) -> np.ndarray:
    """Stieltjes transform ``G(z)`` of the law of ``W W^T`` (module docstring for the ensembles).

    Gaussian: the root of ``y sigma_w2 z G^2 - (z + sigma_w2 (y - 1)) G + 1 = 0`` with ``G ~ 1/z`` at infinity
    (Marchenko-Pastur, ``y = ratio``), written with ``sqrt(z - a) sqrt(z - b)`` so that the branch is right on all of
    ``C \\ [a, b]``. Orthogonal (square only): ``1 / (z - sigma_w2)``.

    Parameters
    ----------
    z : array_like of complex
        Points off the support (any shape).
    weights : {"gaussian", "orthogonal"}
    sigma_w2, ratio : float
        See :func:`marchenko_pastur_edges`; ``ratio`` must be 1 for orthogonal weights.
    """
    weights = check_weights(weights)
    sigma_w2 = check_positive(sigma_w2, "sigma_w2")
    ratio = check_positive(ratio, "ratio")
    z = np.asarray(z, dtype=np.complex128)
    if weights == "orthogonal":
        if ratio != 1.0:
            raise ValueError(f"ratio must be 1 for orthogonal weights (square Haar matrices), got {ratio}")
        return 1.0 / (z - sigma_w2)
    a, b = marchenko_pastur_edges(ratio, sigma_w2)
    root = np.sqrt(z - a) * np.sqrt(z - b)
    return (z + sigma_w2 * (ratio - 1.0) - root) / (2.0 * ratio * sigma_w2 * z)


def weight_moment_generating(
    z: np.ndarray | complex, weights: str, sigma_w2: float = 1.0, ratio: float = 1.0
) -> np.ndarray:
    """Moment generating function ``M(z) = z G(z) - 1`` of the law of ``W W^T`` (see :func:`weight_stieltjes`)."""
    z = np.asarray(z, dtype=np.complex128)
    return z * weight_stieltjes(z, weights, sigma_w2, ratio) - 1.0


def weight_s_transform(m: np.ndarray | complex, weights: str, sigma_w2: float = 1.0, ratio: float = 1.0) -> np.ndarray:
    """S-transform of the law of ``W W^T``: ``1 / (sigma_w2 (1 + ratio m))`` (Gaussian), ``1 / sigma_w2`` (orthogonal).

    The Gaussian case is the free Poisson law (Marchenko-Pastur) with any aspect ratio; square layers (``ratio = 1``)
    give the ``1 / (sigma_w2 (1 + m))`` of docs/formulas.md.
    """
    weights = check_weights(weights)
    sigma_w2 = check_positive(sigma_w2, "sigma_w2")
    ratio = check_positive(ratio, "ratio")
    m = np.asarray(m, dtype=np.complex128)
    if weights == "orthogonal":
        if ratio != 1.0:
            raise ValueError(f"ratio must be 1 for orthogonal weights (square Haar matrices), got {ratio}")
        return np.full_like(m, 1.0 / sigma_w2)
    return 1.0 / (sigma_w2 * (1.0 + ratio * m))


# --------------------------------------------------------------------------------------------------------------------
# D^2 = diag(phi'(h)^2), h ~ N(0, q)
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class D2Law:
    """The law of ``d = phi'(h)^2``, ``h ~ N(0, q)``, as the core's quadrature represents it.

    Attributes
    ----------
    values : ndarray, shape (n,)
        Atoms ``d_i = phi'(h_i)^2`` at the Gaussian quadrature nodes ``h_i``.
    weights : ndarray, shape (n,)
        Quadrature weights (sum 1); ``E[g(d)] = sum(weights * g(values))``.
    q : float
        Pre-activation variance.
    activation : str
        Name of the activation.
    """

    values: np.ndarray
    weights: np.ndarray
    q: float
    activation: str

    @property
    def zero_mass(self) -> float:
        """``P(phi'(h) = 0)`` (e.g. 1/2 for ReLU): the mass of the atom of ``D^2`` at exactly 0."""
        return float(self.weights[self.values == 0.0].sum())

    def moments(self, k: int) -> np.ndarray:
        """``mu_j = E[phi'(h)^(2j)]`` for ``j = 1..k``, shape ``(k,)``."""
        powers = self.values[None, :] ** np.arange(1, k + 1)[:, None]
        return powers @ self.weights

    def merged(self) -> D2Law:
        """The same law with atoms of equal value combined (weights added), sorted by value.

        ``phi'^2`` is even for tanh, erf, sigmoid, ... and the core's rule is symmetric, so half the atoms repeat:
        every Stieltjes sum over the merged law (:func:`stieltjes_sums`) costs half as much. Values within 4 ulp are
        taken as equal (they differ by rounding only)."""
        order = np.argsort(self.values, kind="stable")
        d, w = self.values[order], self.weights[order]
        new = np.concatenate([[True], np.diff(d) > 8.9e-16 * np.abs(d[1:])])
        starts = np.nonzero(new)[0]
        return D2Law(values=d[starts], weights=np.add.reduceat(w, starts), q=self.q, activation=self.activation)

    def is_point_mass(self, rtol: float = 1e-12) -> bool:
        """True when ``phi'(h)^2`` takes one value (linear activation; ``|x|``-like activations)."""
        return bool(np.ptp(self.values) <= rtol * np.max(self.values))


def d2_law(activation, q: float, nodes_per_panel: int | None = None) -> D2Law:
    """The law of ``D^2`` at pre-activation variance ``q`` from the core's Gaussian quadrature.

    Parameters
    ----------
    activation : str or meanfield.Activation
        Anything :func:`meanfield.get_activation` accepts.
    q : float
        Variance of ``h`` (``q*`` for a network at its fixed point), >= 0. At ``q = 0`` the law is the limit
        ``q -> 0``: ``phi'(0-)^2`` and ``phi'(0+)^2`` with probability 1/2 each.
    nodes_per_panel : int, optional
        Default: :func:`meanfield.gaussian_nodes`. Otherwise the core's rule on the same panels with this many
        Gauss-Legendre nodes per panel (:func:`meanfield.gaussian.standard_normal_rule`): fewer nodes give the core's
        error bound (as in its own check with :data:`meanfield.gaussian.GL_NODES_CHECK`), more nodes resolve
        ``M_{D^2}(z)`` closer to the real axis.
    """
    act = get_activation(activation)
    q = float(q)
    if not np.isfinite(q) or q < 0:
        raise ValueError(f"q must be a finite variance >= 0, got {q}")
    if q == 0.0:
        h, w = np.array([-1e-300, 1e-300]), np.array([0.5, 0.5])
    elif nodes_per_panel is not None:
        if isinstance(nodes_per_panel, bool) or not isinstance(nodes_per_panel, (int, np.integer)):
            raise TypeError(f"nodes_per_panel must be an integer >= 2, got {nodes_per_panel!r}")
        if nodes_per_panel < 2:
            raise ValueError(f"nodes_per_panel must be an integer >= 2, got {nodes_per_panel!r}")
        z, w = standard_normal_rule(q, act.kinks, n=int(nodes_per_panel))
        h = np.sqrt(q) * z
    else:
        h, w = gaussian_nodes(q, kinks=act.kinks)
    d = np.asarray(act.dphi(np.asarray(h, dtype=np.float64)), dtype=np.float64) ** 2
    w = np.asarray(w, dtype=np.float64)
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(w))):
        raise ValueError(f"phi'(h)^2 of activation {act.name!r} is not finite at the quadrature nodes for q={q}")
    keep = w > 0
    return D2Law(values=d[keep], weights=w[keep] / w[keep].sum(), q=q, activation=act.name)


def _as_law(law_or_activation, q: float | None) -> D2Law:
    if isinstance(law_or_activation, D2Law):
        return law_or_activation
    if q is None:
        raise TypeError("q is required when an activation (not a D2Law) is given")
    return d2_law(law_or_activation, q)


def d2_stieltjes(z: np.ndarray | complex, activation, q: float | None = None) -> np.ndarray:
    """Stieltjes transform ``G_{D^2}(z) = E[1 / (z - phi'(h)^2)]``, ``h ~ N(0, q)``, vectorised over ``z``.

    Parameters
    ----------
    z : array_like of complex
        Any shape.
    activation : str, meanfield.Activation or D2Law
        The activation (with ``q``) or a precomputed :func:`d2_law`.
    q : float, optional
        Pre-activation variance (required unless a ``D2Law`` is given).
    """
    law = _as_law(activation, q)
    z = np.asarray(z, dtype=np.complex128)
    return (law.weights / (z[..., None] - law.values)).sum(axis=-1)


def d2_moment_generating(z: np.ndarray | complex, activation, q: float | None = None) -> np.ndarray:
    """Moment generating function ``M_{D^2}(z) = E[d / (z - d)]``, ``d = phi'(h)^2`` (see :func:`d2_stieltjes`)."""
    law = _as_law(activation, q)
    z = np.asarray(z, dtype=np.complex128)
    return (law.weights * law.values / (z[..., None] - law.values)).sum(axis=-1)


def d2_moments(activation, q: float, k: int = 4) -> np.ndarray:
    """``mu_j = E[phi'(h)^(2j)]``, ``j = 1..k``, ``h ~ N(0, q)``: the moments of ``D^2`` (shape ``(k,)``)."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return d2_law(activation, q).moments(int(k))


def d2_s_transform(
    m: np.ndarray | complex, activation, q: float | None = None, steps: int = 64, tol: float = 1e-13
) -> np.ndarray:
    """S-transform ``S_{D^2}(m) = (1 + m) / (m z)`` with ``M_{D^2}(z) = m`` (docs/formulas.md).

    ``z = M^{-1}(m)`` is followed by Newton continuation (on ``1/M(z) = 1/m``) along ``t m``, ``t`` from ``1/steps``
    to 1, starting from the series ``M^{-1}(m) ~ mu_1 / m + mu_2 / mu_1`` near ``m = 0``; this selects the branch
    with ``M^{-1}(m) -> infinity`` as ``m -> 0``. Valid on the set connected to ``m = 0`` where that branch is
    analytic (e.g. ``|m|`` below the value of ``M`` at the top of the range of ``phi'^2`` on the positive axis, and all
    of the lower half plane).

    Parameters
    ----------
    m : array_like of complex
        Nonzero points (any shape).
    activation, q
        As in :func:`d2_stieltjes`.
    steps : int
        Continuation steps.
    tol : float
        Relative Newton tolerance on ``z``.

    Raises
    ------
    RuntimeError
        If Newton does not converge for some ``m`` (the message gives the first such point).
    """
    law = _as_law(activation, q)
    m = np.asarray(m, dtype=np.complex128)
    if np.any(m == 0):
        raise ValueError("m must be nonzero (S(0) = 1/mu_1 is the limit)")
    mu1, mu2 = law.moments(2)
    d, w = law.values, law.weights
    flat = m.ravel()
    z = np.empty_like(flat)
    for j, t in enumerate(np.linspace(1.0 / steps, 1.0, steps)):
        target = t * flat
        if j == 0:
            z = mu1 / target + mu2 / mu1
        ok = np.zeros(flat.shape, dtype=bool)
        for _ in range(60):
            # Newton on 1 / M(z) = 1 / m, nearly linear in z on this branch (M ~ mu_1 / z)
            r = 1.0 / (z[:, None] - d)
            big_m = (w * d * r).sum(-1)
            dm = -(w * d * r * r).sum(-1)
            dz = -(1.0 / big_m - 1.0 / target) / (-dm / big_m**2)
            z = z + dz
            ok = np.abs(dz) <= tol * np.abs(z)
            if ok.all():
                break
        if not ok.all():
            bad = flat[~ok][0]
            raise RuntimeError(f"M_D2(z) = m did not converge at m={bad} (t={t:.3g}); outside the principal branch?")
    return ((1.0 + flat) / (flat * z)).reshape(m.shape)


def fixed_point_variance(activation, sigma_w2: float, sigma_b2: float) -> tuple[float, bool]:
    """Pre-activation variance ``q`` at which the law of ``D^2`` is taken, and whether the activation is homogeneous.

    For a positively homogeneous activation (``phi(t x) = t phi(x)``, ``t > 0``: ReLU, leaky ReLU, linear;
    :func:`rmt.checks.is_positively_homogeneous`) ``phi'(h)`` depends only on the sign of ``h``, so the law of
    ``D^2`` -- and every Jacobian spectrum built from it -- is the same at every ``q > 0``: ``q = 1`` is returned
    without solving for ``q*`` (which may be 0, infinite or not unique there, e.g. ReLU at ``sigma_w2 = 2``).
    Otherwise ``q = q*``, the core's fixed point of the length map (Poole et al. 2016, Eq. 3;
    :func:`meanfield.q_star`).

    Returns
    -------
    q : float
    homogeneous : bool

    Raises
    ------
    ValueError
        Bad variances, or no finite ``q*`` for a non-homogeneous activation.
    """
    act = get_activation(activation)
    sigma_w2 = check_positive(sigma_w2, "sigma_w2")
    sigma_b2 = check_sigma_b2(sigma_b2)
    if is_positively_homogeneous(act):
        return 1.0, True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoFixedPointWarning)  # an infinite q* is reported below as an error
        q = float(q_star(act, sigma_w2, sigma_b2))
    if not np.isfinite(q):
        raise ValueError(
            f"no finite fixed point q* for activation={act.name!r}, sigma_w2={sigma_w2}, sigma_b2={sigma_b2}: "
            "the Jacobian spectrum at the fixed point is undefined"
        )
    return q, False


@numba.njit(cache=True, error_model="numpy")
def stieltjes_sums(z, d, w):
    """``(M, z M', z^2 M'', G, z G', z^2 G'')`` at complex ``z`` of the atomic law with atoms ``d > 0`` and
    weights ``w``: ``M(z) = sum w d / (z - d)`` (the moment generating function ``E[t / (z - t)]``) and
    ``G(z) = sum w / (z - d)`` (so that ``1 + M = z G`` without cancellation) with their first two ``z``-derivatives,
    scaled by ``z`` and ``z^2``
    (summed term by term as ``w (z r) r`` and ``w (z r)^2 r``, ``r = 1 / (z - d)``: ``G'`` itself overflows where
    ``G ~ 1 / z`` and ``|z| < 1e-154``, gelu at ``sigma_b2 = 0.5``, Gaussian, depth 1). Shared by the square solver
    (:mod:`rmt.spectrum`, through :func:`rmt.d2_pieces.resolved_sums`) and the layered one (:mod:`rmt.layers`).

    Summed in real arithmetic, ``1 / (z - d) = (x - d - i y) / ((x - d)^2 + y^2)`` (a loop the compiler vectorises,
    about 5x faster than complex division); where some ``|z - d|^2`` leaves the normal float64 range (``z`` within
    ``1e-145`` of an atom, or beyond ``1e145``) the sums are redone with complex division, which scales."""
    x = z.real
    y = z.imag
    y2 = y * y
    gr = gi = g1r = g1i = g2r = g2i = mr = mi = m1r = m1i = m2r = m2i = 0.0
    lo = np.inf
    hi = 0.0
    for i in range(d.shape[0]):
        a = x - d[i]
        den = a * a + y2
        lo = min(lo, den)
        hi = max(hi, den)
        rr = a / den
        ri = -y / den
        tr = x * rr - y * ri  # t = z r
        ti = x * ri + y * rr
        ur = tr * rr - ti * ri  # u = z r^2
        ui = tr * ri + ti * rr
        vr = tr * ur - ti * ui  # v = z^2 r^3
        vi = tr * ui + ti * ur
        gr += w[i] * rr
        gi += w[i] * ri
        g1r -= w[i] * ur
        g1i -= w[i] * ui
        g2r += 2.0 * w[i] * vr
        g2i += 2.0 * w[i] * vi
        wd = w[i] * d[i]
        mr += wd * rr
        mi += wd * ri
        m1r -= wd * ur
        m1i -= wd * ui
        m2r += 2.0 * wd * vr
        m2i += 2.0 * wd * vi
    if lo > 1e-290 and hi < 1e290:
        return (complex(mr, mi), complex(m1r, m1i), complex(m2r, m2i), complex(gr, gi), complex(g1r, g1i),
                complex(g2r, g2i))
    g0 = 0j
    g1 = 0j
    g2 = 0j
    m = 0j
    m1 = 0j
    m2 = 0j
    for i in range(d.shape[0]):
        r = 1.0 / (z - d[i])
        t = z * r
        u = w[i] * t * r
        v = 2.0 * u * t
        g0 += w[i] * r
        g1 -= u
        g2 += v
        m += w[i] * d[i] * r
        m1 -= d[i] * u
        m2 += d[i] * v
    return m, m1, m2, g0, g1, g2
