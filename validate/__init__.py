"""PyTorch networks trained on CPU or GPU to test the mean-field and random-matrix predictions."""

# --- first: OpenMP threads sleep instead of spinning at barriers (set before torch loads; see validate.threads) ---
import validate.threads  # noqa: F401

# --- Initializers ---
from validate.init import (  # noqa: F401
    conv_orthogonal_,
    critical_,
    delta_orthogonal_,
    orthonormal_,
    orthonormal_penalty,
    procrustes_,
)

# --- Experiments ---
# isort: split
# (the function trainability() stays in validate.trainability: re-exporting it would shadow the submodule)
from validate.activations import torch_activation  # noqa: F401
from validate.batched import TrainConfig, train_batched, train_sequential  # noqa: F401
from validate.data import DataFileError, Dataset, load_dataset  # noqa: F401
from validate.models import FCNet, VanillaCNN, build_model, init_model_  # noqa: F401
from validate.trainability import ConfigMismatchError, summarize_trainability  # noqa: F401

# --- Probes and the diagnostic (issue 12) ---
# isort: split
from validate.diagnostic import Diagnosis, diagnose  # noqa: F401,E402
