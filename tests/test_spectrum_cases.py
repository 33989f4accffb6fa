"""Issue 14: homogeneous activations at any q, honest KS distances with atoms, CDF/quantiles/near-isometry
summaries, overflow at huge depth, and the CLI on those cases."""

import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize

import rmt
from rmt import JacobianSpectrum, jacobian_moments, jacobian_spectrum, marchenko_pastur_density
from rmt.cli import main

# positively homogeneous activations and E[phi'(h)^2] (the mean of D^2, independent of q)
HOMOGENEOUS = [("relu", 0.5, 0.5), ("leaky_relu", (1 + 0.01**2) / 2, 0.0), ("linear", 1.0, 0.0),
               ("1e-9*x", 1e-18, 0.0), ("leaky_relu(slope=0.3)", (1 + 0.09) / 2, 0.0)]


@pytest.mark.parametrize("activation,mu1,zero", HOMOGENEOUS)
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("sigma_w2,sigma_b2", [(2.0, 0.0), (2.0, 0.05), (3.0, 0.05), (0.5, 0.0)])
def test_homogeneous_activations_need_no_fixed_point(activation, mu1, zero, weights, sigma_w2, sigma_b2):
    # ReLU at sigma_w2 >= 2 with sigma_b2 > 0 has no finite q*; at sigma_b2 = 0 every q is a fixed point: the law of
    # D^2 does not depend on q, so the spectrum exists for every (sigma_w2, sigma_b2) and depends on neither q nor b
    depth = 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NoFixedPointWarning either
        result = jacobian_spectrum(activation, sigma_w2, sigma_b2, depth, weights, num=400)
        moments = jacobian_moments(activation, sigma_w2, sigma_b2, depth, weights, k=2)
    chi = sigma_w2 * mu1
    assert moments[0] == pytest.approx(chi**depth, rel=1e-9)
    assert result.mean == pytest.approx(chi**depth, rel=1e-9)
    assert math.isnan(result.q_star)
    atom0 = sum(m for x, m in result.atoms if x == 0.0)
    assert atom0 == pytest.approx(zero, abs=1e-12)
    if result.lam.size:
        u = np.log(result.lam)
        f = result.density * result.lam
        mass = np.trapezoid(f, u) + sum(m for _, m in result.atoms) + result.tail_mass
        mean = np.trapezoid(f * result.lam, u) + sum(m * x for x, m in result.atoms)
        assert mass == pytest.approx(1.0, abs=2e-3)
        assert mean == pytest.approx(chi**depth, rel=2e-3)
    # the law is the same with and without bias
    other = jacobian_spectrum(activation, sigma_w2, 0.0 if sigma_b2 else 0.3, depth, weights, num=400)
    np.testing.assert_allclose(other.density, result.density, rtol=1e-10, atol=0)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu(slope=0.2)", "linear"])
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("sigma_b2", [0.0, 0.05])
def test_sampled_homogeneous_networks_match_the_law(activation, weights, sigma_b2):
    frame = rmt.sample_jacobian_spectrum(activation, 2.0, sigma_b2, depth=5, width=300, weights=weights, rng=0)
    assert np.count_nonzero(frame.lam.to_numpy() > 1e-12) > 100  # not the all-zero Jacobian of q* = 0
    law = jacobian_spectrum(activation, 2.0, sigma_b2, 5, weights)
    assert law.ks_distance(frame) < 0.1


def test_relu_at_q_star_zero_is_sampled_at_positive_q():
    frame = rmt.sample_jacobian_spectrum("relu", 2.0, 0.0, depth=5, width=200, weights="gaussian", rng=0)
    assert np.mean(frame.lam > 0) > 0.3


def _log_uniform_law(decades: float, atom: float, num: int = 6000) -> JacobianSpectrum:
    """Atom ``atom`` at 0 plus mass ``1 - atom`` uniform in log lam on [10^-decades, 1] (a known law)."""
    lam = np.logspace(-decades, 0.0, num)
    density = (1.0 - atom) / (lam * decades * math.log(10.0))
    return JacobianSpectrum(lam, density, (0.0, 1.0), math.nan, math.nan, ((0.0, atom),), 0.0)


def _log_uniform_samples(n: int, decades: float, atom: float, noise: float, rng) -> tuple[np.ndarray, np.ndarray]:
    zero = rng.uniform(size=n) < atom
    values = np.where(zero, noise * rng.uniform(size=n), 10.0 ** (-decades * rng.uniform(size=n)))
    return values, zero


