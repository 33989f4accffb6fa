"""K networks trained as one batched computation equal the same networks trained one at a time."""

import numpy as np
import pandas as pd
import pytest
import torch

from validate.batched import (
    TrainConfig,
    estimate_memory,
    evaluation_steps,
    matmul_precision,
    matmul_rate,
    max_networks,
    resolve_device,
    step_cost,
    train_batched,
    train_sequential,
)
from validate.data import load_dataset
from validate.models import build_model, init_model_

METRICS = ["loss", "train_accuracy", "test_accuracy"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _networks(model, data, points, depth, dtype=torch.float64, **sizes):
    nets = []
    for k, (sw2, sb2) in enumerate(points):
        net = build_model(model, depth=depth, input_shape=data.input_shape, num_classes=data.num_classes, **sizes)
        init_model_(net.to(dtype), sw2, sb2, generator=torch.Generator().manual_seed(100 + k))
        nets.append(net)
    return nets


def _sorted(frame):
    return frame.sort_values(["network", "step"], ignore_index=True)


def _max_param_difference(a, b):
    return max(float((p.cpu() - q.cpu()).detach().abs().max()) for m, n in zip(a, b, strict=True)
               for p, q in zip(m.parameters(), n.parameters(), strict=True))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_batched_fc_equals_sequential(momentum):
    data = load_dataset("synthetic")
    # ordered, critical and mildly chaotic tanh networks. (Deep in the chaotic phase, training itself amplifies
    # rounding differences exponentially, so equality "to float tolerance" only holds over a bounded horizon.)
    points = [(0.6, 0.05), (1.7609546, 0.05), (2.2, 0.1)]
    config = TrainConfig(steps=30, batch_size=32, lr=0.05, momentum=momentum, num_evals=3, eval_size=256, seed=4)
    batched_nets = _networks("fc", data, points, depth=6, width=24)
    single_nets = _networks("fc", data, points, depth=6, width=24)
    batched = _sorted(train_batched(batched_nets, data, config))
    single = _sorted(train_sequential(single_nets, data, config))
    assert batched[["network", "step", "diverged"]].equals(single[["network", "step", "diverged"]])
    assert np.allclose(batched[METRICS], single[METRICS], rtol=0, atol=1e-10)
    assert _max_param_difference(batched_nets, single_nets) < 1e-10
    # the networks really trained (so the comparison is not between two idle runs)
    final = batched[batched["step"] == 30]
    assert final["loss"].max() < batched[batched["step"] == 0]["loss"].min()


def test_batched_cnn_equals_sequential():
    data = load_dataset("digits")
    points = [(1.0, 0.05), (1.76, 0.05)]
    config = TrainConfig(steps=6, batch_size=16, lr=0.05, num_evals=2, eval_size=64, seed=1)
    a = _networks("cnn", data, points, depth=2, channels=4)
    b = _networks("cnn", data, points, depth=2, channels=4)
    batched, single = _sorted(train_batched(a, data, config)), _sorted(train_sequential(b, data, config))
    assert np.allclose(batched[METRICS], single[METRICS], rtol=0, atol=1e-10)
    assert _max_param_difference(a, b) < 1e-10
    assert _max_param_difference(a, _networks("cnn", data, points, depth=2, channels=4)) > 1e-3  # it did train


def test_fixed_seed_gives_identical_results_and_seed_changes_batches():
    data = load_dataset("synthetic")
    points = [(1.0, 0.05), (1.5, 0.05)]
    config = TrainConfig(steps=20, batch_size=32, lr=0.05, num_evals=2, eval_size=128, seed=7)
    first = train_batched(_networks("fc", data, points, depth=3, width=16, dtype=torch.float32), data, config)
    second = train_batched(_networks("fc", data, points, depth=3, width=16, dtype=torch.float32), data, config)
    pd.testing.assert_frame_equal(first, second)
    other = TrainConfig(steps=20, batch_size=32, lr=0.05, num_evals=2, eval_size=128, seed=8)
    third = train_batched(_networks("fc", data, points, depth=3, width=16, dtype=torch.float32), data, other)
    assert not np.allclose(first["loss"], third["loss"])


def test_diverged_network_is_recorded_and_isolated():
    """A network with exploding loss is reported with NaN loss and chance accuracy; its batch mates are unaffected."""
    data = load_dataset("synthetic")
    config = TrainConfig(steps=40, batch_size=32, lr=0.05, num_evals=2, eval_size=128, seed=0)
    points = [(0.3, 0.0), (1.0, 0.0)]
    nets = _networks("fc", data, points, depth=2, width=16, dtype=torch.float32)
    with torch.no_grad():  # the second network has overflowed: one infinite weight makes its loss NaN
        nets[1].readout.weight[0, 0] = float("inf")
    result = train_batched(nets, data, config)
    last = result[result["step"] == 40].set_index("network")
    assert bool(last.loc[1, "diverged"]) and np.isnan(last.loc[1, "loss"])
    assert last.loc[1, "test_accuracy"] == last.loc[1, "train_accuracy"] == 0.25
    assert not bool(last.loc[0, "diverged"]) and np.isfinite(last.loc[0, "loss"])
    alone = train_batched(_networks("fc", data, points[:1], depth=2, width=16, dtype=torch.float32), data, config)
    assert np.allclose(result[result["network"] == 0][METRICS].to_numpy(), alone[METRICS].to_numpy(), atol=1e-6)


def test_evaluation_steps_and_config_validation():
    assert evaluation_steps(1000, 10) == list(range(0, 1001, 100))
    assert evaluation_steps(3, 10) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="momentum"):
        TrainConfig(momentum=1.0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1.0)


