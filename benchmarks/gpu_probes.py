"""GPU settings of the probes (issue 12): paper 002's speed comparison, gradnorm on ResNets with and without the
Procrustes step, and paper 000's modulation on 73- and 109-layer plain nets, sized to run in a few minutes on one GPU
(an estimate: not measured on a GPU yet); ``--smoke`` runs a tiny version on CPU in seconds.

To be appended to ``benchmarks/gpu_suite.py`` (hd) as one step (imported by path, like the other benchmarks)::

    spec = importlib.util.spec_from_file_location("gpu_probes", Path(__file__).with_name("gpu_probes.py"))
    gpu_probes = importlib.util.module_from_spec(spec); spec.loader.exec_module(gpu_probes)
    gpu_probes.main(out_dir / "probes", device="cuda")

or run directly: ``python benchmarks/gpu_probes.py --out DIR [--device cuda] [--smoke]``. Each part writes a resumable
directory (``DIR/speed``, ``DIR/gradnorm``, ``DIR/modulation/depth=D,seed=S``); the wall time of each part goes to
``DIR/timings.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# the GPU settings: a deep vanilla tanh CNN (paper 002 Fig. 5 scaled down from 4,000 layers) and ResNet-56-like
# nets (paper 003's ResNet / ProcResNet, paper 000's plain Conv-BN-ReLU) on the embedded MNIST sample
GPU = {
    "speed": dict(depth=256, channels=64, steps=1500, batch_size=128, lr=0.002, momentum=0.9, num_evals=15,
                  eval_size=1000, data="mnist-sample"),
    "gradnorm": dict(variants=("plain", "resnet", "procresnet"), regularizers=("l2",), per_stage=9,
                     widths=(16, 32, 64), steps=600, record_every=50, batch_size=128, lr=0.05,
                     procrustes_every=10, data="mnist-sample"),
    # paper 000: 73- and 109-layer plain Conv-BN-ReLU nets with orthonormality, with and without modulation, two
    # seeds each (on CPU, digits, widths 8-16-32, 400 steps: the unmodulated 73-layer net diverges in the first steps
    # on every seed, the modulated one trains; docs/probes.md)
    "modulation": dict(variants=("plain", "plain-modulated"), regularizers=("orthonormal",), per_stage=(24, 36),
                       seeds=(0, 1), widths=(16, 32, 64), steps=1000, record_every=50, batch_size=128, lr=0.05,
                       modulate_iterations=200, data="mnist-sample"),
}
SMOKE = {
    "speed": dict(depth=4, channels=4, steps=4, batch_size=16, lr=0.002, momentum=0.9, num_evals=2, eval_size=64,
                  data="digits"),
    "gradnorm": dict(variants=("resnet", "procresnet"), regularizers=("l2",), per_stage=1, widths=(4, 8), steps=4,
                     record_every=2, batch_size=16, lr=0.05, procrustes_every=2, data="digits"),
    "modulation": dict(variants=("plain", "plain-modulated"), regularizers=("orthonormal",), per_stage=(1,),
                       seeds=(0,), widths=(4, 8), steps=4, record_every=2, batch_size=16, lr=0.05,
                       modulate_iterations=2, data="digits"),
}


def main(out_dir, device: str = "cuda", smoke: bool = False) -> dict:
    """Run the probe settings for the GPU (or the smoke settings); returns ``{part: summary}`` and writes
    ``out_dir/timings.json``.

    Parameters
    ----------
    out_dir : str or Path
        Output directory (created; resumable per part).
    device : str
        ``"cuda"``, ``"cpu"`` or ``"auto"``.
    smoke : bool
        Tiny settings (seconds on CPU) that exercise the same code.
    """
    from validate.probes.common import write_text_atomic
    from validate.probes.gradnorm import gradnorm, summarize_gradnorm
    from validate.probes.speed import speed

    settings = SMOKE if smoke else GPU
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings, summary = {}, {}
    t0 = time.perf_counter()
    curves = speed("tanh", 2.01e-5, device=device, out=out / "speed", progress=not smoke, **settings["speed"])
    timings["speed_s"] = time.perf_counter() - t0
    summary["speed"] = {init: float(c.sort_values("step").test_accuracy.iloc[-1])
                        for init, c in curves.groupby("init", sort=False)}
    t0 = time.perf_counter()
    gn_kwargs = dict(settings["gradnorm"])
    ratios = gradnorm(gn_kwargs.pop("variants"), gn_kwargs.pop("regularizers"), device=device,
                      out=out / "gradnorm", progress=not smoke, **gn_kwargs)
    timings["gradnorm_s"] = time.perf_counter() - t0
    summary["gradnorm"] = summarize_gradnorm(ratios)
    t0 = time.perf_counter()
    mod_kwargs = dict(settings["modulation"])
    variants, regularizers = mod_kwargs.pop("variants"), mod_kwargs.pop("regularizers")
    depths, seeds = mod_kwargs.pop("per_stage"), mod_kwargs.pop("seeds")
    summary["modulation"] = {}
    for per_stage in depths:
        for seed in seeds:
            name = f"depth={3 * per_stage + 1},seed={seed}"
            modulated = gradnorm(variants, regularizers, device=device, out=out / "modulation" / name,
                                 progress=not smoke, per_stage=per_stage, seed=seed, **mod_kwargs)
            summary["modulation"][name] = summarize_gradnorm(modulated)
    timings["modulation_s"] = time.perf_counter() - t0
    write_text_atomic(out / "timings.json", json.dumps({"device": device, "smoke": smoke, **timings,
                                                        "summary": summary}, indent=2, default=str))
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from validate.batched import resolve_device

    try:
        resolve_device(args.device)
    except (ValueError, RuntimeError) as exc:
        parser.error(f"--device: {exc}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"--out: {args.out!r} exists and is not a directory")
    print(json.dumps(main(args.out, args.device, args.smoke), indent=2, default=str))
