"""Where a fit's rows come from: tensors on the device, 8-bit images kept as bytes, arrays larger than
memory streamed in batches, or a torch ``Dataset``/``DataLoader``.

The trainer owns the order of the rows (a seeded permutation whose generator state is in the
checkpoint, so a resumed run reads the same batches) and each rank's share of a batch; a source only
hands over the rows of each batch, on the device, as floats:

    source.batches([index, index, ...])  → (rows,) for each index, in order (rows: a tuple of tensors)
    source.head(n)                        → the first n rows (the trainer's first call, evaluation)

``uint8`` data are images: kept as bytes (4× less memory than float32, and 4× less to copy to a
GPU) and scaled to [0, 1] when a batch is made. A streamed source reads the next batch on a
background thread while the current step runs, into pinned memory on CUDA, so the copy overlaps too.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from pyro_vae.errors import UserError

Rows = tuple  # of tensors, the examples along dim 0


def as_float(rows: Rows) -> Rows:
    """uint8 tensors (images) → float32 in [0, 1]; other tensors as they are."""
    return tuple(t.float().div_(255.0) if t.dtype == torch.uint8 else t for t in rows)


class Source(ABC):
    """Rows of a data set by index, on ``device``. Subclasses say how they keep and read them."""

    num_rows: int
    device: torch.device

    @abstractmethod
    def read(self, index: torch.Tensor) -> Rows:
        """The rows at ``index``, on the device, as stored (uint8 stays uint8)."""

    def batches(self, indices: Sequence[torch.Tensor]) -> Iterator[Rows]:
        """The rows of each index in ``indices``, in order, as floats on the device."""
        for index in indices:
            yield as_float(self.read(index))

    def head(self, n: int) -> Rows:
        """The first ``n`` rows, as floats on the device."""
        return as_float(self.read(torch.arange(min(n, self.num_rows), device=self.device)))


class Tensors(Source):
    """Tensors moved to the device once; a batch is a view chosen by index (uint8 kept as bytes)."""

    def __init__(self, tensors: Sequence[torch.Tensor], device: torch.device):
        self.tensors = tuple(t.to(device) for t in tensors)
        self.num_rows, self.device = self.tensors[0].shape[0], torch.device(device)

    def read(self, index: torch.Tensor) -> Rows:
        return tuple(t[index] for t in self.tensors)


class Streamed(Source):
    """Rows read on the CPU by ``read_rows(numpy index) -> tuple of CPU tensors`` (a memory-mapped array, a
    torch Dataset), one batch ahead on a background thread, then copied to the device."""

    def __init__(self, read_rows: Callable[[np.ndarray], Rows], num_rows: int, device: torch.device):
        self.read_rows, self.num_rows, self.device = read_rows, num_rows, torch.device(device)
        self.pin = self.device.type == "cuda"

    def _load(self, index: np.ndarray) -> Rows:
        rows = self.read_rows(index)
        if self.pin:
            rows = tuple(t.pin_memory() for t in rows)
        return rows

    def _to_device(self, rows: Rows) -> Rows:
        return tuple(t.to(self.device, non_blocking=self.pin) for t in rows)

    def read(self, index: torch.Tensor) -> Rows:
        return self._to_device(self._load(index.cpu().numpy()))

    def batches(self, indices: Sequence[torch.Tensor]) -> Iterator[Rows]:
        if not indices:
            return
        # the epoch's row numbers reach the CPU in one copy (one host sync an epoch, not one a step)
        indices = np.split(torch.cat(list(indices)).cpu().numpy(), np.cumsum([len(i) for i in indices])[:-1])
        with ThreadPoolExecutor(max_workers=1) as reader:  # numpy and file reads release the GIL
            pending = reader.submit(self._load, indices[0])
            for k in range(len(indices)):
                rows = pending.result()
                if k + 1 < len(indices):
                    pending = reader.submit(self._load, indices[k + 1])
                yield as_float(self._to_device(rows))


def array_reader(arrays: Sequence[np.ndarray]) -> Callable[[np.ndarray], Rows]:
    """Reads rows of (memory-mapped) arrays in increasing file order, then puts them back in the asked order:
    a memory map reads sorted rows with far fewer seeks."""
    def read(index: np.ndarray) -> Rows:
        order = np.argsort(index, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return tuple(torch.from_numpy(np.ascontiguousarray(a[index[order]])[inverse].reshape(len(index), -1)
                                      if a.ndim > 1 else np.ascontiguousarray(a[index[order]])[inverse])
                     for a in arrays)
    return read


def dataset_reader(dataset: torch.utils.data.Dataset, collate: Callable | None = None) -> Callable[[np.ndarray], Rows]:
    """Reads rows of a torch ``Dataset`` (``dataset[i]``: a tensor, or a tuple of them) and collates them."""
    collate = collate or torch.utils.data.default_collate

    def read(index: np.ndarray) -> Rows:
        batch = collate([dataset[int(i)] for i in index])
        return tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)
    return read


def make(data: object, device: torch.device) -> Source:
    """A source for what ``fit`` was given: a tensor or tuple of tensors (on the device), a NumPy array or
    tuple of arrays (``np.load(path, mmap_mode="r")``: streamed), a torch ``Dataset``, or a ``DataLoader``
    (its dataset and ``collate_fn``; the order and the batches are the trainer's)."""
    if isinstance(data, Source):
        return data
    if isinstance(data, FileRows) or isinstance(data, tuple) and data and isinstance(data[0], FileRows):
        if isinstance(data, tuple) and len(data) > 1:
            raise UserError("rows streamed from a file come alone: pass further arrays in memory as a tuple of tensors")
        rows = data[0] if isinstance(data, tuple) else data
        return make_streamed(rows.reader(), len(rows), device)
    if isinstance(data, torch.utils.data.DataLoader):
        return make_streamed(dataset_reader(data.dataset, data.collate_fn), len(data.dataset), device)
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.Tensor):
        if not hasattr(data, "__len__"):
            raise UserError("fit takes a torch Dataset with a length (a map-style dataset), not an IterableDataset: "
                            "the trainer chooses each batch's rows, to shuffle, resume and shard them")
        return make_streamed(dataset_reader(data), len(data), device)
    parts = (data,) if isinstance(data, (torch.Tensor, np.ndarray)) else tuple(data)
    if len(parts) == 1 and isinstance(parts[0], np.memmap) and parts[0].flags.c_contiguous and parts[0].ndim > 1:
        rows = FileRows(parts[0].filename, parts[0].offset, parts[0].dtype, parts[0].shape[1:],
                        np.arange(parts[0].shape[0]))  # read by preadv: a memory map's pages would stay resident
        return make_streamed(rows.reader(), len(rows), device)
    if parts and all(isinstance(p, np.ndarray) for p in parts):
        _check_lengths([p.shape[0] if p.ndim else 0 for p in parts])
        return make_streamed(array_reader(parts), parts[0].shape[0], device)
    if not parts or not all(isinstance(p, torch.Tensor) for p in parts):
        raise UserError("the training data must be a tensor or a tuple of tensors with the examples along dim 0, "
                        "a NumPy array (np.load(path, mmap_mode='r') for one larger than memory), a torch "
                        "Dataset or a DataLoader")
    _check_lengths([p.shape[0] if p.dim() else 0 for p in parts])
    return Tensors(parts, device)