def test_memory_estimate_counts_parameters_and_activations():
    net = build_model("fc", depth=3, input_shape=(32,), num_classes=4, width=64)
    params = sum(p.numel() for p in net.parameters())
    activations_per_example = 3 * 64 + 4
    assert estimate_memory(net, (32,), 10, torch.float32) == 4 * (3 * params + 3 * 10 * activations_per_example)
    assert estimate_memory(net, (32,), 10, torch.float64) == 2 * estimate_memory(net, (32,), 10, torch.float32)
    cnn = build_model("cnn", depth=2, input_shape=(1, 28, 28), num_classes=10, channels=8)
    per_example = 8 * (28 * 28 + 14 * 14 + 7 * 7 + 2 * 7 * 7) + 10
    params = sum(p.numel() for p in cnn.parameters())
    assert estimate_memory(cnn, (1, 28, 28), 5, torch.float32) == 4 * (3 * params + 3 * 5 * per_example)
    cpu = torch.device("cpu")
    assert max_networks(cnn, (1, 28, 28), 5, torch.float32, cpu) >= max_networks(cnn, (1, 28, 28), 500,
                                                                                  torch.float32, cpu) >= 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def test_step_cost_counts_matmul_flop_and_traffic():
    net = build_model("fc", depth=3, input_shape=(32,), num_classes=4, width=64)
    macs = 32 * 64 + 2 * 64 * 64 + 64 * 4
    params = sum(p.numel() for p in net.parameters())
    flop, traffic = step_cost(net, (32,), 10, torch.float32)
    assert flop == 3 * 2 * 10 * macs
    assert traffic == 4 * (4 * 10 * (3 * 64 + 4) + 5 * params)
    cnn = build_model("cnn", depth=2, input_shape=(1, 28, 28), num_classes=10, channels=8)
    cnn_macs = 9 * (1 * 8 * 28 * 28 + 8 * 8 * 14 * 14 + 8 * 8 * 7 * 7 + 2 * 8 * 8 * 7 * 7) + 8 * 10
    assert step_cost(cnn, (1, 28, 28), 5, torch.float64)[0] == 3 * 2 * 5 * cnn_macs


