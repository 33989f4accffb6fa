"""The functions of ``q`` every fully connected quantity is built from (Poole et al. 2016, Eqs. 3 and 7):

``V(q) = E[phi(sqrt(q) z)^2]``, ``D(q) = E[phi'(sqrt(q) z)^2]`` and
``V'(q) = dV/dq = E[z phi(sqrt(q) z) phi'(sqrt(q) z)] / sqrt(q)`` (differentiation under the integral; equals
``E[phi'^2] + E[phi phi'']`` by the heat equation, with the Dirac masses of ``phi''`` at kinks included), for
``z ~ N(0, 1)``. Closed forms where :mod:`meanfield.closed_forms` has them, else the quadrature of
:mod:`meanfield.quadrature`.
"""

from __future__ import annotations

import math

import numpy as np

from .activations import Activation
from .closed_forms import closed_moments
from .quadrature import gaussian_expectation

__all__ = ["LengthMoments"]


class LengthMoments:
    """``q -> (V(q), D(q), V'(q))`` for one activation, cached per ``q``.

    Calling the instance with a float ``q >= 0`` returns the tuple of floats. Raises FloatingPointError where
    ``E[phi^2]`` overflows (the length map diverges there).
    """

    CACHE_MAX = 100_000

    def __init__(self, act: Activation):
        self.act = act
        self._cache: dict[float, tuple[float, float, float]] = {}

    def __call__(self, q: float) -> tuple[float, float, float]:
        cached = self._cache.get(q)
        if cached is not None:
            return cached
        act = self.act
        out = closed_moments(act, q)
        if out is None:
            if q == 0.0:
                tiny = np.array([-1e-300, 1e-300])
                d, d2 = act.dphi(tiny), act.d2phi(tiny)
                p0 = float(act.phi(0.0))
                out = (p0 * p0, float(np.mean(d * d)), float(np.mean(d * d) + p0 * np.mean(d2)))
            else:
                s = math.sqrt(q)

                def integrand(z):
                    h = s * z
                    p, d = act.phi(h), act.dphi(h)
                    return np.stack([p * p, d * d, z * p * d / s], axis=-1)

                v, d, vp = gaussian_expectation(integrand, q, act.kinks, oscillatory=act.oscillatory)
                out = (float(v), float(d), float(vp))
        if len(self._cache) > self.CACHE_MAX:
            self._cache.clear()
        self._cache[q] = out
        return out

    def at_nodes(self, q_nodes: np.ndarray) -> np.ndarray:
        """``(V, D, V')`` at each of ``q_nodes``, shape ``(n, 3)``."""
        return np.array([self(float(q)) for q in q_nodes])
