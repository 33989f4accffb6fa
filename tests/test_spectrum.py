"""Free-probability Jacobian spectra: identities, closed forms and moments (no sampling here; see test_sampling)."""

import math
import warnings

import numpy as np
import pytest
from scipy import integrate

import meanfield
from rmt import jacobian_moments, jacobian_spectrum, marchenko_pastur_density

SW2_CRIT, _ = meanfield.critical_sigma_w2("tanh", 0.05)  # 1.7609546..., q* = 0.570048...
SW2_SMALL, SB2_SMALL = meanfield.critical_point("tanh", 0.05)  # critical with q* = 0.05


def _grid_moments(result):
    """(mass, mean, variance) of the law from its grid (trapezoid in log lam) plus its atoms."""
    u = np.log(result.lam)
    f = result.density * result.lam
    mass = np.trapezoid(f, u) + sum(m for _, m in result.atoms)
    m1 = np.trapezoid(f * result.lam, u) + sum(m * x for x, m in result.atoms)
    m2 = np.trapezoid(f * result.lam**2, u) + sum(m * x * x for x, m in result.atoms)
    return mass, m1, m2 - m1**2


def _mu(k, q):
    """E[tanh'(h)^(2k)], h ~ N(0, q), by adaptive quadrature (independent of the core's rule)."""
    s = math.sqrt(q)
    val, _ = integrate.quad(lambda x: (1 - math.tanh(s * x) ** 2) ** (2 * k) * math.exp(-x * x / 2), -40, 40,
                            epsabs=0, epsrel=1e-13, limit=400)
    return val / math.sqrt(2 * math.pi)


@pytest.mark.parametrize("depth", [1, 2, 5, 12])
def test_linear_gaussian_moments_are_fuss_catalan(depth):
    moments = jacobian_moments("linear", 1.0, 0.0, depth, "gaussian", k=6)
    expected = [math.comb((depth + 1) * k, k) / (depth * k + 1) for k in range(1, 7)]
    np.testing.assert_allclose(moments, expected, rtol=1e-12)


def test_linear_orthogonal_is_a_point_mass():
    np.testing.assert_allclose(jacobian_moments("linear", 1.0, 0.0, 50, "orthogonal", k=5), 1.0, rtol=1e-13)
    result = jacobian_spectrum("linear", 1.0, 0.0, 50, "orthogonal")
    assert result.atoms == ((1.0, 1.0),)
    assert result.lam.size == 0 and result.density.size == 0
    assert result.support == (1.0, 1.0) and result.mean == 1.0 and result.variance == pytest.approx(0.0, abs=1e-12)
    assert float(result.cdf(0.999)) == 0.0 and float(result.cdf(1.0)) == 1.0
    off = jacobian_spectrum("linear", 0.9, 0.0, 10, "orthogonal")
    assert off.atoms == ((pytest.approx(0.9**10, rel=1e-14), 1.0),)


@pytest.mark.parametrize("weights,s1", [("orthogonal", 0.0), ("gaussian", -1.0)])
@pytest.mark.parametrize("depth", [1, 10, 1000])
def test_variance_at_criticality_closed_form(weights, s1, depth):
    sw2, q = meanfield.critical_sigma_w2("tanh", 0.05)
    mu1, mu2 = _mu(1, q), _mu(2, q)
    m1, m2 = jacobian_moments("tanh", sw2, 0.05, depth, weights, k=2)
    chi = sw2 * mu1
    assert m1 == pytest.approx(chi**depth, rel=1e-9)
    assert m2 - m1**2 == pytest.approx(depth * (mu2 / mu1**2 - 1 - s1), rel=1e-6)


@pytest.mark.parametrize("sigma_w2", [1.2, 2.5])
def test_mean_off_criticality_is_chi_to_the_depth(sigma_w2):
    chi = meanfield.chi_1("tanh", sigma_w2, 0.05)
    assert jacobian_moments("tanh", sigma_w2, 0.05, 30, "gaussian", k=1)[0] == pytest.approx(chi**30, rel=1e-9)
    result = jacobian_spectrum("tanh", sigma_w2, 0.05, 20, "orthogonal", num=800)
    _, mean, _ = _grid_moments(result)
    assert result.mean == pytest.approx(chi**20, rel=1e-9)
    assert mean == pytest.approx(chi**20, rel=1e-4)


