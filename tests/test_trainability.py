"""The trainability experiment: a real 2 x 2 grid against 6 xi_c, resume, refusal of mixed configurations, Dask."""

import json

import numpy as np
import pandas as pd
import pytest

import validate.trainability as tr
from validate.trainability import ConfigMismatchError, summarize_trainability, trainability

# the 2 x 2 grid: tanh, sigma_b2 = 0.05; ordered sigma_w2 = 0.5 (xi_c = 1.19, so 6 xi_c = 7.1) and the critical
# sigma_w2 = 1.76095 (xi_c = inf); depths 3 and 30 (30 is 25 xi_c for the ordered point)
SMALL = dict(model="fc", activation="tanh", sigma_b2=0.05, steps=150, data="synthetic", width=32, batch_size=32,
             lr=0.05, num_evals=2, eval_size=256, progress=False)
CRITICAL = 1.7609546396067428


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    return out, trainability(sigma_w2=[0.5, CRITICAL], depth=[3, 30], out=out, **SMALL)


def _final(frame):
    return frame[frame["step"] == frame["step"].max()].set_index(["sigma_w2", "depth"])


def test_deep_ordered_cell_stays_at_chance_and_deep_critical_cell_trains(grid):
    _, results = grid
    assert list(results.columns[:12]) == ["model", "activation", "init", "sigma_w2", "sigma_b2", "depth", "seed",
                                          "step", "loss", "train_accuracy", "test_accuracy", "xi_c"]
    assert len(results) == 4 * 3  # 4 cells x evaluations at steps 0, 75, 150
    final = _final(results)
    chance = 0.25
    assert final.loc[(0.5, 30), "test_accuracy"] < chance + 0.1  # depth 30 >> 6 xi_c = 7.1: no signal survives
    assert final.loc[(0.5, 30), "train_accuracy"] < chance + 0.1
    assert final.loc[(CRITICAL, 30), "test_accuracy"] > 0.7  # xi_c = inf: trains (measured 0.84)
    assert final.loc[(0.5, 3), "test_accuracy"] > 0.9 and final.loc[(CRITICAL, 3), "test_accuracy"] > 0.9
    assert np.isclose(final.loc[(0.5, 30), "xi_c"], 1.1914, rtol=1e-3) and final.loc[(CRITICAL, 30), "xi_c"] > 1e10
    summary = summarize_trainability(results)
    assert summary.agreement == 1.0 and summary.n_cells == 4
    # the best multiplier separates depth/xi_c = 3/1.19 (trains) from 30/1.19 (fails)
    assert summary.fitted_interval == pytest.approx((3 / 1.191385, 30 / 1.191385), rel=1e-4)
    assert "agreement" in summary.text()


def test_results_file_and_fixed_seed_reproduce(grid, monkeypatch):
    out, results = grid
    stored = pd.read_parquet(out / "trainability.parquet")
    pd.testing.assert_frame_equal(stored, results)
    assert json.loads((out / "config.json").read_text())["sigma_w2"] == [0.5, CRITICAL]
    again = trainability(sigma_w2=[0.5, CRITICAL], depth=[3, 30], **SMALL)
    pd.testing.assert_frame_equal(again, results)
    # a rerun in the same directory trains nothing and returns the same table
    calls = []
    original = tr._train_unit
    monkeypatch.setattr(tr, "_train_unit", lambda *a, **k: calls.append(a) or original(*a, **k))
    resumed = trainability(sigma_w2=[0.5, CRITICAL], depth=[3, 30], out=out, **SMALL)
    assert calls == [] and resumed.equals(results)


def test_interrupted_run_resumes_without_losing_or_duplicating_cells(grid, tmp_path, monkeypatch):
    _, reference = grid
    original = tr._train_unit
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args[1:3])
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if Ctrl-C hit during the third batch of networks
        return original(*args, **kwargs)

    monkeypatch.setattr(tr, "_train_unit", flaky)
    with pytest.raises(KeyboardInterrupt):
        trainability(sigma_w2=[0.5, CRITICAL], depth=[3, 30], out=tmp_path, max_batch=1, **SMALL)
    partial = pd.read_parquet(tmp_path / "trainability.parquet")
    assert len(partial[["sigma_w2", "depth"]].drop_duplicates()) == 2  # two cells finished before the interrupt
    monkeypatch.setattr(tr, "_train_unit", original)
    resumed = trainability(sigma_w2=[0.5, CRITICAL], depth=[3, 30], out=tmp_path, max_batch=1, **SMALL)
    assert not resumed.duplicated(["sigma_w2", "sigma_b2", "depth", "step"]).any()
    assert len(resumed) == len(reference)
    # the finished cells were kept, the others trained now; batch size 1 vs 4 changes only rounding
    assert np.allclose(resumed[["loss", "test_accuracy"]], reference[["loss", "test_accuracy"]], atol=1e-4)


def test_changed_configuration_is_refused(grid):
    out, _ = grid
    with pytest.raises(ConfigMismatchError, match="steps: stored 150, requested 100"):
        trainability(sigma_w2=[0.5, CRITICAL], depth=[3, 30], out=out, **{**SMALL, "steps": 100})
    with pytest.raises(ConfigMismatchError, match="depth"):
        trainability(sigma_w2=[0.5, CRITICAL], depth=[3, 31], out=out, **SMALL)


