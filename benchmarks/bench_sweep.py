"""Benchmark: one grid row of K networks trained as one batched computation vs one at a time.

The row is K = 16 networks of one depth with sigma_w2 evenly spaced in [1, 4] (tanh, sigma_b2 = 0.05), the same
initial parameters, mini-batches and steps for every way; the baseline trains ordinary modules one after another with
``torch.optim.SGD`` (:func:`validate.batched.train_sequential`). The batched ways stack them under ``torch.vmap``
(:func:`validate.batched.train_batched`): eagerly, and on a GPU also with the whole SGD step captured as one CUDA
graph, in float32 and (``--tf32``) with TensorFloat-32 matmuls. For each way: networks per second, the speed-up over
one at a time, the arithmetic rate (the counted FLOP of :func:`validate.batched.step_cost` over the wall time) and its
fraction of a large matmul's rate measured in the same run (:func:`validate.batched.matmul_rate`), and the largest
difference of the final losses from the one-at-a-time run.

    python benchmarks/bench_sweep.py [--model fc|cnn] [--depth 20] [--steps 50] [--threads 1] [--tf32] [--json F]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from validate.batched import TrainConfig, matmul_rate, step_cost, train_batched, train_sequential
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


def main(argv=None) -> list[dict]:
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
    parser.add_argument("--device", action="append", default=None,
                        help="cpu and/or cuda (repeatable; default: cpu, and cuda when present)")
    parser.add_argument("--tf32", action="store_true", help="also time the GPU graph path with TF32")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.data)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=1e-2, num_evals=1, eval_size=256)
    names = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    devices = [torch.device(name) for name in names]
    size = f"width {args.width}" if args.model == "fc" else f"channels {args.channels}"
    template = _row(args, data, torch.device("cpu"))[0]
    flop, traffic = step_cost(template, data.input_shape, min(args.batch_size, len(data.x_train)), torch.float32)
    work = flop * args.networks * args.steps
    print(f"{args.networks} x {args.model} depth {args.depth} {size}, {args.steps} SGD steps of batch "
          f"{args.batch_size} on {args.data}, torch threads {torch.get_num_threads()}; counted per network and step: "
          f"{flop / 1e9:.3g} GFLOP, {traffic / 1e6:.3g} MB")
    rows = []
    for device in devices:
        peak = matmul_rate(device, torch.float32)
        ways = [("one at a time", train_sequential), ("batched eager",
                                                       lambda *a, **k: train_batched(*a, graph=False, **k))]
        if device.type == "cuda":
            ways.append(("batched graph", train_batched))
            if args.tf32:
                ways.append(("batched graph tf32", lambda *a, **k: train_batched(*a, tf32=True, **k)))
        print(f"{device.type}: measured float32 matmul rate {peak / 1e12:.3g} TFLOP/s"
              + (f" (TF32 {matmul_rate(device, torch.float32, tf32=True) / 1e12:.3g})"
                 if device.type == "cuda" and args.tf32 else ""))
        baseline = None
        for name, train in ways:
            elapsed, final = _timed(train, _row(args, data, device), data, config, device)
            if baseline is None:
                baseline = (elapsed, final)
            diff = np.abs(final - baseline[1])
            tame = np.linspace(1.0, 4.0, args.networks) <= 2.0
            rate = work / elapsed
            row = {"device": device.type, "way": name, "model": args.model, "depth": args.depth,
                   "networks": args.networks, "steps": args.steps, "seconds": elapsed,
                   "networks_per_s": args.networks / elapsed, "speedup": baseline[0] / elapsed,
                   "tflops": rate / 1e12, "matmul_tflops": peak / 1e12, "fraction_of_matmul": rate / peak,
                   "max_loss_diff_tame": float(np.nanmax(diff[tame])), "max_loss_diff": float(np.nanmax(diff))}
            rows.append(row)
            print(f"  {name:19s} {row['networks_per_s']:9.3f} networks/s ({elapsed:7.2f} s)  speed-up "
                  f"{row['speedup']:7.2f}x  {row['tflops']:8.4f} TFLOP/s = {row['fraction_of_matmul']:6.2%} of matmul"
                  f"  |dloss| {row['max_loss_diff_tame']:.1e} (sigma_w2 <= 2), {row['max_loss_diff']:.1e} (row)")
    print("(the one-at-a-time rate includes evaluation; deep chaotic nets amplify rounding differences in training, "
          "so the whole-row loss difference can be large while the sigma_w2 <= 2 one stays at float rounding)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