def test_higher_moments_of_depth_one_gaussian_are_free_poisson_compound():
    # L = 1, Gaussian W: J J^T = D W W^T D has the moments of the free product of MP(1) and sigma_w2 D^2:
    # m_2 = sw2^2 (mu_1^2 + mu_2), m_3 = sw2^3 (mu_1^3 + 3 mu_1 mu_2 + mu_3)
    sw2, q = SW2_CRIT, meanfield.q_star("tanh", SW2_CRIT, 0.05)
    mu1, mu2, mu3 = (_mu(k, q) for k in (1, 2, 3))
    m = jacobian_moments("tanh", sw2, 0.05, 1, "gaussian", k=3)
    np.testing.assert_allclose(m, [sw2 * mu1, sw2**2 * (mu1**2 + mu2), sw2**3 * (mu1**3 + 3 * mu1 * mu2 + mu3)],
                               rtol=1e-10)


@pytest.mark.parametrize("sigma_w2", [1.0, 0.6])
def test_depth_one_linear_gaussian_is_marchenko_pastur(sigma_w2):
    result = jacobian_spectrum("linear", sigma_w2, 0.0, 1, "gaussian", num=500)
    assert result.support[1] == pytest.approx(4 * sigma_w2, rel=1e-13)
    assert result.support[0] == 0.0  # hard edge
    expected = marchenko_pastur_density(result.lam, 1.0, sigma_w2)
    inside = expected > 0
    np.testing.assert_allclose(result.density[inside], expected[inside], rtol=1e-10)


CASES = [
    ("tanh", SW2_CRIT, 0.05, 2, "orthogonal", 1e-5),
    ("tanh", SW2_CRIT, 0.05, 8, "orthogonal", 1e-5),
    ("tanh", SW2_CRIT, 0.05, 8, "gaussian", 1e-5),
    ("tanh", SW2_SMALL, SB2_SMALL, 64, "orthogonal", 1e-4),
    ("tanh", SW2_SMALL, SB2_SMALL, 64, "gaussian", 1e-4),
    ("relu", 2.0, 0.0, 4, "orthogonal", 1e-5),
    ("linear", 1.0, 0.0, 3, "gaussian", 1e-5),
    ("erf", 2.0, 0.1, 5, "gaussian", 1e-5),
]


@pytest.mark.parametrize("activation,sw2,sb2,depth,weights,tail", CASES)
def test_density_integrates_to_one_and_matches_moments(activation, sw2, sb2, depth, weights, tail):
    result = jacobian_spectrum(activation, sw2, sb2, depth, weights, num=1500)
    assert np.all(np.isfinite(result.density)) and np.all(result.density >= 0)
    assert np.all(np.diff(result.lam) > 0)
    assert result.tail_mass < tail
    mass, mean, variance = _grid_moments(result)
    assert mass == pytest.approx(1.0, abs=tail + 2e-5)
    m1, m2 = jacobian_moments(activation, sw2, sb2, depth, weights, k=2)
    assert result.mean == pytest.approx(m1, rel=1e-12)
    assert mean == pytest.approx(m1, rel=1e-4)
    assert variance == pytest.approx(m2 - m1**2, rel=1e-3)


def test_relu_has_an_atom_at_zero():
    result = jacobian_spectrum("relu", 2.0, 0.0, 6, "orthogonal", num=400)
    assert result.atoms == ((0.0, pytest.approx(0.5, abs=1e-14)),)
    assert float(result.cdf(result.lam[0])) == pytest.approx(0.5, abs=1e-5)