def test_diverging_network_is_a_result_not_a_crash():
    with pytest.warns(Warning, match="no finite fixed point"):  # linear, sigma_w2 = 4: q* = inf, xi_c NaN
        results = trainability(**{**SMALL, "activation": "linear", "lr": 1.0, "steps": 20, "sigma_b2": 0.0},
                               sigma_w2=[4.0], depth=[10])
    final = _final(results)
    assert bool(final["diverged"].iloc[0]) and np.isnan(final["loss"].iloc[0])
    assert final["test_accuracy"].iloc[0] == 0.25


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="model"):
        trainability(**{**SMALL, "model": "rnn"}, sigma_w2=[1.0], depth=[2])
    with pytest.raises(ValueError, match="depth"):
        trainability(**SMALL, sigma_w2=[1.0], depth=[2.5])
    with pytest.raises(ValueError, match="sigma_w2"):
        trainability(**SMALL, sigma_w2=[-1.0], depth=[2])
    with pytest.raises(ValueError, match="cnn"):
        trainability(**{**SMALL, "model": "cnn"}, sigma_w2=[1.0], depth=[2])  # synthetic inputs are not images


def test_summary_counts_agreement_and_fits_the_boundary():
    cells = pd.DataFrame({
        "sigma_w2": [1.0] * 4 + [2.0] * 4,
        "sigma_b2": 0.0,
        "depth": [5, 10, 20, 40] * 2,
        "xi_c": [2.0] * 4 + [np.inf] * 4,
        # at xi_c = 2: trains up to depth 10 (ratio 5), fails from 20 (ratio 10); rule "depth < 12" predicts 5, 10
        "test_accuracy": [0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.1],
        "chance": 0.1,
        "step": 100,
    })
    summary = summarize_trainability(cells, threshold=0.5)
    # disagreements: (2.0, 40) fails although xi_c = inf
    assert summary.agreement == pytest.approx(7 / 8)
    assert summary.fitted_interval == pytest.approx((5.0, 10.0))
    assert summary.fitted_multiplier == pytest.approx(np.sqrt(50.0))
    row = summary.boundary.set_index("sigma_w2").loc[1.0]
    assert row["deepest_trained"] == 10 and row["shallowest_failed"] == 20 and row["predicted_depth"] == 12


def test_dask_local_cluster_equals_serial_run(grid, tmp_path):
    pytest.importorskip("dask.distributed")
    _, reference = grid
    results = trainability(sigma_w2=[0.5, CRITICAL], depth=[3, 30], out=tmp_path, workers=2, dask_processes=False,
                           **SMALL)
    pd.testing.assert_frame_equal(results, reference, check_exact=False, rtol=0, atol=1e-6)
    stored = pd.read_parquet(tmp_path / "trainability.parquet")
    pd.testing.assert_frame_equal(stored, results)


def test_dask_scheduler_address_equals_serial_run(grid, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    _, reference = grid
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        results = trainability(sigma_w2=[0.5], depth=[3, 30], out=tmp_path, scheduler=cluster.scheduler_address,
                               **SMALL)
    expected = reference[reference["sigma_w2"] == 0.5].reset_index(drop=True)
    pd.testing.assert_frame_equal(results, expected, check_exact=False, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_dask_process_workers_equal_serial_run(grid, tmp_path):
    _, reference = grid
    results = trainability(sigma_w2=[0.5, CRITICAL], depth=[3, 30], out=tmp_path, workers=2, dask_processes=True,
                           **SMALL)
    pd.testing.assert_frame_equal(results, reference, check_exact=False, rtol=0, atol=1e-6)


def test_depth_scaled_learning_rate_equals_explicit_rate(tmp_path):
    from validate.trainability import depth_scaled_lr

    assert depth_scaled_lr(0.01, 300, 30) == pytest.approx(1e-3)
    assert depth_scaled_lr(0.01, 10, 30) == 0.01 and depth_scaled_lr(0.01, 300, None) == 0.01
    base = {**SMALL, "steps": 20}
    scaled = trainability(sigma_w2=[CRITICAL], depth=[3, 12], lr_depth_ref=6, out=tmp_path, **base)
    explicit = trainability(sigma_w2=[CRITICAL], depth=[12], **{**base, "lr": SMALL["lr"] / 2})
    shallow = trainability(sigma_w2=[CRITICAL], depth=[3], **base)
    cols = ["loss", "train_accuracy", "test_accuracy"]
    assert np.allclose(scaled[scaled["depth"] == 12][cols], explicit[cols], atol=1e-6)
    assert np.allclose(scaled[scaled["depth"] == 3][cols], shallow[cols], atol=1e-6)
    assert json.loads((tmp_path / "config.json").read_text())["lr_depth_ref"] == 6
    with pytest.raises(ValueError, match="lr_depth_ref"):
        trainability(sigma_w2=[CRITICAL], depth=[3], lr_depth_ref=0, **base)
