"""What happens around the training loop, as callbacks: evaluation, metrics.jsonl, checkpoints, progress, TensorBoard.

A callback sees the :class:`~pyro_vae.train.Trainer` (model, guide, settings, run folder, epoch, step,
history) at six moments; setting ``trainer.stop = True`` ends training after the epoch
(:class:`EarlyStopping` does):

    on_train_start(trainer)                  before the first step (after every check passed)
    on_epoch_start(trainer)                  before each epoch
    on_step_end(trainer)                     after every optimizer step: must not read tensors back
    on_report(trainer, loss)                 ~10 times an epoch, after the NaN check; ``loss`` is the
                                             running −ELBO per example of this epoch (a float)
    on_epoch_end(trainer, metrics)           ``metrics`` is the epoch's dict; a callback may add to it
    on_train_end(trainer)

``fit(..., callbacks=[...])`` adds your own after the built-in ones, which run in this order:
:class:`Evaluation`, :class:`MetricsFile`, :class:`Checkpoints`, :class:`Progress`, :class:`TensorBoard`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from tqdm.auto import tqdm

from pyro_vae import distributed
from pyro_vae.checkpoint import rng_state, set_rng_state
from pyro_vae.errors import UserError
from pyro_vae.settings import Interval


class Trainer(Protocol):
    """What a callback may read of ``pyro_vae.train.Trainer`` (declared here, so that callbacks need not import
    the trainer that imports them)."""

    model: Callable
    guide: Callable
    modules: list
    settings: Any
    run: Any
    optimizer: Any
    epoch: int
    step: int
    steps_in_epoch: int
    current: Any  # the epoch in progress (pyro_vae.train.Epoch)
    history: list
    rank: int
    world: int
    device: torch.device
    evaluating: bool
    stop: bool

    def save_checkpoint(self, mid_epoch: bool = False) -> None:
        """Saves every state the trajectory depends on (all ranks call it)."""

    def due(self, every: Interval, since: float, first_step: int) -> bool:
        """Whether the epoch just ended is one to act on, every ``every``."""


class Callback:
    """Does nothing at every moment; subclass it and override what you need."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Once the program, its parameters and the data passed every check, before the first step."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """Before each epoch's first step (``trainer.epoch`` is the epoch about to run)."""

    def on_step_end(self, trainer: Trainer) -> None:
        """After every optimizer step; reads no tensor back (that would stall a GPU every step)."""

    def on_report(self, trainer: Trainer, loss: float) -> None:
        """About ten times an epoch, after the NaN check; ``loss`` is the epoch's running −ELBO per example."""

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        """After each epoch; ``metrics`` is the epoch's dict, to read or to add to."""

    def on_train_end(self, trainer: Trainer) -> None:
        """When training ends, also when it stops with an error."""


class Evaluation(Callback):
    """ELBO parts per example on the test data and on as many training rows, after the epochs that
    ``eval_every`` picks (``trainer.evaluating``; rank 0).

    ``evaluator(model, guide, data, batch_size) -> dict``; its keys come back as ``train_KEY`` / ``test_KEY``.
    The evaluation draws from a copy of the random state, which is put back afterwards: training then
    draws exactly what it would have drawn without it, whatever the cadence (so a run resumed with more
    epochs, whose ``auto`` cadence differs, still continues the same trajectory, and ``fit`` draws what
    Pyro's own loop draws).
    """

    def __init__(self, evaluator: Callable, train_rows: tuple, test_data: tuple | None, batch_size: int):
        self.evaluator, self.train_rows, self.test_data, self.batch_size = evaluator, train_rows, test_data, batch_size

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        """Adds ``train_*`` and ``test_*`` measures to the epoch's metrics."""
        if trainer.rank != 0 or not trainer.evaluating:
            return
        for m in trainer.modules:
            m.eval()
        state = rng_state()
        try:
            for prefix, rows in (("train", self.train_rows), ("test", self.test_data)):
                if rows:
                    parts = self.evaluator(trainer.model, trainer.guide, rows, self.batch_size)
                    metrics.update({f"{prefix}_{k}": v for k, v in parts.items()})
        finally:
            set_rng_state(state)


class EveryStep(Callback):
    """Calls ``function()`` after every optimizer step: e.g. Pyro's sparse_gamma_def ``clip_params``, which
    clamps parameter values, as its loop does after each ``svi.step``."""

    def __init__(self, function: Callable[[], None]):
        self.function = function

    def on_step_end(self, trainer: Trainer) -> None:
        """Calls the function."""
        self.function()


