"""Benchmark: one grid row of K networks trained as one batched computation vs one at a time.

The row is K = 16 networks of one depth with sigma_w2 evenly spaced in [1, 4] (tanh, sigma_b2 = 0.05), the same
initial parameters, mini-batches and steps for both ways; the baseline trains ordinary modules one after another with
``torch.optim.SGD`` (:func:`validate.batched.train_sequential`), the batched way stacks them under ``torch.vmap``
(:func:`validate.batched.train_batched`). Prints networks per second for both on the CPU and, when present, the GPU,
and the largest difference of the final losses (they must agree to float tolerance).

    python benchmarks/bench_sweep.py [--model fc|cnn] [--depth 20] [--steps 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from validate.batched import TrainConfig, train_batched, train_sequential
from validate.data import load_dataset
from validate.models import build_model, init_model_


def _row(args, data, device) -> list[torch.nn.Module]:
    nets = []
    for k, sw2 in enumerate(np.linspace(1.0, 4.0, args.networks)):
        net = build_model(args.model, depth=args.depth, input_shape=data.input_shape, num_classes=data.num_classes,
                          width=args.width, channels=args.channels)
        nets.append(init_model_(net, float(sw2), 0.05, generator=torch.Generator().manual_seed(k)).to(device))
    return nets


def _timed(train, nets, data, config, device) -> tuple[float, np.ndarray]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    frame = train(nets, data, config, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    final = frame[frame["step"] == config.steps].sort_values("network")["loss"].to_numpy()
    return elapsed, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["fc", "cnn"], default="fc")
    parser.add_argument("--data", default="mnist-sample")
    parser.add_argument("--networks", type=int, default=16)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.data)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=1e-2, num_evals=1, eval_size=256)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    size = f"width {args.width}" if args.model == "fc" else f"channels {args.channels}"
    print(f"{args.networks} x {args.model} depth {args.depth} {size}, {args.steps} SGD steps of batch "
          f"{args.batch_size} on {args.data}, torch threads {torch.get_num_threads()}")
    for device in devices:
        t_seq, loss_seq = _timed(train_sequential, _row(args, data, device), data, config, device)
        t_bat, loss_bat = _timed(train_batched, _row(args, data, device), data, config, device)
        diff = np.abs(loss_seq - loss_bat)
        tame = np.linspace(1.0, 4.0, args.networks) <= 2.0
        print(f"{device.type:4s}: one at a time {args.networks / t_seq:8.3f} networks/s ({t_seq:7.2f} s), "
              f"batched {args.networks / t_bat:8.3f} networks/s ({t_bat:7.2f} s), speed-up {t_seq / t_bat:5.2f}x")
        print(f"      max |final loss difference|: {np.nanmax(diff[tame]):.2e} for sigma_w2 <= 2 (ordered / near "
              f"critical), {np.nanmax(diff):.2e} over the row (deep chaotic nets amplify rounding during training)")


if __name__ == "__main__":
    main()
