"""Command-line subcommands of the probes: ``python -m validate signal | spectra | gradnorm | speed | diagnose``.

:func:`add_probe_subcommands` registers them on the ``python -m validate`` sub-parsers (:mod:`validate.cli`); each sets
``args.probe_handler``. Shared flags (the validation engine's): ``--device``, ``--dtype``, ``--seed``, ``--data``,
``--out DIR`` (resumable: rerun the same command to continue), ``--no-progress``, ``--json`` (print the JSON summary
instead of the table). Bad input exits with status 2 and a message naming the flag; Ctrl-C exits with 130.

``diagnose --model-file FILE.py:factory`` *executes* ``FILE.py`` (exactly as ``python FILE.py`` would, as a module
named ``_diagnosed_model``) and calls ``factory()`` to build the model: only name files you trust. Nothing else is
executed or evaluated; every other flag is parsed as data.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import re
import sys
from pathlib import Path

from validate.cli import add_engine_arguments, check_engine_arguments

__all__ = ["add_probe_subcommands", "load_model_factory", "PROBE_COMMANDS"]

PROBE_COMMANDS = ("signal", "spectra", "gradnorm", "speed", "diagnose")


def _ints(text: str, flag: str, parser, minimum: int = 1) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        parser.error(f"{flag}: expected a comma list of integers, got {text!r}")
    if not values or min(values) < minimum:
        parser.error(f"{flag}: expected integers >= {minimum}, got {text!r}")
    return values


def _choices(text: str, flag: str, allowed, parser) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        parser.error(f"{flag}: expected a comma list of {', '.join(allowed)}, got {text!r}")
    return values


def _check_common(parser, args) -> None:
    check_engine_arguments(parser, args, load_data=False)
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            parser.error(f"--out: {args.out!r} exists and is not a directory")
    if getattr(args, "activation", None) is not None:
        from meanfield.activations import get_activation

        try:
            get_activation(args.activation)
        except (ValueError, TypeError) as exc:
            parser.error(f"--activation: {exc}")
    for flag in ("sigma_w2", "sigma_b2", "lr", "c0", "tolerance"):
        value = getattr(args, flag, None)
        if value is not None and not math.isfinite(value):
            parser.error(f"--{flag.replace('_', '-')}: must be finite, got {value}")
    if getattr(args, "sigma_w2", None) is not None and args.sigma_w2 <= 0:
        parser.error(f"--sigma-w2: must be > 0, got {args.sigma_w2}")
    if getattr(args, "sigma_b2", None) is not None and args.sigma_b2 < 0:
        parser.error(f"--sigma-b2: must be >= 0, got {args.sigma_b2}")
    for flag in ("depth", "draws", "channels", "steps", "batch_size", "record_every", "procrustes_every",
                 "per_stage", "image_size", "evals", "eval_size", "probes", "max_jacobian_size"):
        value = getattr(args, flag, None)
        if value is not None and value < (2 if flag in ("probes",) else 1):
            parser.error(f"--{flag.replace('_', '-')}: must be a positive integer"
                         + (" >= 2" if flag == "probes" else "") + f", got {value}")
    if getattr(args, "data", None) is not None:
        from validate.data import DataFileError, load_dataset

        try:
            load_dataset(args.data)
        except (ValueError, FileNotFoundError, DataFileError, ImportError) as exc:
            parser.error(f"--data: {exc}")


def _emit(args, frame, summary_keys=None) -> None:
    import pandas as pd

    summary = {k: v for k, v in frame.attrs.items() if summary_keys is None or k in summary_keys}
    if args.json:
        payload = {"rows": json.loads(frame.to_json(orient="records")), "summary": summary}
        print(json.dumps(payload, indent=2, default=str))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 40):
            print(frame.to_string(index=False, float_format=lambda v: f"{v:.5g}"))
        for key, value in summary.items():
            print(f"{key}: {value}")
    if args.out:
        print(f"results: {args.out}", file=sys.stderr)


def _run(parser, args, body) -> int:
    from validate.batched import matmul_precision
    from validate.threads import thread_limit
    from validate.trainability import ConfigMismatchError

    _check_common(parser, args)
    if args.no_resume and args.out and Path(args.out).is_dir() and any(Path(args.out).iterdir()):
        parser.error(f"--no-resume: --out {args.out!r} already holds results")
    try:
        with thread_limit(args.threads), matmul_precision(args.tf32):
            body()
    except ConfigMismatchError as exc:
        parser.error(f"--out: {exc}")
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        where = f"finished parts are saved in {args.out}; rerun the same command to resume" if args.out else \
            "nothing was saved (use --out DIR to make runs resumable)"
        print(f"\ninterrupted: {where}", file=sys.stderr)
        return 130
    return 0


def _signal(parser, args) -> int:
    from validate.probes import signal

    widths = _ints(args.width, "--width", parser, 2)

    def body():
        common = dict(activation=args.activation, sigma_w2=args.sigma_w2, sigma_b2=args.sigma_b2, depth=args.depth,
                      draws=args.draws, dtype=args.dtype, device=args.device, seed=args.seed, data=args.data)
        if args.model == "fc":
            frame = signal.signal_width_sweep(widths, init=args.init, c0=args.c0, out=args.out,
                                              progress=not args.no_progress, **common)
        else:
            from validate.probes.common import ResultStore

            settings = {k: v for k, v in common.items() if k != "device"}
            store = ResultStore(args.out, "signal", {"kind": "cnn", "channels": args.channels, "init": args.init,
                                                     "kernel": args.kernel, **settings})
            frame = store.get("cnn")
            if frame is None:
                frame = store.put("cnn", signal.signal_cnn(channels=args.channels, init=args.init, kernel=args.kernel,
                                                           **common))
            store.finish(frame, {"max_abs_q_z": float(frame.q_z.abs().max()),
                                 "max_abs_c_z": float(frame.c_z.abs().max())})
        _emit(args, frame)

    return _run(parser, args, body)


def _spectra(parser, args) -> int:
    from validate.probes import spectra

    settings = []
    for item in args.settings.split(","):
        arch, _, init = item.strip().partition(":")
        if arch not in spectra.ARCHITECTURES or init not in spectra.INITS:
            parser.error(f"--settings: expected a comma list of ARCH:INIT with ARCH in fc, cnn and INIT in "
                         f"{', '.join(spectra.INITS)}, got {item!r}")
        settings.append((arch, init))

    def body():
        frame = spectra.spectra(args.activation, args.sigma_w2, args.sigma_b2, depth=args.depth, settings=settings,
                                width=args.width, channels=args.channels, image_size=args.image_size,
                                draws=args.draws, dtype=args.dtype, device=args.device, seed=args.seed, out=args.out,
                                progress=not args.no_progress)
        _emit(args, frame)

    return _run(parser, args, body)


def _gradnorm(parser, args) -> int:
    from validate.probes import gradnorm, nets

    variants = _choices(args.variants, "--variants", nets.VARIANTS, parser)
    regs = _choices(args.regularizers, "--regularizers", gradnorm.REGULARIZERS, parser)
    widths = tuple(_ints(args.widths, "--widths", parser))

    def body():
        frame = gradnorm.gradnorm(variants, regs, out=args.out, progress=not args.no_progress, data=args.data,
                                  per_stage=args.per_stage, widths=widths, steps=args.steps,
                                  record_every=args.record_every, batch_size=args.batch_size, lr=args.lr,
                                  momentum=args.momentum, weight_decay=args.weight_decay,
                                  ortho_lambda=args.ortho_lambda, procrustes_every=args.procrustes_every,
                                  modulate_iterations=args.modulate_iterations, dtype=args.dtype,
                                  device=args.device, seed=args.seed)
        frame.attrs.update(gradnorm.summarize_gradnorm(frame))
        _emit(args, frame)

    return _run(parser, args, body)


def _speed(parser, args) -> int:
    from validate.probes import speed

    inits = _choices(args.inits, "--inits", speed.SPEED_INITS, parser)

    def body():
        frame = speed.speed(args.activation, args.sigma_b2, depth=args.depth, channels=args.channels, inits=inits,
                            data=args.data, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            momentum=args.momentum, num_evals=args.evals, eval_size=args.eval_size,
                            dtype=args.dtype, device=args.device, seed=args.seed, out=args.out,
                            progress=not args.no_progress)
        _emit(args, frame)

    return _run(parser, args, body)


_SPEC = re.compile(r"^(?P<path>.+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


def load_model_factory(spec: str):
    """Run ``FILE.py`` of ``spec = "FILE.py:factory"`` (user code, by design) and return its ``factory`` callable.

    Raises
    ------
    ValueError
        Malformed spec, missing file, or no callable ``factory`` in it; errors raised by the file while it runs are
        re-raised as ValueError naming the file.
    """
    match = _SPEC.match(spec)
    if not match:
        raise ValueError(f"expected FILE.py:factory (a Python file and a function name), got {spec!r}")
    path = Path(match["path"])
    if not path.is_file():
        raise ValueError(f"no such file: {str(path)!r}")
    module_spec = importlib.util.spec_from_file_location("_diagnosed_model", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - user code: report, do not crash
        raise ValueError(f"running {str(path)!r} raised {type(exc).__name__}: {exc}") from None
    factory = getattr(module, match["name"], None)
    if not callable(factory):
        raise ValueError(f"{str(path)!r} has no callable {match['name']!r}")
    return factory


def _diagnose(parser, args) -> int:
    import torch
    from torch import nn

    from validate.diagnostic import diagnose
    from validate.probes.common import resolve_device, torch_dtype, write_text_atomic

    _check_common(parser, args)
    if args.input_shape is None and args.data is None:
        parser.error("--input-shape: required unless --data gives the inputs")
    shape = _ints(args.input_shape, "--input-shape", parser) if args.input_shape else None
    if not args.tolerance > 0:
        parser.error(f"--tolerance: must be > 0, got {args.tolerance}")
    try:
        factory = load_model_factory(args.model_file)
    except ValueError as exc:
        parser.error(f"--model-file: {exc}")
    try:
        model = factory()
    except Exception as exc:  # noqa: BLE001 - user code
        parser.error(f"--model-file: calling {args.model_file} raised {type(exc).__name__}: {exc}")
    if not isinstance(model, nn.Module):
        parser.error(f"--model-file: {args.model_file} returned {type(model).__name__}, not a torch.nn.Module")
    device = resolve_device(args.device)
    dtype = torch_dtype(args.dtype)
    model = model.to(device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(args.seed)
    targets = None
    if args.data is not None:
        from validate.data import load_dataset

        ds = load_dataset(args.data)
        if shape is not None and tuple(shape) != ds.input_shape:
            parser.error(f"--input-shape: {tuple(shape)} differs from the data's input shape {ds.input_shape}")
        x = torch.as_tensor(ds.x_test[:args.batch_size].copy(), dtype=dtype)
        targets = torch.as_tensor(ds.y_test[:args.batch_size].copy(), device=device)
    else:
        x = torch.randn((args.batch_size, *shape), generator=gen, dtype=dtype)
    try:
        result = diagnose(model, x.to(device), targets, probes=args.probes, tolerance=args.tolerance,
                          max_jacobian_size=args.max_jacobian_size, seed=args.seed)
    except (ValueError, TypeError) as exc:
        parser.error(f"--model-file: cannot diagnose this model: {exc}")
    except RuntimeError as exc:
        parser.error(f"--input-shape: the model failed on inputs of shape {tuple(x.shape)}: {exc}")
    payload = result.to_dict()
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "diagnose.json", json.dumps(payload, indent=2))
        write_text_atomic(out / "diagnose.csv", result.layers.to_csv(index=False))
    print(json.dumps(payload, indent=2) if args.json else result.text())
    return 0


def _add_network_arguments(p, depth: int) -> None:
    """``--activation``, ``--sigma-w2`` (default: critical), ``--sigma-b2``, ``--depth`` of the random-net probes."""
    p.add_argument("--activation", default="tanh")
    p.add_argument("--sigma-w2", type=float, default=None, help="default: critical for --sigma-b2")
    p.add_argument("--sigma-b2", type=float, default=0.05)
    p.add_argument("--depth", type=int, default=depth)


def add_probe_subcommands(sub) -> None:
    """Register the probe subcommands on ``sub`` (the result of ``parser.add_subparsers``)."""
    p = sub.add_parser("signal", help="layer-wise q^l, c^l of random nets beside the mean-field maps",
                       description="Empirical q^l and c^l (FC) or spatial covariance (CNN) of random torch networks "
                                   "at init beside meanfield.iterate_maps / propagate_covariance.")
    p.add_argument("--model", choices=["fc", "cnn"], default="fc")
    _add_network_arguments(p, depth=20)
    p.add_argument("--width", default="64,128,256,512", help="FC width or comma list (a width sweep)")
    p.add_argument("--channels", type=int, default=64, help="CNN channels (default 64)")
    p.add_argument("--draws", type=int, default=32)
    p.add_argument("--init", choices=["gaussian", "orthogonal", "delta-orthogonal"], default="gaussian")
    p.add_argument("--kernel", default="uniform", help="CNN kernel variance vector: uniform, delta, GS0..GS4")
    p.add_argument("--c0", type=float, default=0.5, help="correlation of the generated FC input pair")
    add_engine_arguments(p, dtype_default="float64", data_default=None)
    p.set_defaults(probe_handler=functools.partial(_signal, p))

    p = sub.add_parser("spectra", help="Jacobian singular values of torch nets beside rmt.jacobian_spectrum",
                       description="Singular values of the input-output Jacobian of random torch networks at init "
                                   "beside rmt.jacobian_spectrum, with the KS distance per setting.")
    _add_network_arguments(p, depth=16)
    p.add_argument("--width", type=int, default=128, help="FC width (default 128)")
    p.add_argument("--channels", type=int, default=8, help="CNN channels (default 8)")
    p.add_argument("--image-size", type=int, default=6, help="CNN image size n (default 6)")
    p.add_argument("--settings", default="fc:gaussian,fc:orthogonal,cnn:gaussian,cnn:orthogonal,cnn:delta-orthogonal",
                   help="comma list of ARCH:INIT")
    p.add_argument("--draws", type=int, default=2)
    add_engine_arguments(p, dtype_default="float64", data=False)
    p.set_defaults(probe_handler=functools.partial(_spectra, p))

    p = sub.add_parser("gradnorm", help="block gradient-norm ratios of plain nets / ResNets / ProcResNets",
                       description="Per-block ratios ||dE/dx_l|| / ||dE/dx_{l+1}|| at init and through training "
                                   "(papers 000, 003).")
    p.add_argument("--variants", default="plain,resnet,procresnet,plain-modulated")
    p.add_argument("--regularizers", default="l2,orthonormal")
    p.add_argument("--per-stage", type=int, default=3, help="blocks per stage (default 3)")
    p.add_argument("--widths", default="16,32,64", help="stage widths (default 16,32,64)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--record-every", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4, help="L2 weight decay (l2 runs)")
    p.add_argument("--ortho-lambda", type=float, default=1e-3, help="orthonormal penalty weight")
    p.add_argument("--procrustes-every", type=int, default=10, help="T: project ProcResNet transitions every T")
    p.add_argument("--modulate-iterations", type=int, default=50, help="modulation on for the first N steps")
    add_engine_arguments(p, data_default="digits")
    p.set_defaults(probe_handler=functools.partial(_gradnorm, p))

    p = sub.add_parser("speed", help="orthogonal vs critical Gaussian init of a deep vanilla CNN (paper 002 Fig. 5)",
                       description="Learning curves of a deep vanilla tanh CNN under critical Gaussian and "
                                   "orthogonal initialisation.")
    p.add_argument("--activation", default="tanh")
    p.add_argument("--sigma-b2", type=float, default=2.01e-5)
    p.add_argument("--depth", type=int, default=32)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--inits", default="gaussian,orthogonal")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.002, help="SGD learning rate (default 0.002)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--evals", type=int, default=10)
    p.add_argument("--eval-size", type=int, default=1000)
    add_engine_arguments(p, data_default="mnist-sample")
    p.set_defaults(probe_handler=functools.partial(_speed, p))

    p = sub.add_parser("diagnose", help="signal-propagation diagnosis of any torch model at init",
                       description="Diagnose a torch.nn.Module built by FILE.py:factory. This RUNS FILE.py (like "
                                   "python FILE.py) and calls factory(); name only files you trust.")
    p.add_argument("--model-file", required=True, help="FILE.py:factory (the file is executed)")
    p.add_argument("--input-shape", default=None, help="shape of one input, comma list (e.g. 3,32,32)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--probes", type=int, default=8, help="random projections per chi (default 8)")
    p.add_argument("--tolerance", type=float, default=0.05, help="|log chi| <= tolerance is near-critical")
    p.add_argument("--max-jacobian-size", type=int, default=1024)
    add_engine_arguments(p, data_default=None)
    p.set_defaults(probe_handler=functools.partial(_diagnose, p))
