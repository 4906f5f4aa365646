"""Atomic checkpoints: states only (no pickled objects), written to a temp file and renamed.

A checkpoint is a dict that ``torch.load(weights_only=True)`` reads back::

    model, guide, optimizer, scheduler   state_dicts
    rng          one entry per rank: torch, numpy, Python (and CUDA) generator states
    data_order   the data-order generator's state before the permutation of epoch ``epoch + 1``
    epoch, step  completed epochs, optimizer steps taken
    partial      None, or how far into epoch ``epoch + 1`` the run was: {"rows", "total"}
    metrics      the per-epoch metrics so far (metrics.jsonl is rewritten from them on resume)
    config       the run's config.json
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from pyro_vae.errors import UserError


def save(state: dict, path: str | os.PathLike) -> None:
    """Writes ``state`` so that a crash at any moment leaves the previous file intact."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a run folder is meant to be shared, so the checkpoint gets
        # the permissions any new file gets here: 0666 less the umask, as for config.json
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Deletes the half-written temp files that a process killed during :func:`save` leaves behind."""
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """A small text file (config, metrics, tables) written to a temp file, then renamed into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> dict:
    """Reads a checkpoint on the CPU; a missing, truncated or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {str(path)!r}: train a run first (pyro-vae train --out DIR)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"checkpoint {str(path)!r} is corrupt or truncated ({type(error).__name__}): copy an "
                        "earlier one over it (--keep-last N keeps them in checkpoints/) or train into a new --out"
                        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"{str(path)!r} is not a pyro-vae checkpoint")
    return state


def rng_state() -> dict:
    """This process's random states (the ones Pyro, NumPy and Python draw from)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    # numpy's key as a tensor keeps the checkpoint loadable with torch.load(weights_only=True)
    state = {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(key.astype(np.int64)), pos,
                                                       has_gauss, gauss], "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restores the random states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_into(modules: dict, state: dict, path) -> None:
    """``module.load_state_dict`` for each named module, with a clear error on a config mismatch."""
    for name, module in modules.items():
        if module is None or state.get(name) is None:
            continue
        try:
            module.load_state_dict(state[name])
        except (RuntimeError, ValueError, KeyError) as error:
            lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
            detail = lines[1] if len(lines) > 1 else lines[0] if lines else type(error).__name__
            raise UserError(f"checkpoint {str(path)!r} was made by a different {name} configuration "
                            f"({detail[:200]}); use the run's own config.json or start a new --out") from None
