"""MNIST loaders on small IDX/npz files written here, corrupt ones included; the tasks."""

import gzip
import struct

import numpy as np
import pytest

import models


def _idx_images(images):
    n, rows, cols = images.shape
    return struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes()


def _idx_labels(labels):
    return struct.pack(">II", 2049, labels.shape[0]) + labels.astype(np.uint8).tobytes()


def _fake_mnist(n_train=60, n_test=30, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 28, 28)), np.arange(n_train) % 10,
            rng.integers(0, 256, (n_test, 28, 28)), np.arange(n_test) % 10)


def _write_idx(folder, arrays, gz):
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    blobs = [_idx_images(arrays[0]), _idx_labels(arrays[1]), _idx_images(arrays[2]), _idx_labels(arrays[3])]
    for name, blob in zip(names, blobs):
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (folder / name).write_bytes(blob)
    return names


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_idx_roundtrip(tmp_path, gz):
    arrays = _fake_mnist()
    _write_idx(tmp_path, arrays, gz)
    pool = models.load_mnist(tmp_path)
    np.testing.assert_array_equal(pool.x_train, arrays[0].reshape(60, 784))
    np.testing.assert_array_equal(pool.y_train, arrays[1])
    np.testing.assert_array_equal(pool.x_test, arrays[2].reshape(30, 784))
    np.testing.assert_array_equal(pool.y_test, arrays[3])


def test_npz_and_environment_variable(tmp_path, monkeypatch):
    x, y, xt, yt = _fake_mnist()
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    monkeypatch.setenv(models.MNIST_ENV, str(tmp_path))
    pool = models.load_mnist()
    np.testing.assert_array_equal(pool.x_test, xt.reshape(30, 784))
    data = models.multiclass_task(pool, n_train=20)
    assert data.x_train.shape == (20, 784) and data.x_test.shape == (30, 784)
    assert float(data.x_train.max()) <= 1.0 and np.bincount(np.asarray(data.y_train)).tolist() == [2] * 10


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-5], "truncated"),
        (lambda b: b[:6], "truncated"),
        (lambda b: struct.pack(">I", 1234) + b[4:], "magic number 1234"),
        (lambda b: b + b"\x00", "padded"),
    ],
    ids=["short-data", "short-header", "wrong-magic", "padded"],
)
def test_corrupt_idx_is_one_line_error(tmp_path, damage, message):
    names = _write_idx(tmp_path, _fake_mnist(), gz=False)
    path = tmp_path / names[0]
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(models.DataError, match=message) as err:
        models.load_mnist(tmp_path)
    assert "\n" not in str(err.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(models.DataError, match="does not exist"):
        models.load_mnist(tmp_path / "nowhere")
    with pytest.raises(models.DataError, match="train-images-idx3-ubyte"):
        models.load_mnist(tmp_path)
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(models.DataError, match="not a readable .npz"):
        models.load_mnist(tmp_path)
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 784)))
    with pytest.raises(models.DataError, match="lacks the array"):
        models.load_mnist(tmp_path)
    gz = tmp_path / "broken"
    gz.mkdir()
    names = _write_idx(gz, _fake_mnist(), gz=True)
    blob = (gz / (names[1] + ".gz")).read_bytes()
    (gz / (names[1] + ".gz")).write_bytes(blob[: len(blob) // 2])
    with pytest.raises(models.DataError, match="cannot read"):
        models.load_mnist(gz)


def test_embedded_tasks():
    """The embedded subset: 500 images per digit, the paper's tasks balanced and disjoint from test."""
    pool = models.embedded_mnist()
    assert pool.x_train.shape == (5000, 784) and np.bincount(pool.y_train).tolist() == [500] * 10
    binary = models.binary_task(pool)
    assert binary.x_train.shape == (800, 784) and binary.x_test.shape == (4200, 784)
    assert int(binary.y_train.sum()) == 400 and int(binary.y_test.sum()) == 2100
    assert 0.0 <= float(binary.x_train.min()) and float(binary.x_train.max()) == 1.0
    train_rows = {r.tobytes() for r in np.asarray(binary.x_train)}
    assert not any(r.tobytes() in train_rows for r in np.asarray(binary.x_test)[:500])
    zero_one = models.binary_task(pool, split="0v1")
    assert zero_one.x_test.shape == (200, 784)
    rand = models.binary_task(pool, random_labels=True)
    agree = np.mean(np.asarray(rand.y_test) == np.asarray(binary.y_test))
    assert abs(agree - 0.5) < 0.05  # coin flips: s.e. of the agreement on 4,200 labels is 0.008
    ten = models.multiclass_task(pool)
    assert ten.x_train.shape == (1000, 784) and ten.x_test.shape == (4000, 784)
    assert np.bincount(np.asarray(ten.y_train)).tolist() == [100] * 10
    with pytest.raises(models.DataError, match="unknown binary split"):
        models.binary_task(pool, split="3v8")
