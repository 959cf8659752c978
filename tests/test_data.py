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
    return (
        rng.integers(0, 256, (n_train, 28, 28)),
        np.arange(n_train) % 10,
        rng.integers(0, 256, (n_test, 28, 28)),
        np.arange(n_test) % 10,
    )


def _write_idx(folder, arrays, gz):
    names = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    blobs = [
        _idx_images(arrays[0]),
        _idx_labels(arrays[1]),
        _idx_images(arrays[2]),
        _idx_labels(arrays[3]),
    ]
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
    assert (
        float(data.x_train.max()) <= 1.0
        and np.bincount(np.asarray(data.y_train)).tolist() == [2] * 10
    )


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
    """The embedded subset: 500 images per digit, the paper's tasks balanced and disjoint from
    test."""
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


def _npz(folder, **override):
    x, y, xt, yt = _fake_mnist()
    arrays = dict(x_train=x.astype(np.uint8), y_train=y, x_test=xt.astype(np.uint8), y_test=yt)
    arrays.update(override)
    np.savez(folder / "mnist.npz", **arrays)
    return arrays


def test_float_pixels_in_unit_interval_are_read_as_they_are(tmp_path):
    """Floats in [0, 1] (k/255 in float32, as `x / 255.0` saves them) reach the task unchanged, not
    cast to uint8 (which made 99.4% of them zero) nor rounded to k * float32(1/255), the uint8
    path's pixel (126 of the 256 values differ from k/255 by one unit in the last place)."""
    arrays = _npz(tmp_path)
    as_bytes = models.multiclass_task(models.load_mnist(tmp_path), n_train=20, dtype=np.float32)
    floats = {
        k: (v.astype(np.float32) / np.float32(255) if k.startswith("x") else v)
        for k, v in arrays.items()
    }
    np.savez(tmp_path / "mnist.npz", **floats)
    pool = models.load_mnist(tmp_path)
    assert pool.x_train.dtype == np.float32
    # not a value moved
    np.testing.assert_array_equal(pool.x_train, floats["x_train"].reshape(60, 784))
    data = models.multiclass_task(pool, n_train=20, dtype=np.float32)
    # the same draw's pixels k
    drawn = np.round(np.asarray(as_bytes.x_train) * 255).astype(np.float32)
    # the file's k/255
    np.testing.assert_array_equal(np.asarray(data.x_train), drawn / np.float32(255))
    assert float(np.mean(np.asarray(data.x_train) > 0)) > 0.9  # random pixels: ~1/256 are zero
    np.testing.assert_array_equal(np.asarray(data.y_train), np.asarray(as_bytes.y_train))


def test_integer_pixels_0_255_of_any_integer_type_are_uint8(tmp_path):
    arrays = _npz(tmp_path, x_train=_fake_mnist()[0].astype(np.int64))
    pool = models.load_mnist(tmp_path)
    assert pool.x_train.dtype == np.uint8
    np.testing.assert_array_equal(pool.x_train, arrays["x_train"].reshape(60, 784))


@pytest.mark.parametrize(
    "override, message",
    [
        (
            dict(x_train=np.full((60, 28, 28), 255.0, np.float32)),
            r"x_train pixels must be integers 0-255 or "
            r"floats in \[0, 1\]; found 255.0 \(pixels 0-255 stored as floats",
        ),
        (dict(x_test=np.full((30, 28, 28), -0.5)), r"x_test pixels .*; found -0.5$"),
        (
            dict(x_train=np.where(np.eye(28)[None] > 0, np.nan, 0.5) * np.ones((60, 1, 1))),
            "found nan",
        ),
        (dict(x_train=np.full((60, 28, 28), -3, np.int16)), "x_train pixels .*; found -3$"),
        (dict(x_test=np.full((30, 28, 28), 256, np.int32)), "x_test pixels .*; found 256$"),
        (dict(x_train=np.full((60, 28, 28), "a")), "found values of type <U1"),
        (
            dict(y_train=np.where(np.arange(60) == 13, 100, np.arange(60) % 10)),
            r"labels must be digits 0-9; found 100 in y_train",
        ),
        (
            dict(y_test=np.where(np.arange(30) == 7, -1, 3)),
            r"labels must be digits 0-9; found -1 in y_test",
        ),
        (dict(y_train=np.full(60, 2.5)), r"labels must be digits 0-9; found 2.5 in y_train"),
        (
            dict(y_train=np.eye(10)[np.arange(60) % 10]),
            r"y_train must hold one digit per image .* \(60, 10\)",
        ),
        (dict(x_train=np.zeros((60, 32, 32), np.uint8)), "not a stack of 28x28 images"),
        (dict(y_test=np.arange(29) % 10), "one label per image"),
    ],
    ids=[
        "floats-0-255",
        "negative-floats",
        "nan",
        "negative-ints",
        "ints-over-255",
        "strings",
        "label-100",
        "label-negative",
        "label-fraction",
        "one-hot-labels",
        "32x32",
        "label-count",
    ],
)
def test_anything_else_is_refused_in_one_line_saying_what_was_found(tmp_path, override, message):
    _npz(tmp_path, **override)
    with pytest.raises(models.DataError, match=message) as err:
        models.load_mnist(tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path / "mnist.npz") in str(err.value)


def test_idx_labels_outside_0_9_are_refused(tmp_path):
    x, y, xt, yt = _fake_mnist()
    _write_idx(tmp_path, (x, y, xt, np.where(np.arange(30) == 4, 10, yt)), gz=False)
    with pytest.raises(models.DataError, match="labels must be digits 0-9; found 10 in y_test"):
        models.load_mnist(tmp_path)


def test_a_training_set_the_data_cannot_supply_is_refused_before_any_draw():
    """`check_draw` refuses exactly what the tasks' draws cannot do: the embedded subset holds 500
    of each digit, and its test set is what the draw leaves."""
    pool = models.embedded_mnist()
    models.check_draw(pool, 4990)  # 499 of each digit: one of each left for test
    with pytest.raises(
        models.DataError, match="take all 500 images of digit 0 .* leave none for its test set"
    ):
        models.check_draw(pool, 5000)
    with pytest.raises(
        models.DataError,
        match=r"ask for 10000 images of digit 0; the embedded MNIST subset holds "
        r"500 \(full MNIST: --mnist DIR\)",
    ):
        models.check_draw(pool, 100000)
    models.check_draw(pool, 998, split="0v1")
    with pytest.raises(models.DataError, match="digit 0"):
        models.check_draw(pool, 1000, split="0v1")  # 500 of digit 0 and of digit 1
    full = models.MnistPool(
        pool.x_train, pool.y_train, pool.x_train[:10], pool.y_train[:10], source="mine"
    )
    models.check_draw(full, 5000)  # a separate test split: every training image may be drawn
    with pytest.raises(models.DataError, match="the MNIST in mine holds 500$"):
        models.check_draw(full, 5010)
