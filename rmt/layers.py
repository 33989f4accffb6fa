"""Networks whose layers differ: widths that change with depth and per-layer ``sigma_w2``, ``sigma_b2``, activation.

Free multiplicative convolution with rectangular factors (Pennington, Schoenholz, Ganguli 2018, Sec. 2; the
rectangular bookkeeping below is derived here and in ``docs/spectra.md``). Layer ``l = 1..L`` maps width ``n_{l-1}``
to ``n_l``: ``J = D^L W^L ... D^1 W^1`` (``n_L x n_0``), ``D^l = diag(phi_l'(h^l))``. The law computed is that of the
eigenvalues of ``J J^T`` (the **output side**, ``n_L x n_L``); ``J^T J`` has the same nonzero eigenvalues and
``n_0 / n_L`` times the continuous mass.

Convention. For a law on a side of width ``n`` write ``M_n(z) = E[t / (z - t)]``. ``n M_n(z) = Tr A (z - A)^{-1}``
is the same for ``X X^T`` and ``X^T X``, so with the output-side variable ``m`` every factor is evaluated at
``m_l = r_l m``, ``r_l = n_L / n_l``, and the inverse ``Z(m) = M^{-1}(m)`` of each factor is side independent. Free
factors on one side multiply as ``Z_{AB}(m) = m Z_A(m) Z_B(m) / (1 + m)`` (``S_{AB} = S_A S_B`` with
``S(m) = (1 + m) / (m Z(m))``). Unrolling ``J_l J_l^T ~ (J_{l-1} J_{l-1}^T)(W_l^T D_l^2 W_l)`` (nonzero eigenvalues,
``n_{l-1}`` side) and ``W^T D^2 W ~ D W W^T D`` (``n_l`` side), with ``Z_{I}(m) = (1 + m) / m`` at the input,
telescopes to

    Z_J(m) = prod_{l=1}^L (m_l / (1 + m_l))^{c_l} Z_{D_l}(m_l) Z_{W_l}(m_l),   c_l = 2 (l < L), c_L = 1,

with ``Z_{D_l} = M_{D_l^2}^{-1}`` (the core's quadrature at ``q_l``) and, for ``y_l = n_l / n_{l-1}``,
``Z_W(m) = sigma_w2 (1 + m)(1 + y m) / m`` (Gaussian ``N(0, sigma_w2 / n_{l-1})`` entries: Marchenko-Pastur) or
``sigma_w2 (1 + t m) / (t m)``, ``t = max(y, 1)`` (``sqrt(sigma_w2)`` times a Haar semi-orthogonal matrix). Square
layers give back the single-unknown equation of :mod:`rmt.spectrum`. ``log lam = log Z_J(m)`` is solved for ``m``
(Newton, imaginary part wrapped modulo ``2 pi i``), every ``z_l = Z_{D_l}(m_l)`` by an inner Newton on
``1 / M(z) = 1 / m_l`` continued from the previous point; the density is ``-Im m / (pi lam)``. The atom at 0 has
mass ``1 - min(n_0, min_l n_l (1 - P(phi_l' = 0))) / n_L`` (the rank of ``J``).

Pre-activation variances (mean field, Poole et al. 2016, Eq. 3, layer by layer): ``q_0`` is the first layer's fixed
point (1 for a positively homogeneous first activation) unless given, and
``q_l = sigma_w2_l k_l E[phi_{l-1}(sqrt(q_{l-1}) z)^2] + sigma_b2_l`` with ``phi_0 = phi_1``, ``k_l = 1``
(Gaussian) or ``min(1, n_{l-1} / n_l)`` (semi-orthogonal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from meanfield import gaussian_nodes, get_activation

from .checks import check_depth, check_positive, check_sigma_b2, check_weights, is_positively_homogeneous
from .transforms import D2Law, d2_law, fixed_point_variance, stieltjes_sums

__all__ = ["Layers", "layer_variances", "network_layers"]

TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class Layers:
    """A checked description of a network's layers (:func:`network_layers`).

    Attributes
    ----------
    activations : tuple of meanfield.Activation
        ``phi_l``, one per layer.
    sigma_w2, sigma_b2 : ndarray, shape (L,)
    widths : ndarray, shape (L + 1,)
        ``n_0 .. n_L`` (only the ratios enter the limiting law).
    weights : {"gaussian", "orthogonal"}
    q : ndarray, shape (L + 1,)
        ``q_0 .. q_L`` (module docstring).
    """

    activations: tuple
    sigma_w2: np.ndarray
    sigma_b2: np.ndarray
    widths: np.ndarray
    weights: str
    q: np.ndarray

    @property
    def depth(self) -> int:
        return len(self.activations)

    @property
    def uniform(self) -> bool:
        """True when every layer is the same square layer (the fast single-unknown solver applies)."""
        names = {a.name for a in self.activations}
        return (len(names) == 1 and np.ptp(self.sigma_w2) == 0 and np.ptp(self.sigma_b2) == 0
                and np.ptp(self.widths) == 0)


def _per_layer(value, depth: int, name: str) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        return [value] * depth
    values = list(value)
    if len(values) != depth:
        raise ValueError(f"{name} must be a scalar or a sequence of depth = {depth} entries, got {len(values)}")
    return values


def layer_variances(activations, sigma_w2, sigma_b2, widths, weights: str, q0: float | None = None) -> np.ndarray:
    """Pre-activation variances ``q_0, ..., q_L`` layer by layer (module docstring), shape ``(L + 1,)``."""
    depth = len(activations)
    if q0 is None:
        q0, _ = fixed_point_variance(activations[0], sigma_w2[0], sigma_b2[0])
    q = np.empty(depth + 1)
    q[0] = check_positive(q0, "q0") if q0 != 0 else 0.0
    for layer in range(1, depth + 1):
        act = activations[max(layer - 2, 0)]  # phi_{l-1}, with phi_0 = phi_1
        h, w = gaussian_nodes(q[layer - 1], kinks=act.kinks) if q[layer - 1] > 0 else (np.zeros(1), np.ones(1))
        second = float(np.dot(w, np.asarray(act.phi(np.asarray(h, dtype=np.float64)), dtype=np.float64) ** 2))
        k = 1.0 if weights == "gaussian" else min(1.0, widths[layer - 1] / widths[layer])
        q[layer] = sigma_w2[layer - 1] * k * second + sigma_b2[layer - 1]
        if not math.isfinite(q[layer]):
            raise OverflowError(f"the pre-activation variance overflows at layer {layer}")
    return q


def network_layers(activation, sigma_w2, sigma_b2, depth: int, weights: str = "orthogonal", widths=None,
                   q0: float | None = None) -> Layers:
    """Check and complete a layer description: scalars are repeated over the ``depth`` layers.

    Parameters
    ----------
    activation : str, meanfield.Activation or sequence of them (one per layer)
    sigma_w2, sigma_b2 : float or sequence of float (one per layer)
    depth : int
    weights : {"orthogonal", "gaussian"}
    widths : sequence of ``depth + 1`` positive numbers, optional
        ``n_0 .. n_L``; default square layers.
    q0 : float, optional
        Variance of the input pre-activations ``h^0`` (default: the first layer's fixed point, 1 for homogeneous).
    """
    depth = check_depth(depth)
    weights = check_weights(weights)
    acts = tuple(get_activation(a) for a in _per_layer(activation, depth, "activation"))
    sw2 = np.array([check_positive(v, "sigma_w2") for v in _per_layer(sigma_w2, depth, "sigma_w2")])
    sb2 = np.array([check_sigma_b2(v) for v in _per_layer(sigma_b2, depth, "sigma_b2")])
    if widths is None:
        n = np.ones(depth + 1)
    else:
        n = np.array([check_positive(v, "widths") for v in widths], dtype=np.float64)
        if n.size != depth + 1:
            raise ValueError(f"widths must have depth + 1 = {depth + 1} entries (n_0 .. n_L), got {n.size}")
    if len({a.name for a in acts}) == 1 and np.ptp(sw2) == 0 and np.ptp(sb2) == 0 and np.ptp(n) == 0 and q0 is None:
        q_star, _ = fixed_point_variance(acts[0], sw2[0], sb2[0])
        q = np.full(depth + 1, q_star)
    else:
        q = layer_variances(acts, sw2, sb2, n, weights, q0)
    return Layers(acts, sw2, sb2, n, weights, q)


# --------------------------------------------------------------------------------------------------------------------
# the layered equation log lam = log Z_J(m)
# --------------------------------------------------------------------------------------------------------------------


class LayeredEquation:
    """``log Z_J(m)`` and its ``m``-derivatives for a :class:`Layers` description (module docstring).

    Holds the current inner solutions ``z_g`` (one per distinct ``(D law, r)`` group), continued from call to call.
    """

    def __init__(self, layers: Layers, laws: list[D2Law]):
        n = layers.widths
        depth = layers.depth
        keys: dict = {}
        self.group_of = np.empty(depth, dtype=int)
        self.d, self.w, self.r, self.w0 = [], [], [], []
        for layer in range(depth):
            r = float(n[-1] / n[layer + 1])
            key = (id(laws[layer]), r)
            if key not in keys:
                keys[key] = len(self.d)
                law = laws[layer].merged()  # equal atoms (even phi'^2) summed once
                keep = law.values > 0  # atoms at 0 do not enter M(z)
                self.d.append(law.values[keep])
                self.w.append(law.weights[keep])
                self.w0.append(float(law.weights[~keep].sum()))
                self.r.append(r)
            self.group_of[layer] = keys[key]
        self.r = np.array(self.r)
        c = np.where(np.arange(1, depth + 1) < depth, 2.0, 1.0)
        y = n[1:] / n[:-1]
        self.rl = n[-1] / n[1:]
        self.alpha = c - 1.0
        if layers.weights == "gaussian":
            self.beta = -(c - 1.0)
            self.gamma = y
            self.const = np.log(layers.sigma_w2)
        else:
            t = np.maximum(y, 1.0)
            self.beta = -c
            self.gamma = t
            self.const = np.log(layers.sigma_w2) - np.log(t)
        self.mu1 = np.array([np.dot(w, d) for d, w in zip(self.d, self.w, strict=True)])
        self.mu2 = np.array([np.dot(w, d * d) for d, w in zip(self.d, self.w, strict=True)])
        self.z = None

        self.offsets = np.concatenate([[0], np.cumsum([d.size for d in self.d])]).astype(np.int64)
        self.d_all = np.concatenate(self.d)
        self.w_all = np.concatenate(self.w)
        self.args = (self.d_all, self.w_all, self.offsets, self.r, self.group_of.astype(np.int64), self.rl,
                     self.alpha, self.beta, self.gamma, self.const, np.array(self.w0))

    def solve_z(self, m: complex, z0=None) -> np.ndarray | None:
        """Inner solutions ``z_g`` with ``M_g(z_g) = r_g m`` (Newton on ``1/M = 1/(r m)`` from ``z0``)."""
        if z0 is None:
            z0 = self.mu1 / (self.r * m) + self.mu2 / self.mu1
        z, ok = _solve_z(complex(m), np.asarray(z0, dtype=np.complex128), *self.args[:4])
        return z if ok else None

    def derivs(self, m: complex, z: np.ndarray) -> tuple[complex, complex, complex]:
        """``(F, F', F'')`` at ``m`` given the inner solutions ``z``."""
        try:
            return _layered_derivs(complex(m), z, *self.args)
        except ZeroDivisionError:  # z exactly on an atom of D^2 (real axis)
            nan = complex(math.nan, math.nan)
            return nan, nan, nan

    def newton(self, u: float, m0: complex, z0: np.ndarray, tol: float, maxit: int):
        """Solve ``F(m) = u`` (mod ``2 pi i``) from ``(m0, z0)``: ``(m, z, converged)``."""
        return _layered_newton(float(u), complex(m0), np.asarray(z0, dtype=np.complex128), tol, maxit, *self.args)


@numba.njit(cache=True)
def _solve_z(m, z0, d_all, w_all, offsets, r):
    out = z0.copy()
    for g in range(r.shape[0]):
        d = d_all[offsets[g]:offsets[g + 1]]
        w = w_all[offsets[g]:offsets[g + 1]]
        target = 1.0 / (r[g] * m)
        scale = d.max() if d.shape[0] else 1.0  # z is resolved relative to the range of the atoms
        z = out[g]
        done = False
        for _ in range(80):
            big_m, zm1 = stieltjes_sums(z, d, w)[:2]
            m1 = zm1 / z
            if big_m == 0 or m1 == 0:
                return out, False
            step = (1.0 / big_m - target) * big_m * big_m / m1
            z = z + step
            if abs(step) <= 1e-14 * (abs(z) + scale):
                done = True
                break
        if not done:
            return out, False
        out[g] = z
    return out, True


@numba.njit(cache=True)
def _layered_derivs(m, z, d_all, w_all, offsets, r, group_of, rl, alpha, beta, gamma, const, w0):
    """``(F, F', F'')`` of ``F(m) = log Z_J(m)``; ``1 + m_l`` is summed as ``z G(z) + P(d = 0)`` (no cancellation
    as ``m_l -> -1``, deep into a hard edge)."""
    ng = r.shape[0]
    dz = np.empty(ng, dtype=np.complex128)
    d2z = np.empty(ng, dtype=np.complex128)
    p = np.empty(ng, dtype=np.complex128)
    for g in range(ng):
        _, zm1, zzm2, g0 = stieltjes_sums(z[g], d_all[offsets[g]:offsets[g + 1]], w_all[offsets[g]:offsets[g + 1]])[:4]
        m1 = zm1 / z[g]
        m2 = zzm2 / (z[g] * z[g])
        dz[g] = r[g] / m1
        d2z[g] = -m2 * dz[g] * dz[g] / m1
        p[g] = z[g] * g0 + w0[g]
    f = 0j
    f1 = 0j
    f2 = 0j
    for layer in range(rl.shape[0]):
        g = group_of[layer]
        mu = rl[layer] * m
        onep = p[g]  # 1 + mu = 1 + M_g(z_g)
        onegp = onep if gamma[layer] == 1.0 else 1.0 + gamma[layer] * mu
        zl = z[g]
        f += alpha[layer] * np.log(mu) + beta[layer] * np.log(onep) + np.log(onegp) + const[layer] + np.log(zl)
        f1 += alpha[layer] / m + beta[layer] * rl[layer] / onep + gamma[layer] * rl[layer] / onegp + dz[g] / zl
        f2 += -alpha[layer] / (m * m) - beta[layer] * rl[layer] ** 2 / (onep * onep) \
            - (gamma[layer] * rl[layer]) ** 2 / (onegp * onegp) + (d2z[g] * zl - dz[g] * dz[g]) / (zl * zl)
    return f, f1, f2


@numba.njit(cache=True)
def _wrap_nb(r):
    return complex(r.real, r.imag - TWO_PI * math.floor((r.imag + math.pi) / TWO_PI))


@numba.njit(cache=True)
def _layered_newton(u, m0, z0, tol, maxit, d_all, w_all, offsets, r, group_of, rl, alpha, beta, gamma, const,
                    w0):
    m = m0
    z, ok = _solve_z(m, z0, d_all, w_all, offsets, r)
    if not ok:
        return m, z0, False
    f, f1, _ = _layered_derivs(m, z, d_all, w_all, offsets, r, group_of, rl, alpha, beta, gamma, const, w0)
    res = _wrap_nb(f - u)
    # F is known to about eps (1 + |u| + L + |m F'(m)|): near a hard edge (m -> -1) F' is large
    floor = 4e-16 * (1.0 + abs(u) + rl.shape[0] + abs(m * f1))
    for _ in range(maxit):
        if abs(res) <= floor:
            return m, z, True
        dm = -res / f1
        step = 1.0
        found = False
        mn = m
        zn = z
        for _ in range(30):
            mn = m + step * dm
            zn, ok = _solve_z(mn, z, d_all, w_all, offsets, r)
            if ok:
                fn, f1n, _ = _layered_derivs(mn, zn, d_all, w_all, offsets, r, group_of, rl, alpha, beta, gamma,
                                             const, w0)
                rn = _wrap_nb(fn - u)
                if abs(rn) < abs(res):
                    found = True
                    break
            step *= 0.5
        if not found:
            return m, z, abs(res) <= 100 * floor
        moved = abs(mn - m)
        m, z, f1, res = mn, zn, f1n, rn
        if moved <= tol * abs(m):
            return m, z, True
    return m, z, abs(res) <= 100 * floor


def _wrap(r: complex) -> complex:
    return complex(r.real, r.imag - TWO_PI * math.floor((r.imag + math.pi) / TWO_PI))


def layered_laws(layers: Layers) -> list[D2Law]:
    """The law of ``D_l^2`` for each layer (one object per distinct ``(activation, q_l)``)."""
    cache: dict = {}
    out = []
    for act, q in zip(layers.activations, layers.q[1:], strict=True):
        key = (act.name, 1.0 if is_positively_homogeneous(act) else float(q))
        if key not in cache:
            cache[key] = d2_law(act, key[1])
        out.append(cache[key])
    return out
