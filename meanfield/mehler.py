"""Mehler's series for the two-point kernel ``E[phi(h1) phi(h2)]`` of many covariance pairs sharing few variances.

Mehler's formula (``docs/formulas.md``; Poole et al. 2016 supplement): ``E[phi(h1) phi(h2)] =
sum_k a_k(q1) a_k(q2) c^k`` with ``c = q12 / sqrt(q1 q2)`` and the Hermite coefficients of :mod:`meanfield.hermite`.
"""

from __future__ import annotations

import numpy as np

from .activations import get_activation
from .hermite import DEGREE_START, MAX_TABLE, degree_schedule, hermite_rows, hermite_rule, hermite_table
from .kernel_quadrature import BLOCK, check_covariances, kernel_quadrature

__all__ = ["MehlerKernel"]


class MehlerKernel:
    """``E[phi(h1) phi(h2)]`` by Mehler's series, fast for many covariance pairs that share few distinct variances.

    The coefficients ``a_k(q)`` and ``E[phi^2]`` of all distinct variances of a call are computed at once by
    :func:`meanfield.hermite.hermite_rows` on one rule. The degree ``K`` follows
    :func:`meanfield.hermite.degree_schedule` (from the degree the previous call needed) until every Parseval tail
    ``R(q) = E[phi^2] - sum_{k<=K} a_k^2`` is below ``TOL * E[phi^2]`` (or the table would exceed
    :data:`meanfield.hermite.MAX_TABLE`), then is cut back to the smallest schedule degree that still meets it. The
    truncation error of a pair is at most ``|c|^(K+1) sqrt(R(q1) R(q2))``; pairs where that bound exceeds
    ``TOL * sqrt(E[phi(h1)^2] E[phi(h2)^2])`` (``c`` next to +-1 at large ``q``) are evaluated by the 2-D quadrature
    :func:`meanfield.kernel_quadrature.kernel_quadrature`. Pairs with ``q1 = q2 = q12`` use ``E[phi^2]``.
    Measured: within 2e-14 of the quadrature relative to that scale (tanh, ``x*tanh(x)``, sin, gelu, softplus, swish,
    ``0.5*x + sin(x)**2``; ``q`` 0.05 to 7, ``c`` up to ``1 - 1e-12``; ``tests/test_gaussian.py``).

    Caching: the coefficients are reused while the set of distinct variances repeats (a converged or
    translation-invariant iteration), the Hermite table while the rule does. :func:`meanfield.gaussian_kernel` keeps
    one instance per activation, so repeated calls (one per layer of a CNN covariance map) share it; the cache is not
    thread-safe.

    Parameters
    ----------
    activation : str or Activation
        Any activation; those with kinks converge slowly in the series (most pairs then go to the quadrature), which is
        why :func:`meanfield.gaussian_kernel` sends them to the quadrature directly.
    """

    TOL = 1e-13
    K_START = DEGREE_START

    def __init__(self, activation):
        self.act = get_activation(activation)
        self._last: tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._degree = self.K_START
        self._table: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty((0, 0)))  # (nodes, Hermite table)

    def _hermite_at(self, z: np.ndarray, kmax: int) -> np.ndarray:
        nodes, table = self._table
        if table.shape[0] != kmax + 1 or not np.array_equal(nodes, z):  # the rule changes with q only in steps
            self._table = (z, hermite_table(z, kmax))
        return self._table[1]

    def coefficients(self, variances) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(E[phi^2], a, R)`` for sorted distinct variances.

        Parameters
        ----------
        variances : array_like, shape (P,)
            Sorted, distinct, finite, ``>= 0``.

        Returns
        -------
        second : ndarray, shape (P,)
            ``E[phi(h)^2]``, ``h ~ N(0, q)``.
        a : ndarray, shape (P, K + 1)
            Hermite coefficients ``a_k(q)`` as :func:`meanfield.hermite_coefficients`.
        tail : ndarray, shape (P,)
            Parseval tails ``max(E[phi^2] - sum_k a_k^2, 0)``.
        """
        variances = np.asarray(variances, dtype=np.float64)
        if self._last is not None and np.array_equal(self._last[0], variances):
            return self._last[1]
        result = None
        start = max(self._degree, self.K_START)
        while start > self.K_START and hermite_rule(self.act, variances, start)[0].size * (start + 1) > MAX_TABLE:
            start //= 2  # the remembered degree is too high for these variances
        for k in degree_schedule(start):
            rule = hermite_rule(self.act, variances, k)
            if result is not None and rule[0].size * (k + 1) > MAX_TABLE:
                break  # keep the last degree; unresolved pairs go to the quadrature
            second, a = hermite_rows(self.act, variances, k, rule=rule, table=self._hermite_at(rule[0], k))
            partial = np.cumsum(a * a, axis=1)
            converged = np.all(second[:, None] - partial <= self.TOL * second[:, None], axis=0)
            result = (k, second, a, partial, converged)
            if converged[-1]:
                break
        k, second, a, partial, converged = result
        while converged[-1] and k > self.K_START and converged[k // 2]:  # cut back to the degree actually needed
            k //= 2
        a = np.ascontiguousarray(a[:, :k + 1])
        tail = np.maximum(second - partial[:, k], 0.0)
        self._degree = k
        self._last = (variances, (second, a, tail))
        return second, a, tail

    def __call__(self, q1, q2, q12) -> np.ndarray:
        """``E[phi(h1) phi(h2)]`` for covariances ``[[q1, q12], [q12, q2]]`` (array_like, broadcast together).

        Returns
        -------
        ndarray
            Broadcast shape of the inputs. Raises ValueError for invalid covariances, as
            :func:`meanfield.gaussian_kernel`.
        """
        q1, q2, q12 = check_covariances(q1, q2, q12)
        return self.evaluate(q1.ravel(), q2.ravel(), q12.ravel()).reshape(q1.shape)

    def evaluate(self, q1: np.ndarray, q2: np.ndarray, q12: np.ndarray) -> np.ndarray:
        """The series for 1-D arrays of valid covariances (``|q12| <= sqrt(q1 q2)``, as checked by
        :func:`meanfield.kernel_quadrature.check_covariances`)."""
        if q1.size == 0:
            return np.empty(0)
        distinct = np.unique(np.concatenate([q1, q2]))
        second, a, tail = self.coefficients(distinct)
        i1, i2 = np.searchsorted(distinct, q1), np.searchsorted(distinct, q2)
        root = np.sqrt(q1 * q2)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.clip(np.where(root > 0, q12 / np.where(root > 0, root, 1.0), 0.0), -1.0, 1.0)
        degree = a.shape[1]
        out = np.empty(q1.shape)
        chunk = max(1, int(BLOCK // degree))
        for start in range(0, q1.size, chunk):
            sl = slice(start, start + chunk)
            powers = np.ones((c[sl].size, degree))
            powers[:, 1:] = np.cumprod(np.broadcast_to(c[sl, None], (c[sl].size, degree - 1)), axis=1)
            out[sl] = np.einsum("pk,pk,pk->p", a[i1[sl]], a[i2[sl]], powers)
        diagonal = (q1 == q2) & (q12 == q1)
        out[diagonal] = second[i1[diagonal]]
        bound = np.abs(c) ** degree * np.sqrt(tail[i1] * tail[i2])
        unresolved = ~diagonal & (bound > self.TOL * np.sqrt(second[i1] * second[i2]))
        if np.any(unresolved):
            act = self.act
            out[unresolved] = kernel_quadrature(act.phi, act.phi, act.kinks, q1[unresolved], q2[unresolved],
                                                q12[unresolved], oscillatory=act.oscillatory)
        return out
