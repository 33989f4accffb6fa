"""Slow, independent reference for the limiting Jacobian spectrum of ``rmt.jacobian_spectrum`` (issue 14).

Nothing of :mod:`rmt`'s numerics is used: ``q*`` is the brentq root of :func:`reference.q_star` (adaptive ``quad``),
``phi'`` the hand-written derivative of :data:`reference.ACTIVATIONS`, and the density at one ``lam`` comes from

1. the physical root of ``log lam = F(z)``, ``F(z) = a log(1 + m) + (L - 1) log m + L log(sigma_w2 z)``,
   ``m = M_{D^2}(z) = E[d / (z - d)]``, ``d = phi'(h)^2``, ``h ~ N(0, q*)`` (``a = 1 - L`` orthogonal, ``1`` Gaussian
   weights; Pennington, Schoenholz, Ganguli 2018, Eqs. 7-13; docs/spectra.md): it is defined by analytic
   continuation of ``G_{JJ^T}`` from ``lam -> infinity`` through the upper half plane, so it is followed in
   ``u = log lam`` from ``u = F(i R)`` (large ``R``, ``Im u = pi/2``) to ``Re u = log lam`` at fixed ``Im u``, then
   ``Im u -> 0`` (adaptive steps, numpy sums over a composite Gauss-Legendre rule in ``h`` of its own);
2. Newton polishing on the real axis with ``G = E[1 / (z - d)]`` and ``M' = -E[d / (z - d)^2]`` from adaptive
   ``scipy.integrate.quad`` over ``h``, split where ``phi'(h)^2 = Re z`` (the near-pole), so the continuous law of
   ``D^2`` is resolved however close ``z`` comes to the real axis (no quadrature atoms).

The density is ``-Im m / (pi lam)``. A few seconds per point: for tests at a handful of points.
"""

from __future__ import annotations

import math

import numpy as np
import reference as ref
from scipy.integrate import quad
from scipy.optimize import brentq

_H_MAX = 13.0  # |h| <= 13 sqrt(q): the N(0, 1) tail beyond is 1e-38


