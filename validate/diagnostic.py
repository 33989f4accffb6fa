"""A signal-propagation diagnostic for any ``torch.nn.Module`` at initialisation.

:func:`diagnose` runs a batch through a *copy* of the model (``copy.deepcopy``; the model itself, its parameters,
buffers, ``requires_grad`` flags and training mode are never touched) with forward hooks on every parametric layer
(``nn.Linear``, ``nn.Conv1d/2d/3d``), in the order they run, and measures:

- per layer the empirical length ``q^l = mean(h^2)`` of its output and the correlation ``c^l`` of the outputs of pairs
  of inputs (examples 0-1, 2-3, ...), the mean-field order parameters (Poole et al. 2016);
- ``chi^l = tr(J_l J_l^T) / N_out``, the mean squared singular value of the Jacobian ``J_l = dh^{l+1}/dh^l`` between
  consecutive layers (over the whole batch), by random projections ``E ||J_l^T u||^2``, ``u ~ N(0, I)``
  (Hutchinson); the mean-field ``chi_1 = sigma_w2 E[phi'(h)^2]`` for a plain stack (formulas.md);
- the gradient-norm ratios ``||dE/dh^l|| / ||dE/dh^{l+1}||`` (papers 000 and 003), ``E`` the cross-entropy with the
  given targets or a fixed random projection of the output;
- the end-to-end Jacobian from the first layer's output to the output of the last hidden parametric layer (the one
  before the readout; the last layer itself when there are only two) for example 0: its exact singular values when
  it has at most ``max_jacobian_size`` rows (condition number, spread ``var(lam)/mean(lam)^2`` of ``lam = s^2``),
  else the first two moments of ``J J^T`` by random projections (``E||J^T u||^2``, ``E||J J^T u||^2``);

then gives a verdict with reasons: ``ordered`` (``chi < 1``: vanishing gradients), ``chaotic`` (``chi > 1``: exploding
gradients) or ``near-critical`` (``|log chi| <= tolerance``), with ``chi`` the per-layer Jacobian rate for plain
stacks and the squared gradient-norm ratio per layer for other models (see :class:`Diagnosis`), the expected
trainable depth ``6 xi`` with
``xi = 1 / |log chi|`` (Schoenholz et al. 2017), and, when the model is a plain stack ``h^{l+1} = W phi(h^l) + b``
that :mod:`meanfield` covers (recognised numerically: the input of every layer equals a built-in activation of the
previous layer's output, no normalisation layers), the estimated ``sigma_w2, sigma_b2``, the mean-field ``chi_1``
and ``xi_c``, and the ``sigma_w2`` that :func:`validate.critical_` would set. What it cannot judge (residual or
normalised models for the mean-field recommendation, layers whose outputs do not depend on the previous layer, too
large Jacobians for a condition number) is listed in ``cannot_judge``.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

import meanfield

__all__ = ["Diagnosis", "diagnose", "VERDICTS"]

VERDICTS = ("ordered", "chaotic", "near-critical", "undetermined")
_PARAMETRIC = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
_CANDIDATES = ("tanh", "relu", "linear", "erf", "hard_tanh", "sigmoid", "softplus", "elu", "selu", "gelu", "swish",
               "sin")


@dataclass
class Diagnosis:
    """Result of :func:`diagnose`.

    Attributes
    ----------
    layers : pandas.DataFrame
        One row per parametric layer call: ``layer, name, type, size`` (output features per example), ``q, c``,
        ``chi, chi_stderr`` (Jacobian to the next layer; NaN for the last), ``grad_norm`` (``||dE/dh^l||``) and
        ``grad_ratio`` (``||dE/dh^l|| / ||dE/dh^{l+1}||``).
    verdict : str
        ``ordered``, ``chaotic``, ``near-critical`` or ``undetermined``.
    reasons, cannot_judge : list of str
    chi_mean, chi_stderr : float
        The backward rate the verdict uses and its standard error (from the spread over layers): for a recognised
        plain stack the geometric mean of ``chi^l`` over the equal-size transitions; otherwise (skips,
        normalisation, pooling, where one path's layer Jacobian is not the network's backward rate) the geometric
        mean of the squared gradient-norm ratios ``(||dE/dh^l|| / ||dE/dh^{l+1}||)^2``.
    trainable_depth : float
        ``6 xi``, ``xi = 1/|log chi_mean|`` (or ``6 xi_c`` of mean field for a recognised plain stack).
    spectrum : dict
        End-to-end Jacobian: ``method`` ("exact" or "moments"), ``size``, ``s_max, s_min, condition_number,
        mean_lam, variance_lam, spread``.
    plain_stack : dict or None
        For a recognised plain stack: ``activation, sigma_w2, sigma_b2, chi_1, xi_c, phase, critical_sigma_w2``.
    """

    layers: pd.DataFrame
    verdict: str
    reasons: list[str]
    cannot_judge: list[str]
    chi_mean: float
    chi_stderr: float
    trainable_depth: float
    spectrum: dict = field(default_factory=dict)
    plain_stack: dict | None = None

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the layer table as a list of records)."""
        def clean(v):
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, (float, np.floating)):
                return float(v) if math.isfinite(v) else str(float(v))
            if isinstance(v, np.integer):
                return int(v)
            return v

        return clean({"verdict": self.verdict, "reasons": self.reasons, "cannot_judge": self.cannot_judge,
                      "chi_mean": self.chi_mean, "chi_stderr": self.chi_stderr,
                      "trainable_depth": self.trainable_depth, "spectrum": self.spectrum,
                      "plain_stack": self.plain_stack, "layers": self.layers.to_dict(orient="records")})

    def text(self) -> str:
        """Human-readable report."""
        lines = [f"verdict: {self.verdict}"]
        lines += [f"  - {r}" for r in self.reasons]
        if self.cannot_judge:
            lines.append("cannot judge:")
            lines += [f"  - {r}" for r in self.cannot_judge]
        cols = ["layer", "name", "type", "size", "q", "c", "chi", "chi_stderr", "grad_ratio"]
        lines.append(self.layers[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return "\n".join(lines)


def _pairs_correlation(h: torch.Tensor) -> float:
    flat = h.detach().double().reshape(h.shape[0], -1)
    m = flat.shape[0] // 2
    if m == 0:
        return math.nan
    a, b = flat[0:2 * m:2], flat[1:2 * m:2]
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    return float(cos.mean())


def _match_activation(pre: torch.Tensor, post: torch.Tensor) -> str | None:
    """Name of the built-in activation with ``post == phi(pre)`` (to float tolerance), or None."""
    from validate.activations import torch_activation

    if pre.shape != post.shape:
        return None
    pre, post = pre.detach().double(), post.detach().double()
    scale = float(post.abs().max()) + 1e-12
    tol = 1e-4 if post.dtype == torch.float32 else 1e-5
    for name in _CANDIDATES:
        try:
            phi = torch_activation(name, check=False)
        except ValueError:
            continue
        if float((phi(pre) - post).abs().max()) <= tol * max(scale, 1.0):
            return name
    return None


def _jacobian_rows(out_row: torch.Tensor, source: torch.Tensor, index: int) -> torch.Tensor:
    """Rows ``d out_row / d source[index]`` (one reverse pass per row, vectorised when possible)."""
    n = out_row.numel()
    eye = torch.eye(n, dtype=out_row.dtype, device=out_row.device).reshape(n, *out_row.shape)
    try:
        (rows,) = torch.autograd.grad(out_row, source, eye, retain_graph=True, is_grads_batched=True)
        return rows[:, index].reshape(n, -1)
    except RuntimeError:
        rows = [torch.autograd.grad(out_row, source, e, retain_graph=True)[0][index].reshape(-1) for e in eye]
        return torch.stack(rows)


def diagnose(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *, probes: int = 8,
             tolerance: float = 0.05, max_jacobian_size: int = 1024, seed: int = 0) -> Diagnosis:
    """Diagnose signal propagation in ``model`` at its current parameters; see the module docstring.

    Parameters
    ----------
    model : nn.Module
        Any module; it is deep-copied and never changed.
    inputs : torch.Tensor
        A batch of at least 2 inputs (pairs 0-1, 2-3, ... give ``c^l``), on the model's device and dtype. For a
        mean-field reading, inputs of equal length are best (e.g. standardised data).
    targets : torch.Tensor, optional
        Class labels for the cross-entropy ``E`` of the gradient ratios; default a random projection of the output.
    probes : int
        Random projections per ``chi^l`` (>= 2).
    tolerance : float
        ``|log chi_mean| <= tolerance`` is near-critical.
    max_jacobian_size : int
        Largest end-to-end Jacobian (rows) computed exactly; larger ones get moment estimates.
    seed : int
        Seeds the random projections.

    Returns
    -------
    Diagnosis
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2 or inputs.shape[0] < 2:
        raise ValueError("inputs must be a tensor batch of at least 2 inputs, shape (batch, ...)")
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 2:
        raise ValueError(f"probes must be an integer >= 2, got {probes!r}")
    tolerance = float(tolerance)
    if not math.isfinite(tolerance) or tolerance <= 0:
        raise ValueError(f"tolerance must be a positive number, got {tolerance!r}")
    work = copy.deepcopy(model)
    for module in work.modules():
        if hasattr(module, "inplace") and isinstance(module.inplace, bool):
            module.inplace = False  # (on the copy) in-place activations would overwrite the recorded outputs
    names = {id(m): n for n, m in work.named_modules()}
    calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []

    def hook(module, args, output):
        if isinstance(output, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            calls.append((module, args[0], output))

    handles = [m.register_forward_hook(hook) for m in work.modules() if isinstance(m, _PARAMETRIC)]
    cannot: list[str] = []
    reasons: list[str] = []
    try:
        with torch.enable_grad():
            x = inputs.detach().clone().requires_grad_(inputs.is_floating_point())  # graph even with frozen weights
            out = work(x)
    finally:
        for h in handles:
            h.remove()
    if not calls:
        raise ValueError("the model ran no nn.Linear / nn.Conv layer: nothing to diagnose")
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"the model must return a tensor, got {type(out).__name__}")
    outputs = [o for _, _, o in calls]
    if not all(o.requires_grad for o in outputs):
        raise ValueError("some layer outputs do not depend on the inputs or parameters through autograd "
                         "(torch.no_grad inside forward, or integer inputs?); diagnose needs the autograd graph")
    gen = torch.Generator(device=out.device)
    gen.manual_seed(int(seed))

    # gradient norms
    if targets is not None:
        loss = F.cross_entropy(out, targets)
    else:
        loss = (out * torch.randn(out.shape, generator=gen, device=out.device, dtype=out.dtype)).sum()
    grads = torch.autograd.grad(loss, outputs, retain_graph=True, allow_unused=True)
    grad_norm = [float(g.double().norm()) if g is not None else math.nan for g in grads]

    rows = []
    for i, (module, _, h) in enumerate(calls):
        hd = h.detach().double()
        chi = chi_se = math.nan
        if i + 1 < len(calls):
            nxt = outputs[i + 1]
            est = []
            for _ in range(probes):
                u = torch.randn(nxt.shape, generator=gen, device=nxt.device, dtype=nxt.dtype)
                (g,) = torch.autograd.grad(nxt, h, u, retain_graph=True, allow_unused=True)
                if g is None:
                    break
                est.append(float(g.double().pow(2).sum()) / nxt.numel())
            if est:
                chi, chi_se = float(np.mean(est)), float(np.std(est, ddof=1) / math.sqrt(len(est)))
            else:
                cannot.append(f"chi of layer {i} ({names.get(id(module))}): the next layer does not depend on it")
        ratio = grad_norm[i] / grad_norm[i + 1] if i + 1 < len(calls) and grad_norm[i + 1] > 0 else math.nan
        rows.append({"layer": i, "name": names.get(id(module), "?"), "type": type(module).__name__,
                     "size": int(h[0].numel()), "q": float(hd.pow(2).mean()), "c": _pairs_correlation(h),
                     "chi": chi, "chi_stderr": chi_se, "grad_norm": grad_norm[i], "grad_ratio": ratio})
    layers = pd.DataFrame(rows)

    # per-layer rate: equal-size transitions (hidden layers), else all
    sizes = layers["size"].to_numpy()
    same = np.array([i + 1 < len(calls) and sizes[i] == sizes[i + 1] for i in range(len(calls))])
    use = layers["chi"].notna().to_numpy() & (same if same.any() else True)
    logs = np.log(layers.loc[use, "chi"].to_numpy())
    logs = logs[np.isfinite(logs)]
    if logs.size:
        log_chi = float(logs.mean())
        se = float(logs.std(ddof=1) / math.sqrt(logs.size)) if logs.size > 1 else math.nan
        chi_mean, chi_stderr = math.exp(log_chi), math.exp(log_chi) * se if math.isfinite(se) else math.nan
    else:
        log_chi, chi_mean, chi_stderr = math.nan, math.nan, math.nan
        cannot.append("no pair of consecutive parametric layers: no per-layer chi")

    has_norm = any(isinstance(m, _NORMS) for m in work.modules())
    plain = _plain_stack(calls, has_norm, cannot)

    # gradient-norm rate: squared-norm growth per layer from the last layer to the first (all architectures)
    ratios = layers["grad_ratio"].to_numpy()
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    basis = "per-layer chi"
    if plain is None and ratios.size:
        # skips, normalisation or pooling: the layer-to-layer Jacobian along one path is not the backward rate of the
        # network, the gradient norms are
        grad_logs = 2.0 * np.log(ratios)
        log_chi = float(grad_logs.mean())
        se = float(grad_logs.std(ddof=1) / math.sqrt(grad_logs.size)) if grad_logs.size > 1 else math.nan
        chi_mean, chi_stderr = math.exp(log_chi), math.exp(log_chi) * se if math.isfinite(se) else math.nan
        basis, n_used = "squared gradient-norm ratio per layer", grad_logs.size
    else:
        n_used = logs.size

    # verdict
    if not math.isfinite(log_chi):
        verdict, xi = "undetermined", math.nan
    else:
        xi = 1.0 / abs(log_chi) if log_chi != 0 else math.inf
        if abs(log_chi) <= tolerance:
            verdict = "near-critical"
        else:
            verdict = "ordered" if log_chi < 0 else "chaotic"
        reasons.append(f"geometric mean of {basis} = {chi_mean:.4g} +- {chi_stderr:.2g} over {n_used} "
                       f"layer transitions: |log chi| = {abs(log_chi):.3g} "
                       + ("<=" if abs(log_chi) <= tolerance else ">") + f" tolerance {tolerance:g}")
        if verdict == "ordered":
            reasons.append("chi < 1: backward signals shrink by chi per layer (vanishing gradients); inputs become "
                           "correlated with depth")
        elif verdict == "chaotic":
            reasons.append("chi > 1: backward signals grow by chi per layer (exploding gradients); nearby inputs "
                           "decorrelate with depth")
    if ratios.size:
        reasons.append(f"gradient norm changes by a factor {float(np.prod(ratios)):.3g} from the last to the first "
                       f"layer (median per-layer ratio {float(np.median(ratios)):.4g})")
    cs = layers["c"].to_numpy()
    if len(cs) >= 2 and np.all(np.isfinite(cs[[0, -1]])):
        reasons.append(f"correlation of input pairs goes from c = {cs[0]:.4g} (first layer) to {cs[-1]:.4g} (last)")
    trainable = 6.0 * xi
    if plain is not None and math.isfinite(plain.get("xi_c", math.nan)):
        trainable = 6.0 * plain["xi_c"]
        label = plain["phase"]
        if math.isfinite(plain["chi_1"]) and abs(math.log(plain["chi_1"])) <= tolerance:
            label = f"near-critical; strictly {label}"
        reasons.append(f"plain {plain['activation']} stack: estimated sigma_w2 = {plain['sigma_w2']:.4g}, "
                       f"sigma_b2 = {plain['sigma_b2']:.3g}; mean field gives chi_1 = {plain['chi_1']:.4g} "
                       f"({label}), xi_c = {plain['xi_c']:.4g}; validate.critical_ would set sigma_w2 = "
                       f"{plain['critical_sigma_w2']:.6g}")
    if math.isfinite(trainable):
        reasons.append(f"expected trainable depth ~ 6 xi = {trainable:.4g} layers (model has {len(calls)})")
    elif verdict == "near-critical":
        reasons.append("expected trainable depth: no limit resolved at this sampling accuracy (6 xi -> infinity)")
    if has_norm:
        cannot.append("normalisation layers present: mean-field chi_1 and the sigma_w2 recommendation do not apply; "
                      "the per-layer chi above is measured directly")
    spectrum = _end_to_end(calls, outputs, max_jacobian_size, probes, gen, cannot)
    if math.isfinite(spectrum.get("condition_number", math.nan)):
        reasons.append(f"end-to-end Jacobian (example 0, {spectrum['size']} rows): condition number "
                       f"{spectrum['condition_number']:.3g}, spread var/mean^2 of s^2 = {spectrum['spread']:.3g}")
    return Diagnosis(layers, verdict, reasons, cannot, chi_mean, chi_stderr, trainable, spectrum, plain)


def _plain_stack(calls, has_norm: bool, cannot: list[str]) -> dict | None:
    if has_norm:
        cannot.append("not a plain stack (normalisation layers): no mean-field sigma_w2 recommendation")
        return None
    if len(calls) < 2:
        cannot.append("fewer than two parametric layers: no mean-field reading")
        return None
    if len({id(m) for m, _, _ in calls}) != len(calls):
        cannot.append("a layer runs more than once (weight sharing): not a plain stack")
        return None
    names = set()
    for (_, _, h), (_, nxt_in, _) in zip(calls[:-1], calls[1:], strict=True):
        pre = h.reshape(h.shape[0], -1) if nxt_in.dim() == 2 else h
        name = _match_activation(pre, nxt_in)
        if name is None:
            cannot.append("not a plain stack h' = W phi(h) + b with a built-in activation (skip connections, pooling "
                          "or other operations between layers): no mean-field sigma_w2 recommendation")
            return None
        names.add(name)
    if len(names) != 1:
        cannot.append(f"different activations between layers ({sorted(names)}): no single mean-field reading")
        return None
    act = names.pop()
    hidden = [m for m, _, _ in calls[:-1]] if len(calls) >= 3 else [m for m, _, _ in calls]
    sw2 = float(np.mean([m.weight[0].numel() * float(m.weight.detach().double().pow(2).mean()) for m in hidden]))
    sb2 = float(np.mean([float(m.bias.detach().double().pow(2).mean()) if m.bias is not None else 0.0
                         for m in hidden]))
    result = {"activation": act, "sigma_w2": sw2, "sigma_b2": sb2}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            point = meanfield.mean_field_point(act, sw2, sb2)
            result.update(chi_1=float(point.chi_1), xi_c=float(point.xi_c), phase=str(point.phase))
        except (ValueError, ArithmeticError) as exc:
            cannot.append(f"mean field at the estimated point failed: {exc}")
            result.update(chi_1=math.nan, xi_c=math.nan, phase="unknown")
        try:
            result["critical_sigma_w2"] = float(meanfield.critical_sigma_w2(act, sb2)[0])
        except (ValueError, ArithmeticError) as exc:
            cannot.append(f"no critical sigma_w2 for {act} at sigma_b2={sb2:.3g}: {exc}")
            result["critical_sigma_w2"] = math.nan
    cannot.extend(f"mean field: {w.message}" for w in caught)
    return result


def _end_to_end(calls, outputs, max_size: int, probes: int, gen, cannot: list[str]) -> dict:
    if len(calls) < 2:
        cannot.append("end-to-end Jacobian: needs at least two parametric layers")
        return {}
    first = outputs[0]
    last = outputs[-2] if len(calls) >= 3 else outputs[-1]  # the last layer before the readout
    if not last.requires_grad:
        cannot.append("end-to-end Jacobian: the last hidden layer does not depend on the first layer")
        return {}
    size = int(last[0].numel())
    if size <= max_size:
        try:
            jac = _jacobian_rows(last[0], first, 0)
        except RuntimeError as exc:
            cannot.append(f"end-to-end Jacobian failed ({exc})")
            return {}
        s = torch.linalg.svdvals(jac.double()).cpu().numpy()
        if s.min() <= s.max() * torch.finfo(jac.dtype).eps * math.sqrt(jac.numel()):
            cannot.append(f"end-to-end Jacobian: the smallest singular values are at {jac.dtype} rounding level; "
                          "the condition number is a lower bound (use float64 for more)")
        lam = s**2
        mean = float(lam.mean())
        return {"method": "exact", "size": size, "s_max": float(s.max()), "s_min": float(s.min()),
                "condition_number": float(s.max() / s.min()) if s.min() > 0 else math.inf, "mean_lam": mean,
                "variance_lam": float(lam.var()), "spread": float(lam.var() / mean**2) if mean > 0 else math.nan}
    cannot.append(f"end-to-end Jacobian has {size} rows > max_jacobian_size={max_size}: condition number not "
                  "computed; mean and variance of s^2 estimated by random projections")
    m1, m2 = [], []
    for _ in range(probes):
        u = torch.zeros_like(last)
        u[0] = torch.randn(last[0].shape, generator=gen, device=last.device, dtype=last.dtype)
        u.requires_grad_(True)
        (g,) = torch.autograd.grad(last, first, u, retain_graph=True, create_graph=True)
        g0 = torch.zeros_like(g)
        g0[0] = g[0]
        m1.append(float(g[0].detach().double().pow(2).sum()))
        (jjt_u,) = torch.autograd.grad(g, u, g0.detach(), retain_graph=True)
        m2.append(float(jjt_u[0].double().pow(2).sum()))
    mean = float(np.mean(m1)) / size
    second = float(np.mean(m2)) / size
    return {"method": "moments", "size": size, "s_max": math.nan, "s_min": math.nan, "condition_number": math.nan,
            "mean_lam": mean, "variance_lam": second - mean**2,
            "spread": (second - mean**2) / mean**2 if mean > 0 else math.nan}
