"""PyTorch networks trained on CPU or GPU to test the mean-field and random-matrix predictions.

The public names below are imported on first use (PEP 562), so ``import validate`` and ``python -m validate`` work
without torch and can say which extra to install (``pip install 'sigprop-theory[validate]'``) instead of failing with
an ImportError traceback. Add new exports to :data:`_EXPORTS` (name -> submodule), not as eager imports.
"""

import importlib

# first: OpenMP threads sleep instead of spinning at barriers (set before torch loads; see validate.threads)
import validate.threads  # noqa: F401

_EXPORTS = {
    # --- Initializers ---
    "conv_orthogonal_": "validate.init",
    "critical_": "validate.init",
    "delta_orthogonal_": "validate.init",
    "orthonormal_": "validate.init",
    "orthonormal_penalty": "validate.init",
    "procrustes_": "validate.init",
    # --- Experiments ---
    # (the function trainability() stays in validate.trainability: re-exporting it would shadow the submodule)
    "torch_activation": "validate.activations",
    "TrainConfig": "validate.batched",
    "train_batched": "validate.batched",
    "train_sequential": "validate.batched",
    "DataFileError": "validate.data",
    "Dataset": "validate.data",
    "load_dataset": "validate.data",
    "FCNet": "validate.models",
    "VanillaCNN": "validate.models",
    "build_model": "validate.models",
    "init_model_": "validate.models",
    "ConfigMismatchError": "validate.trainability",
    "summarize_trainability": "validate.trainability",
    # --- Probes and the diagnostic (issue 12) ---
    "Diagnosis": "validate.diagnostic",
    "diagnose": "validate.diagnostic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'validate' has no attribute {name!r}")
    from meanfield.optional import require

    require("torch", "validate", f"validate.{name}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
