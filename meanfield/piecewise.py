"""Exact two-point kernel ``E[phi'(u1) phi'(u2)]`` of an activation whose phi' is piecewise exponential.

With ``phi'(x) = sum_i a_i exp(r_i x) 1{lo_i < x < hi_i}`` (:attr:`meanfield.activations.Activation.dphi_pieces`) and
``u1, u2`` of variance ``q`` and correlation ``t``, each pair of pieces contributes
``a_i a_j E[exp(r_i u1 + r_j u2) 1{u1 in I_i, u2 in I_j}]``, a tilted bivariate normal rectangle probability. Each
piece is oriented (``v = -u`` for a negative rate) so that its rate is ``>= 0``; its indicator is
``1{v < hi} - 1{v < lo}``, and ``a exp(r v) = a exp(r b) exp(r (v - b))`` on ``v < b`` is bounded by ``|a| exp(r hi)``.
Every term is then :func:`meanfield.bivariate.tilted_orthants` (standardised limits ``b / sqrt(q)``, rates
``r sqrt(q)``, correlation ``+-t``), computed without overflow at any ``q``. This is the kernel of Price's theorem
(``d K / d q12 = E[phi' phi']``; Price 1958) that the correlation fixed point of kinked activations integrates
(:func:`meanfield.fixed_points.price_correlation_fixed_point`).
"""

from __future__ import annotations

import math

import numpy as np

from .bivariate import tilted_orthants

__all__ = ["check_pieces", "piecewise_dphi_kernel"]


def check_pieces(pieces) -> tuple[tuple[float, float, float, float], ...]:
    """Validate ``(lo, hi, amplitude, rate)`` pieces: ``lo < hi``, finite amplitude and rate, and bounded pieces
    (a positive rate needs a finite ``hi``, a negative one a finite ``lo``); ValueError otherwise."""
    out = []
    for piece in pieces:
        lo, hi, amp, rate = (float(v) for v in piece)
        if not (lo < hi) or math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"dphi_pieces: need lo < hi, got {piece!r}")
        if not (math.isfinite(amp) and math.isfinite(rate)):
            raise ValueError(f"dphi_pieces: amplitude and rate must be finite, got {piece!r}")
        if (rate > 0 and hi == math.inf) or (rate < 0 and lo == -math.inf):
            raise ValueError(f"dphi_pieces: piece {piece!r} is unbounded (phi' must be bounded)")
        out.append((lo, hi, amp, rate))
    return tuple(out)


def _orthant_terms(piece, root: float) -> tuple[float, list[tuple[float, float, float]]]:
    """Orientation ``s`` and the terms ``(coefficient, h, g)`` with ``piece(u) = sum coef exp(g (x - h)) 1{x < h}``,
    ``x = s u / sqrt(q)``."""
    lo, hi, amp, rate = piece
    s = -1.0 if rate < 0 else 1.0
    lo, hi, rate = (lo, hi, rate) if s > 0 else (-hi, -lo, -rate)
    g = rate * root
    terms = [(amp * math.exp(rate * hi) if rate else amp, hi / root if hi != math.inf else math.inf, g)]
    if lo != -math.inf:
        terms.append((-amp * math.exp(rate * lo) if rate else -amp, lo / root, g))
    return s, terms


def piecewise_dphi_kernel(pieces, q: float, t, one_minus_t=None) -> np.ndarray:
    """``E[phi'(u1) phi'(u2)]`` for ``u1, u2 ~ N(0, q)`` with correlation ``t`` (array), exactly, for phi' given by
    ``pieces`` (``(lo, hi, amplitude, rate)``, see :func:`check_pieces`).

    Parameters
    ----------
    pieces : sequence of (lo, hi, amplitude, rate)
    q : float
        Variance ``> 0``.
    t : array_like
        Correlations in ``[-1, 1]``.
    one_minus_t : array_like, optional
        ``1 - t`` to full relative accuracy (next to ``t = 1``); defaults to ``1 - t``.

    Returns
    -------
    ndarray
        The kernel at each ``t`` (absolute accuracy about 1e-15 of ``max |amplitude| ** 2``).
    """
    if not (q > 0 and math.isfinite(q)):
        raise ValueError(f"piecewise_dphi_kernel: q must be finite and > 0, got {q!r}")
    t = np.asarray(t, dtype=np.float64)
    omt = 1.0 - t if one_minus_t is None else np.asarray(one_minus_t, dtype=np.float64)
    root = math.sqrt(q)
    oriented = [_orthant_terms(p, root) for p in check_pieces(pieces)]
    rows = []  # (weight, h1, h2, g1, g2, same orientation)
    for i, (si, ti) in enumerate(oriented):
        for j in range(i, len(oriented)):
            sj, tj = oriented[j]
            mult = 1.0 if i == j else 2.0  # the kernel is symmetric in (u1, u2)
            for ci, hi, gi in ti:
                for cj, hj, gj in tj:
                    rows.append((mult * ci * cj, hi, hj, gi, gj, si * sj))
    rows = np.array(rows, dtype=np.float64).reshape(-1, 6)
    weight, h1, h2, g1, g2, sign = (rows[:, k][:, None] for k in range(6))
    flat_t = t.ravel()[None, :]
    flat_omt = omt.ravel()[None, :]
    rho = sign * flat_t
    omr = np.where(sign > 0, flat_omt, 2.0 - flat_omt)
    values = tilted_orthants(h1, h2, g1, g2, rho, omr)
    return np.sum(weight * values, axis=0).reshape(t.shape)