def test_matmul_rate_and_precision_switch():
    assert 1e6 < matmul_rate("cpu", torch.float32, n=128, repeats=2) < 1e14
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with matmul_precision(True):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with matmul_precision(False):
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_cuda_graph_training_equals_sequential_in_float64(momentum):
    """The captured CUDA-graph step, the eager batched step and torch.optim.SGD one at a time agree (float64)."""
    data = load_dataset("synthetic")
    points = [(0.6, 0.05), (1.7609546, 0.05), (2.2, 0.1)]
    config = TrainConfig(steps=30, batch_size=32, lr=0.05, momentum=momentum, num_evals=3, eval_size=256, seed=4)
    graph_nets, eager_nets = _networks("fc", data, points, 6, width=24), _networks("fc", data, points, 6, width=24)
    single_nets = _networks("fc", data, points, 6, width=24)
    graphed = train_batched(graph_nets, data, config, device="cuda")
    assert graphed.attrs["cuda_graph"]
    eager = train_batched(eager_nets, data, config, device="cuda", graph=False)
    assert not eager.attrs["cuda_graph"]
    single = _sorted(train_sequential(single_nets, data, config, device="cuda"))
    for frame in (graphed, eager):
        assert np.allclose(_sorted(frame)[METRICS], single[METRICS], rtol=0, atol=1e-10)
    assert _max_param_difference(graph_nets, single_nets) < 1e-10
    cnn = _networks("cnn", load_dataset("digits"), points[:2], 2, channels=4)
    cnn_single = _networks("cnn", load_dataset("digits"), points[:2], 2, channels=4)
    small = TrainConfig(steps=6, batch_size=16, lr=0.05, num_evals=2, eval_size=64, seed=1)
    a = train_batched(cnn, load_dataset("digits"), small, device="cuda")
    b = train_sequential(cnn_single, load_dataset("digits"), small, device="cuda")
    assert a.attrs["cuda_graph"] and np.allclose(_sorted(a)[METRICS], _sorted(b)[METRICS], rtol=0, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_records_divergence_on_device():
    data = load_dataset("synthetic")
    config = TrainConfig(steps=40, batch_size=32, lr=0.05, num_evals=2, eval_size=128, seed=0)
    nets = _networks("fc", data, [(0.3, 0.0), (1.0, 0.0)], depth=2, width=16, dtype=torch.float32)
    with torch.no_grad():
        nets[1].readout.weight[0, 0] = float("inf")
    result = train_batched(nets, data, config, device="cuda")
    last = result[result["step"] == 40].set_index("network")
    assert result.attrs["cuda_graph"] and bool(last.loc[1, "diverged"]) and not bool(last.loc[0, "diverged"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batched_on_gpu_equals_cpu():
    data = load_dataset("synthetic")
    points = [(0.6, 0.05), (1.7609546, 0.05)]
    config = TrainConfig(steps=20, batch_size=32, lr=0.05, num_evals=2, eval_size=256, seed=2)
    cpu = _sorted(train_batched(_networks("fc", data, points, depth=6, width=24), data, config, device="cpu"))
    gpu = _sorted(train_batched(_networks("fc", data, points, depth=6, width=24), data, config, device="cuda"))
    assert np.allclose(cpu[METRICS], gpu[METRICS], rtol=0, atol=1e-9)
    assert resolve_device("auto").type == "cuda"


def test_minibatches_are_epochwise_permutations():
    from validate.batched import _Batches

    batches = _Batches(10, TrainConfig(batch_size=3, seed=5), torch.device("cpu"))
    epochs = [torch.cat([batches[3 * e + i] for i in range(3)]) for e in range(4)]  # steps in order
    assert all(len(set(epoch.tolist())) == 9 for epoch in epochs)  # 3 full batches, no repeats, 1 example dropped
    assert not all(torch.equal(epochs[0], epoch) for epoch in epochs[1:])
    again = _Batches(10, TrainConfig(batch_size=3, seed=5), torch.device("cpu"))
    assert torch.equal(torch.cat([again[s] for s in range(12)]), torch.cat(epochs))


def test_on_evaluation_reports_every_evaluation_step():
    data = load_dataset("synthetic")
    config = TrainConfig(steps=20, batch_size=32, lr=0.05, num_evals=4, eval_size=128, seed=7)
    calls = []
    frame = train_batched(_networks("fc", data, [(1.0, 0.05)], depth=2, width=8, dtype=torch.float32), data, config,
                          on_evaluation=lambda step, steps: calls.append((step, steps)))
    assert [step for step, _ in calls] == sorted(frame["step"].unique().tolist())
    assert {steps for _, steps in calls} == {20} and calls[-1][0] == 20