class EarlyStopping(Callback):
    """Stops training when ``monitor`` (a metric that grows when the fit improves, e.g. ``test_elbo``) has not
    improved by more than ``min_delta`` for ``patience`` measured epochs; the run's checkpoint is then the
    last epoch's. ``best`` and ``best_epoch`` say where it peaked."""

    def __init__(self, monitor: str = "test_elbo", patience: int = 5, min_delta: float = 0.0):
        if patience < 1:
            raise UserError(f"EarlyStopping needs patience >= 1, got {patience}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best, self.best_epoch, self.waited = -float("inf"), None, 0

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        """Compares the epoch's measure with the best so far (epochs without the measure don't count)."""
        if self.monitor not in metrics:
            return
        if metrics[self.monitor] > self.best + self.min_delta:
            self.best, self.best_epoch, self.waited = metrics[self.monitor], trainer.epoch, 0
        else:
            self.waited += 1
            trainer.stop = self.waited >= self.patience


class Announce(Callback):
    """Prints ``text`` once training starts (rank 0), e.g. what was done to the data; nothing with ``quiet``."""

    def __init__(self, text: str, quiet: bool = False):
        self.text, self.quiet = text, quiet

    def on_train_start(self, trainer: Trainer) -> None:
        """Prints the line."""
        if not self.quiet and trainer.rank == 0:
            tqdm.write(self.text)


class MetricsFile(Callback):
    """One line of metrics.jsonl per epoch (rank 0)."""

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        """Appends the epoch's line."""
        if trainer.run is not None and trainer.rank == 0:
            trainer.run.append_metrics(metrics)


class Checkpoints(Callback):
    """checkpoint.pt every N epochs, N steps or N seconds, and after the last epoch (every rank takes part)."""

    def __init__(self, every: Interval):
        self.every, self.saved_at = every, time.perf_counter()

    def on_step_end(self, trainer: Trainer) -> None:
        """Every N steps (``Nsteps``): a mid-epoch checkpoint."""
        if trainer.run is not None and self.every.unit == "steps" and trainer.step % self.every.n == 0:
            trainer.save_checkpoint(mid_epoch=True)

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        """Every N epochs or, at an epoch's end, N seconds after the last one; and after the last epoch."""
        if trainer.run is None or self.every.unit == "steps" and trainer.epoch != trainer.settings.epochs:
            return
        due = trainer.due(self.every, self.saved_at, trainer.current.first_step)
        if self.every.unit == "seconds":  # the ranks' clocks differ: all save if one is due
            due = bool(distributed.all_max(torch.tensor(int(due), device=trainer.device)))
        if due:
            trainer.save_checkpoint()
            self.saved_at = time.perf_counter()


class Progress(Callback):
    """A progress bar per epoch and one line after each evaluated epoch (rank 0; nothing with ``quiet``)."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.bar = quiet, None

    def on_step_end(self, trainer: Trainer) -> None:
        """Advances the bar (opened at an epoch's first step)."""
        if self.quiet or trainer.rank != 0:
            return
        if self.bar is None:
            self.bar = tqdm(total=trainer.steps_in_epoch, desc=f"epoch {trainer.epoch}/{trainer.settings.epochs}",
                            leave=False, dynamic_ncols=True)
        self.bar.update()

    def on_report(self, trainer: Trainer, loss: float) -> None:
        """Shows the running loss beside the bar."""
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4g}")

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        """Closes the bar and prints the epoch's line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.quiet and trainer.rank == 0 and trainer.evaluating:  # a line per evaluation, not per epoch
            tqdm.write(summary(metrics, trainer.settings.epochs))


def summary(m: dict, epochs: int) -> str:
    """The line printed after an epoch; loss is −ELBO per example, so it sits near −train_elbo."""
    text = f"epoch {m['epoch']}/{epochs}  loss (−ELBO/example) {m['train_loss']:.4g}"
    for key in ("train_elbo", "test_elbo", "test_reconstruction", "test_kl"):
        if key in m:
            text += f"  {key} {m[key]:.4g}"
    return text + f"  ({m['seconds']:.1f}s)"


class TensorBoard(Callback):
    """TensorBoard event files: the running loss at each report, every number of the epoch's metrics (rank 0).

    Needs the ``tensorboard`` package: ``pip install "pyro-vae[tensorboard]"``.
    """

    def __init__(self, log_dir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--tensorboard needs the tensorboard package: pip install 'pyro-vae[tensorboard]'") from None
        self.log_dir, self.writer_class, self.writer = Path(log_dir), SummaryWriter, None

    def _writer(self, trainer: Trainer):
        if self.writer is None and trainer.rank == 0:
            self.writer = self.writer_class(str(self.log_dir), purge_step=trainer.step + 1)
        return self.writer

    def on_report(self, trainer: Trainer, loss: float) -> None:
        """Writes ``train/loss_step`` at the current step."""
        if self._writer(trainer) is not None:
            self.writer.add_scalar("train/loss_step", loss, trainer.step)

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        """Writes every number of the epoch's metrics, ``train_elbo`` as ``train/elbo`` and so on."""
        if self._writer(trainer) is None:
            return
        for key, value in metrics.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)):
                self.writer.add_scalar(key.replace("_", "/", 1), value, trainer.epoch)
        self.writer.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        """Closes the event file."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