def make_streamed(read_rows: Callable[[np.ndarray], Rows], num_rows: int, device: torch.device) -> Streamed:
    """A :class:`Streamed` source; no rows is a one-line error."""
    if num_rows == 0:
        raise UserError("the training data is empty: nothing to fit")
    return Streamed(read_rows, num_rows, device)


def _check_lengths(lengths: list[int]) -> None:
    if lengths[0] == 0:
        raise UserError("the training data is empty: nothing to fit")
    if any(n != lengths[0] for n in lengths):
        raise UserError(f"data tensors differ in length ({[(n,) for n in lengths]}): rows must line up")


class FileRows:
    """Rows of a ``.npy`` file, read from the file when asked for, never all at once.

    Each run of consecutive rows is one ``os.preadv`` straight into the output array (0.4 ms for 256
    random 28x28 rows once the page cache holds the file, as fast as fancy indexing of a memory map). A
    memory map would not do: every page it touches, and with large page-cache folios much more around
    it, counts in the process's resident memory until unmapped (a 3.2 GB file drove a training run to
    4 GB). It answers like a tensor of float rows where the library reads data: ``shape``, ``len``,
    ``rows[a:b]`` / ``rows[index]`` (float32 on ``device``, ``uint8`` scaled to [0, 1]), ``to(device)``;
    ``fit`` streams it (:class:`Streamed`).
    """

    def __init__(self, path: str, offset: int, dtype: np.dtype, row_shape: tuple, rows: np.ndarray,
                 device: torch.device | str = "cpu"):
        self.path, self.offset, self.dtype, self.row_shape = str(path), offset, np.dtype(dtype), tuple(row_shape)
        self.rows, self.device = rows, torch.device(device)
        self.row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self._fd = None

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "FileRows":
        """All rows of the ``.npy`` at ``path`` (C order), from its header."""
        mapped = np.load(path, mmap_mode="r")
        if not isinstance(mapped, np.memmap) or not mapped.flags.c_contiguous:
            raise UserError(f"{str(path)!r} can't be read row by row: save it in C order with np.save")
        rows = cls(path, mapped.offset, mapped.dtype, mapped.shape[1:], np.arange(mapped.shape[0]))
        del mapped
        return rows

    def subset(self, index: np.ndarray) -> "FileRows":
        """The rows at ``index`` of these rows."""
        return FileRows(self.path, self.offset, self.dtype, self.row_shape, self.rows[index], self.device)

    @property
    def shape(self) -> tuple:
        """(rows, values per row), as a tensor of flattened rows would have."""
        return (len(self.rows), int(np.prod(self.row_shape)))

    def __len__(self) -> int:
        return len(self.rows)

    def to(self, device: torch.device | str) -> "FileRows":
        """The same rows, handed out as tensors on ``device``."""
        return FileRows(self.path, self.offset, self.dtype, self.row_shape, self.rows, device)

    def read(self, index: np.ndarray) -> np.ndarray:
        """The stored values of rows ``index`` (of these rows), shape (len(index), D), in the order asked."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        wanted = self.rows[np.asarray(index, dtype=np.int64)]
        out = np.empty((len(wanted), self.shape[1]), dtype=self.dtype)
        starts = [0, *(np.flatnonzero(np.diff(wanted) != 1) + 1).tolist()]  # runs of consecutive rows: one read each
        for start, end in zip(starts, [*starts[1:], len(wanted)]):
            block = out[start:end]
            want, got = block.nbytes, os.preadv(self._fd, [block], self.offset + int(wanted[start]) * self.row_bytes)
            if got != want:
                raise UserError(f"{self.path!r} ended early: the file is shorter than its header says")
        return out

    def __getitem__(self, key) -> torch.Tensor:
        index = np.arange(len(self.rows))[key.cpu().numpy() if isinstance(key, torch.Tensor) else key]
        values = torch.from_numpy(self.read(np.atleast_1d(index)))
        values = values.float().div_(255.0) if values.dtype == torch.uint8 else values.float()
        return (values if np.ndim(index) else values[0]).to(self.device)

    def reader(self) -> Callable[[np.ndarray], Rows]:
        """For :class:`Streamed`: rows at an index, as stored (uint8 stays bytes until it is on the device)."""
        return lambda index: (torch.from_numpy(self.read(index)),)
