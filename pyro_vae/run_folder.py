"""A run folder, the unit a user shares, and the one place that reads and writes it::

    runs/NAME/config.json      what rebuilds model and guide (``runs.build``), the data's name, the settings
    runs/NAME/metrics.jsonl    one JSON line per epoch
    runs/NAME/checkpoint.pt    states only (``torch.load(weights_only=True)``): see ``pyro_vae.checkpoint``
    runs/NAME/checkpoints/     the last N checkpoints, with ``keep_last`` N > 1
    runs/NAME/figures/         PNGs drawn from the checkpoint
    runs/NAME/tensorboard/     event files, with ``tensorboard=...``

Every write goes to a temporary file that is then renamed, so a crash leaves the previous file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pyro_vae import checkpoint as ckpt
from pyro_vae.errors import UserError

CONFIG, METRICS, CHECKPOINT = "config.json", "metrics.jsonl", "checkpoint.pt"
# what a checkpoint must hold for --resume to continue the same trajectory
RESUMABLE = {"rng", "data_order", "epoch", "step", "partial", "metrics", "optimizer"}


class RunFolder:
    """``runs/NAME/``: its config, metrics, checkpoints and figures."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.created = False  # True when ``prepare`` made the folder: a failed first run removes it

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def figures(self) -> Path:
        """The folder of the run's PNGs."""
        return self.path / "figures"

    @property
    def checkpoint_path(self) -> Path:
        """checkpoint.pt, the newest checkpoint."""
        return self.path / CHECKPOINT

    def has_checkpoint(self) -> bool:
        """Whether a checkpoint has been written."""
        return self.checkpoint_path.is_file()

    # --- starting a run -------------------------------------------------------------------------
    def prepare(self, resume: bool, overwrite: bool) -> dict | None:
        """Checks the folder for a new run (or a resumed one) and makes it ready; on resume, returns the checkpoint."""
        if resume:
            if not self.has_checkpoint():
                raise UserError(f"--resume: {str(self.path)!r} is not a run folder (no {CHECKPOINT}); "
                                "give the --out of an earlier run")
            state = self.load_checkpoint()
            missing = RESUMABLE - set(state)
            if missing:
                raise UserError(f"--resume: {str(self.checkpoint_path)!r} lacks {', '.join(sorted(missing))} "
                                "(written by another version?); start a new --out")
            ckpt.remove_stale_temporaries(self.path)  # a save cut short by a kill
            return state
        if self.has_checkpoint() and not overwrite:
            raise UserError(f"{str(self.path)!r} already holds a run: pass --resume to continue it, "
                            "--overwrite to replace it, or choose another --out")
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {str(self.path)!r} is a file, not a folder")
        self.created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        for name in (METRICS, CHECKPOINT):
            (self.path / name).unlink(missing_ok=True)
        ckpt.remove_stale_temporaries(self.path)
        shutil.rmtree(self.path / "checkpoints", ignore_errors=True)
        return None

    def discard_if_new(self) -> None:
        """After a failed first run: no half-made run folder is left behind."""
        if self.created and not self.has_checkpoint():
            shutil.rmtree(self.path, ignore_errors=True)

    # --- config and metrics ---------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        """config.json, atomically."""
        ckpt.write_text(self.path / CONFIG, json.dumps(config, indent=2) + "\n")

    def config(self) -> dict:
        """config.json, or a one-line error saying why it can't be read."""
        path = self.path / CONFIG
        if not path.is_file():
            raise UserError(f"{str(self.path)!r} is not a run folder (no {CONFIG}): give the --out of a training run")
        try:
            config = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{str(path)!r} is not valid JSON ({type(error).__name__}); the run folder is damaged, "
                            "start a new --out") from None
        if not isinstance(config, dict):
            raise UserError(f"{str(path)!r} is not a pyro-vae config; start a new --out")
        return config

    def append_metrics(self, row: dict) -> None:
        """One epoch's line at the end of metrics.jsonl."""
        with open(self.path / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")

    def write_metrics(self, rows: list[dict]) -> None:
        """metrics.jsonl anew from ``rows`` (on resume: the lines of epochs after the checkpoint go)."""
        ckpt.write_text(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in rows))

    def metrics(self) -> list[dict]:
        """The per-epoch metrics so far."""
        path = self.path / METRICS
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    # --- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self, state: dict, epoch: int, step: int, keep_last: int = 1) -> None:
        """checkpoint.pt, atomically; with ``keep_last`` > 1 also a copy under checkpoints/, the oldest removed."""
        ckpt.save(state, self.checkpoint_path)
        if keep_last > 1:
            folder = self.path / "checkpoints"
            folder.mkdir(exist_ok=True)
            name = f"epoch-{epoch:04d}-step-{step:08d}.pt"  # the epoch in progress; sorts by time
            shutil.copyfile(self.checkpoint_path, folder / f".{name}.tmp")
            (folder / f".{name}.tmp").replace(folder / name)
            for old in sorted(folder.glob("epoch-*.pt"))[:-keep_last]:
                old.unlink()

    def load_checkpoint(self) -> dict:
        """checkpoint.pt's states, on the CPU; a damaged file is a one-line error."""
        return ckpt.load(self.checkpoint_path)

    def last_good(self) -> str:
        """Where the last good state is, for a message about a run that stopped."""
        if self.has_checkpoint():
            return f"the last good checkpoint, {self.checkpoint_path}, is left as it was (continue with --resume)"
        return "no checkpoint had been written"
