"""Atomic checkpoints: states only (no pickled objects), written to a temp file and renamed."""

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
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike) -> dict:
    """Reads a checkpoint on the CPU; a missing, truncated or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {str(path)!r}: train a run first (pyro-vae train --out DIR)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"checkpoint {str(path)!r} is corrupt or truncated ({type(error).__name__}); "
                        "delete it and retrain, or resume from an earlier copy") from None
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"{str(path)!r} is not a pyro-vae checkpoint")
    return state


def rng_state(data_generator: torch.Generator | None = None) -> dict:
    """Every random state a run draws from, so a resumed run continues the same trajectory."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    # numpy's key as a tensor keeps the checkpoint loadable with torch.load(weights_only=True)
    state = {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(key.astype(np.int64)), pos,
                                                       has_gauss, gauss], "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if data_generator is not None:
        state["data"] = data_generator.get_state()
    return state


def set_rng_state(state: dict, data_generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if data_generator is not None and "data" in state:
        data_generator.set_state(state["data"])


def load_into(modules: dict, state: dict, path) -> None:
    """``module.load_state_dict`` for each named module, with a clear error on a config mismatch."""
    for name, module in modules.items():
        if module is None or name not in state:
            continue
        try:
            module.load_state_dict(state[name])
        except (RuntimeError, ValueError, KeyError) as error:
            first = str(error).strip().splitlines()[0]
            raise UserError(f"checkpoint {str(path)!r} was made by a different {name} configuration "
                            f"({first[:160]}); use the run's own config.json or start a new --out") from None