def _atomic_rule(q: float, panels: int = 416, nodes: int = 24):
    """Composite Gauss-Legendre rule for ``E[g(h)]``, ``h ~ N(0, q)``: nodes ``h`` and weights (numpy only)."""
    s = math.sqrt(q)
    x, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(-_H_MAX, _H_MAX, panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    t = (0.5 * (edges[:-1] + edges[1:]))[:, None] + half * x
    weights = (half * w) * np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    return (s * t).ravel(), weights.ravel()


class ReferenceSpectrum:
    """``density(lam)`` of ``J J^T`` for ``activation`` (a key of :data:`reference.ACTIVATIONS`) at its fixed point."""

    def __init__(self, activation: str, sigma_w2: float, sigma_b2: float, depth: int, weights: str):
        self.dphi = ref.ACTIVATIONS[activation][1]
        self.q = ref.q_star(activation, sigma_w2, sigma_b2)
        self.sigma_w2, self.depth = sigma_w2, depth
        self.a = 1.0 - depth if weights == "orthogonal" else 1.0
        h, self.w = _atomic_rule(self.q)
        self.d = np.array([self.dphi(x) ** 2 for x in h])
        self._grid_h = np.linspace(-_H_MAX, _H_MAX, 20001) * math.sqrt(self.q)
        self._grid_d = np.array([self.dphi(x) ** 2 for x in self._grid_h])

    # F and F' from (1 + m, m, m')
    def _f(self, z, p, m, dm):
        L = self.depth
        f = self.a * np.log(p) + (L - 1) * np.log(m) + L * (math.log(self.sigma_w2) + np.log(z))
        f1 = (self.a / p + (L - 1) / m) * dm + L / z
        return f, f1

    def _atomic(self, z):
        r = 1.0 / (z - self.d)
        return z * np.sum(self.w * r), np.sum(self.w * self.d * r), -np.sum(self.w * self.d * r * r)

    def _quad(self, z):
        s = math.sqrt(self.q)
        sign = np.sign(self._grid_d - z.real)
        cross = np.nonzero(sign[:-1] != sign[1:])[0]
        # the near-poles: the exact crossings phi'(h)^2 = Re z, each with breakpoints on the scale of its distance from
        # the real axis, Im z / |d'(h)| (a pole 1e-13 wide inside an interval is otherwise missed by quad's rule)
        poles = []
        for i in cross:
            lo, hi = self._grid_h[i], self._grid_h[i + 1]
            r = brentq(lambda h: self.dphi(h) ** 2 - z.real, lo, hi, xtol=1e-300, rtol=1e-15)
            e = 1e-7 * (hi - lo)
            slope = abs(self.dphi(r + e) ** 2 - self.dphi(r - e) ** 2) / (2 * e)
            poles.append((r, abs(z.imag) / slope if slope > 0 else 0.0))
        cuts = sorted({0.0, *(r for r, _ in poles)})
        edges = [-_H_MAX * s, *cuts, _H_MAX * s]

        def points_in(lo, hi):
            pts = set()
            for r, width in poles:
                if width <= 0:
                    continue
                for k in range(-2, 40):
                    e = width * 10.0 ** (k / 2)
                    if e > hi - lo:
                        break
                    pts.update(x for x in (r - e, r + e) if lo < x < hi)
            return sorted(pts)

        def expect(g):
            total = 0j
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                def pdf(h):
                    return math.exp(-0.5 * h * h / self.q) / math.sqrt(2.0 * math.pi * self.q)
                pts = points_in(lo, hi) or None
                re = quad(lambda h: (g(h) * pdf(h)).real, lo, hi, epsabs=0.0, epsrel=1e-13, limit=400, points=pts)[0]
                im = quad(lambda h: (g(h) * pdf(h)).imag, lo, hi, epsabs=0.0, epsrel=1e-13, limit=400, points=pts)[0]
                total += complex(re, im)
            return total

        def d(h):
            return self.dphi(h) ** 2

        gz = expect(lambda h: 1.0 / (z - d(h)))
        m = expect(lambda h: d(h) / (z - d(h)))
        dm = -expect(lambda h: d(h) / (z - d(h)) ** 2)
        return z * gz, m, dm

    def _newton(self, u, z, parts, tol=1e-13, maxit=60):
        for _ in range(maxit):
            f, f1 = self._f(z, *parts(z))
            e = f - u
            e = complex(e.real, (e.imag + math.pi) % (2.0 * math.pi) - math.pi)
            dz = -e / f1
            while abs(dz) > 0.5 * abs(z):
                dz *= 0.5
            z = z + dz
            if abs(dz) <= tol * abs(z):
                return z, True
        return z, False

    def _follow(self, path, z):
        t, h = 0.0, 1e-3
        while t < 1.0:
            t_new = min(1.0, t + h)
            z_new, ok = self._newton(path(t_new), z, self._atomic)
            if ok and abs(z_new - z) < 0.3 * abs(z):
                z, t, h = z_new, t_new, min(1.5 * h, 0.02)
            else:
                h *= 0.5
                if h < 1e-12:
                    raise RuntimeError(f"reference continuation stalled at t = {t}")
        return z

    def density(self, lam: float) -> float:
        z = complex(0.0, 1e3 * float(self.d.max()))
        u0 = self._f(z, *self._atomic(z))[0]
        log_lam = math.log(lam)
        z = self._follow(lambda t: complex(u0.real + (log_lam - u0.real) * t, u0.imag), z)
        z = self._follow(lambda t: complex(log_lam, u0.imag + (0.05 - u0.imag) * t), z)
        for im in (0.02, 0.005, 0.0):  # the last stretch to the real axis on the continuous law
            z, ok = self._newton(complex(log_lam, im), z, self._quad)
            if not ok:
                raise RuntimeError(f"reference Newton failed at lam = {lam}")
            z = z.conjugate() if z.imag < 0 else z
        return -self._quad(z)[1].imag / (math.pi * lam)