@pytest.mark.parametrize("decades,atom,noise", [(40.0, 0.5, 1e-45), (12.0, 0.3, 1e-300), (60.0, 0.7, 1e-80)])
def test_ks_distance_with_an_atom_shrinks_like_one_over_sqrt_n(decades, atom, noise):
    # continuous mass sits far below 1e-9 x the upper edge (where the atom's rounding noise also lives): the
    # distance must not attribute it to the atom
    law = _log_uniform_law(decades, atom)
    rng = np.random.default_rng(7)
    found, found_mask = [], []
    sizes = (500, 5000, 50000)
    for n in sizes:
        values, zero = _log_uniform_samples(n, decades, atom, noise, rng)
        found.append(law.ks_distance(values))
        found_mask.append(law.ks_distance(values, zero=zero))
    for n, d, d_mask in zip(sizes, found, found_mask, strict=True):
        assert d * math.sqrt(n) < 2.0 and d_mask * math.sqrt(n) < 2.0  # KS statistic: P(sqrt(n) D > 2) < 1e-3
    assert found[-1] < found[0] / 3 and found_mask[-1] < found_mask[0] / 3
    # a wrong atom is detected: fully with the zero mask; on the resolved range x >= 1e-9 the difference of the two
    # laws is 0.1 * 9 / decades there
    wrong = _log_uniform_law(decades, atom + 0.1)
    values, zero = _log_uniform_samples(50000, decades, atom, noise, rng)
    assert wrong.ks_distance(values, zero=zero) > 0.09
    assert wrong.ks_distance(values) > 0.1 * 9 / decades - 0.01


@pytest.mark.parametrize("activation,sigma_w2", [("relu", 2.0), ("hard_tanh", 1.2)])
def test_ks_distance_for_deep_networks_with_an_atom(activation, sigma_w2):
    law = jacobian_spectrum(activation, sigma_w2, 0.05, 20, "gaussian")
    rng = np.random.default_rng(3)
    # samples drawn from the law itself through its quantile function, zeros replaced by rounding noise
    for n in (1000, 30000):
        samples = law.quantile(rng.uniform(size=n))
        noisy = np.where(samples == 0, 1e-310 * rng.uniform(size=n), samples)
        assert law.ks_distance(noisy) * math.sqrt(n) < 2.0
        assert law.ks_distance(noisy, zero=samples == 0) * math.sqrt(n) < 2.0


@pytest.mark.slow
def test_ks_distance_of_sampled_relu_network_is_small():
    law = jacobian_spectrum("relu", 2.0, 0.05, 20, "gaussian")
    frame = rmt.sample_jacobian_spectrum("relu", 2.0, 0.05, 20, 400, "gaussian", draws=2, rng=0)
    assert law.ks_distance(frame) < 0.06  # with the structural zeros of the sampler
    assert law.ks_distance(frame.lam) < 0.06  # resolved range only


def test_sampler_marks_structural_zeros():
    frame = rmt.sample_jacobian_spectrum("relu", 2.0, 0.05, 8, 120, "gaussian", rng=2)
    zero = frame.zero.to_numpy()
    assert 0.5 <= zero.mean() < 0.75
    # the structural zeros are the smallest eigenvalues and far below the rest (rank of J = min_l nnz(D^l))
    lam = frame.lam.to_numpy()
    assert lam[zero].max() <= lam[~zero].min()


def test_cdf_and_quantile_against_marchenko_pastur():
    law = jacobian_spectrum("linear", 1.0, 0.0, 1, "gaussian", num=4000)  # MP with ratio 1 on [0, 4]

    def mp_cdf(x):
        return integrate.quad(lambda t: marchenko_pastur_density(t), 0.0, x, limit=200, points=[1e-12])[0]

    for x in (0.05, 0.3, 1.0, 2.5, 3.9):
        assert float(law.cdf(x)) == pytest.approx(mp_cdf(x), abs=2e-4)
    for p in (0.01, 0.2, 0.5, 0.9, 0.99):
        expected = optimize.brentq(lambda x, p=p: mp_cdf(x) - p, 1e-14, 4.0, xtol=1e-14)
        assert float(law.quantile(p)) == pytest.approx(expected, rel=2e-3)
    s01 = math.sqrt(optimize.brentq(lambda x: mp_cdf(x) - 0.01, 1e-14, 4.0, xtol=1e-16))
    s99 = math.sqrt(optimize.brentq(lambda x: mp_cdf(x) - 0.99, 1e-14, 4.0, xtol=1e-14))
    assert law.quantile_ratio == pytest.approx(s99 / s01, rel=2e-3)
    assert law.isometry_fraction == pytest.approx(mp_cdf(4.0) - mp_cdf(0.25), abs=2e-4)
    assert law.summary()["quantile_ratio"] == law.quantile_ratio