def test_soft_edges_are_critical_points():
    # near isometry (small q*) the upper edge is soft; the lower end is a steep tail, not a soft edge: a real
    # critical point inside the range of phi'^2 is impossible for the continuous law of D^2 (Im M_{D^2}(x + i0) != 0
    # there). The solver used to report one at lam = 0.021 (an artefact of the atomic quadrature law) where the
    # independent reference (tests/spectrum_reference.py) has density 5.6e-4 at 0.022 and 9.8e-5 at 0.018.
    result = jacobian_spectrum("tanh", SW2_SMALL, SB2_SMALL, 64, "orthogonal", num=2000)
    lo, hi = result.support
    assert lo == 0.0 and result.lam[0] < 0.025 and 1 < hi
    assert 0.0 < result.tail_mass < 1e-4
    mass, _, _ = _grid_moments(result)
    assert mass + result.tail_mass == pytest.approx(1.0, abs=1e-9)
    assert result.density[-1] == 0.0
    # square-root vanishing at the upper edge: density^2 is linear in the distance to it
    dist = result.lam[-1] - result.lam[-6:-1]
    ratio = result.density[-6:-1] ** 2 / dist
    assert np.ptp(ratio) / ratio.mean() < 0.05
    # next to the lower edge the density is small
    assert result.density[1:20].max() < 0.02 * result.density.max()


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_depth_ten_thousand_is_stable(weights):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = jacobian_spectrum("tanh", SW2_SMALL, SB2_SMALL, 10_000, weights, num=600)
    assert np.all(np.isfinite(result.density))
    _, mean, variance = _grid_moments(result)
    assert mean == pytest.approx(result.mean, rel=1e-3)
    assert variance == pytest.approx(result.variance, rel=1e-2)
    assert result.support[1] > 100
    if weights == "orthogonal":
        # the continuation keeps its branch of the logs: hopping between the 10^4 solutions of the equation modulo
        # 2 pi i once ended the walk at lam = 1e-77 with 4% of the mass reported as tail; the law ends in a sharp
        # fall near lam = exp(-192)
        assert result.tail_mass < 1e-3
        assert result.lam[0] < math.exp(-190)


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_a_spectrum_entirely_below_float64_is_an_atom_at_zero(weights):
    """gelu at sigma_w2 = 1.5, sigma_b2 = 0.05 (ordered), depth 1000: the upper edge is exp(-799); every eigenvalue
    underflows and is reported as one atom at 0 with a warning (the walk once stalled there and raised)."""
    with pytest.warns(RuntimeWarning, match="below the float64 range"):
        result = jacobian_spectrum("gelu", 1.5, 0.05, 1000, weights)
    assert result.atoms == ((0.0, 1.0),)
    assert result.lam.size == 0 and result.support == (0.0, 0.0)
    assert float(result.cdf(0.0)) == 1.0


def test_depth_one_orthogonal_is_the_law_of_sigma_w2_phi_prime_squared():
    # J J^T = sigma_w2 D^2 exactly: compare with i.i.d. draws of sigma_w2 phi'(h)^2, h ~ N(0, q*)
    rng = np.random.default_rng(0)
    result = jacobian_spectrum("tanh", SW2_CRIT, 0.05, 1, "orthogonal", num=2000)
    assert result.atoms == ()
    h = rng.standard_normal(200_000) * math.sqrt(result.q_star)
    assert result.ks_distance(SW2_CRIT / np.cosh(h) ** 4) < 0.006  # 1.36 / sqrt(n) = 0.003 at 95%
    mass, mean, variance = _grid_moments(result)
    assert mass == pytest.approx(1.0, abs=1e-5)
    assert mean == pytest.approx(result.mean, rel=1e-5) and variance == pytest.approx(result.variance, rel=1e-3)
    # hard tanh: phi' in {0, 1}, two atoms and no continuous part
    hard = jacobian_spectrum("hard_tanh", 1.5, 0.02, 1, "orthogonal")
    p_inside = math.erf(1.0 / math.sqrt(2.0 * hard.q_star))
    assert hard.lam.size == 0
    assert hard.atoms == ((0.0, pytest.approx(1 - p_inside, abs=1e-12)), (1.5, pytest.approx(p_inside, abs=1e-12)))


def test_to_frame_and_cdf():
    result = jacobian_spectrum("tanh", SW2_CRIT, 0.05, 8, "orthogonal", num=300)
    frame = result.to_frame()
    assert list(frame.columns) == ["lam", "density"] and len(frame) == 300
    assert frame.attrs["mean"] == result.mean and frame.attrs["depth"] == 8
    cdf = result.cdf(result.lam)
    assert np.all(np.diff(cdf) >= 0) and cdf[-1] == pytest.approx(1.0, abs=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="weights"):
        jacobian_spectrum("tanh", 1.0, 0.0, 3, "haar")
    with pytest.raises(ValueError, match="depth"):
        jacobian_spectrum("tanh", 1.0, 0.0, 0)
    with pytest.raises(TypeError, match="depth"):
        jacobian_spectrum("tanh", 1.0, 0.0, 2.5)
    with pytest.raises(ValueError, match="num"):
        jacobian_spectrum("tanh", 1.0, 0.0, 3, num=3)
    with pytest.raises(ValueError, match="sigma_w2"):
        jacobian_spectrum("tanh", -1.0, 0.0, 3)
    with pytest.raises(ValueError, match="k must"):
        jacobian_moments("tanh", 1.0, 0.0, 3, k=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="no finite fixed point"):
            jacobian_spectrum("x + x**3", 2.0, 0.1, 3, "gaussian")  # linear needs no q*: it is homogeneous