def test_summaries_of_isometries_and_atoms():
    iso = jacobian_spectrum("linear", 1.0, 0.0, 30, "orthogonal")
    assert iso.quantile_ratio == 1.0 and iso.isometry_fraction == 1.0
    assert float(iso.quantile(0.3)) == 1.0
    shrink = jacobian_spectrum("linear", 0.5, 0.0, 3, "orthogonal")  # point mass at 1/8: s = 0.35
    assert shrink.isometry_fraction == 0.0
    relu = jacobian_spectrum("relu", 2.0, 0.0, 10, "gaussian")
    assert relu.quantile_ratio == math.inf  # half the mass is at 0
    assert float(relu.quantile(0.3)) == 0.0 and float(relu.quantile(0.7)) > 0
    p = np.array([0.55, 0.7, 0.9, 0.99])
    np.testing.assert_allclose(relu.cdf(relu.quantile(p)), p, atol=1e-6)
    with pytest.raises(ValueError, match="p must"):
        relu.quantile(1.5)


def test_huge_depth_overflows_cleanly():
    with pytest.warns(RuntimeWarning, match="overflow"):
        moments = jacobian_moments("tanh", 3.0, 0.05, 10**6, "gaussian", k=2)
    assert np.all(np.isinf(moments))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for weights in ("gaussian", "orthogonal"):
            with pytest.raises(OverflowError, match="float64"):
                jacobian_spectrum("tanh", 3.0, 0.05, 10**6, weights)
        with pytest.raises(OverflowError, match="float64"):
            jacobian_spectrum("linear", 3.0, 0.0, 10**6, "orthogonal")


@pytest.mark.parametrize("flags,code,text", [
    (["--activation", "relu", "--sigma-w2", "2", "--sigma-b2", "0.05", "--depth", "10", "--weights", "gaussian"],
     0, "positively homogeneous"),
    (["--activation", "leaky_relu", "--sigma-w2", "2.5", "--sigma-b2", "0.1", "--depth", "30", "--weights",
      "orthogonal"], 0, "quantile_ratio"),
    (["--activation", "1e-9*x", "--sigma-w2", "1", "--sigma-b2", "0", "--depth", "10", "--weights", "gaussian"],
     0, "isometry_fraction"),
    (["--sigma-w2", "3", "--sigma-b2", "0.05", "--weights", "gaussian", "--depth", "1000000"], 1, "float64"),
])
def test_cli_cases_without_tracebacks(flags, code, text):
    done = subprocess.run([sys.executable, "-m", "rmt", "spectrum", *flags, "--num", "100"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == code, done.stderr
    out = done.stdout + done.stderr
    assert text in out
    assert "Traceback" not in out and "math range error" not in out and "math domain error" not in out
    assert "result = jacobian_spectrum(" not in out  # warnings without source lines


def test_cli_json_has_contract_keys_and_summaries(capsys):
    argv = ["spectrum", "--activation", "relu", "--sigma-w2", "2", "--sigma-b2", "0.05", "--depth", "10",
            "--weights", "gaussian", "--num", "64", "--json"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"lam", "density", "support", "mean", "variance"} <= set(payload)
    law = jacobian_spectrum("relu", 2.0, 0.05, 10, "gaussian", num=64)
    assert payload["quantile_ratio"] == "inf"  # half the mass at 0 (JSON has no inf: the CLI convention)
    assert payload["isometry_fraction"] == pytest.approx(law.isometry_fraction, rel=1e-12)
    assert payload["atoms"] == [[0.0, pytest.approx(0.5, abs=1e-12)]]
    assert payload["q_star"] is None


@pytest.mark.parametrize("sigma_w2,depth", [(1.5, 2), (1.5, 3), (1.2, 4), (1.5, 10)])
def test_hard_tanh_orthogonal_keeps_an_atom_at_the_top(sigma_w2, depth):
    # phi' in {0, 1}: J J^T = sigma_w2^L times a product of L free projections of codimension p = P(|h| > 1):
    # atoms at 0 (mass p) and at sigma_w2^L (mass max(0, 1 - L p)); this used to raise "no upper spectral edge"
    import meanfield

    q = meanfield.q_star("hard_tanh", sigma_w2, 0.05)
    p = math.erfc(1.0 / math.sqrt(2.0 * q))
    law = jacobian_spectrum("hard_tanh", sigma_w2, 0.05, depth, "orthogonal")
    atoms = dict(law.atoms)
    assert atoms[0.0] == pytest.approx(p, abs=1e-9)
    top = max(0.0, 1.0 - depth * p)
    found_top = sum(m for x, m in law.atoms if x == pytest.approx(sigma_w2**depth, rel=1e-12))
    assert found_top == pytest.approx(top, abs=1e-9)
    u = np.log(law.lam)
    f = law.density * law.lam
    assert np.trapezoid(f, u) + sum(atoms.values()) + law.tail_mass == pytest.approx(1.0, abs=1e-5)
    assert np.trapezoid(f * law.lam, u) + sum(x * m for x, m in law.atoms) == pytest.approx(law.mean, rel=1e-5)
    frame = rmt.sample_jacobian_spectrum("hard_tanh", sigma_w2, 0.05, depth, 300, "orthogonal", rng=1)
    assert law.ks_distance(frame) < 0.06
