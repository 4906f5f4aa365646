"""SVI for any Pyro model/guide pair: ``fit(model, guide, data)``.

The trainer knows nothing about VAEs. It takes

- ``model(*batch)`` and ``guide(*batch)``: Pyro programs in any idiom (``nn.Module``, ``PyroModule``,
  an autoguide, a bound method calling ``pyro.module``, a function calling ``pyro.param``), whose
  per-example sites live in ``pyro.plate("data", ...)``; ``batch`` holds the rows of ``data`` on the device;
- ``data``: a tensor or a tuple of tensors with the examples along dim 0 (``uint8`` images kept as bytes),
  a NumPy array (memory-mapped: streamed in batches), a torch ``Dataset`` or ``DataLoader``
  (``pyro_vae.sources``), or a ``pyro_vae.data.Dataset``;
- an objective: any Pyro ELBO (default ``pyro_vae.elbos.Trace_ELBO()``), used as ``objective(model, guide)``,
  an ``nn.Module`` whose output is the loss, minimized by a ``torch.optim`` optimizer.

A minibatch's sites in the data plate are scaled by N / rows in the batch (:class:`DataScale`), so the loss
estimates the whole data set's −ELBO and global latents count once. Under ``torchrun`` each rank takes
its shard of every global batch and the gradients are averaged; rank 0 alone writes the run folder.
A checkpoint holds every state the trajectory depends on, so ``resume=True`` continues it exactly,
also from the middle of an epoch. Evaluation, metrics, checkpoints and progress are callbacks
(``pyro_vae.callbacks``).
"""

from __future__ import annotations

import contextlib
import functools
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from torch import nn

import pyro

from pyro_vae import callbacks as cb
from pyro_vae import checkpoint as ckpt
from pyro_vae import distributed, optimizers, parameters, sources
from pyro_vae.errors import UserError
from pyro_vae.evaluate import elbo_parts
from pyro_vae.handlers import DataScale
from pyro_vae.objectives import Objective, for_program
from pyro_vae.run_folder import RunFolder
from pyro_vae.settings import TrainingSettings, interval

Data = torch.Tensor | Sequence[torch.Tensor] | np.ndarray | torch.utils.data.Dataset | torch.utils.data.DataLoader

if TYPE_CHECKING:
    from pyro_vae.data import Dataset


class ScaledLoss(nn.Module):
    """The objective module (e.g. ``Trace_ELBO()(model, guide)``) under :class:`DataScale`.

    ``num_data`` is the number of rows the batch stands for: N in one process. Under DDP a rank's
    shard of b rows out of a global batch of B is scaled by world·N/B (not N/b), so the average of
    the ranks' gradients is the one-process gradient of the global batch even when shards differ in size.
    """

    def __init__(self, elbo_module: nn.Module, num_data: int, plate: str = "data"):
        super().__init__()
        self.elbo_module, self.num_data, self.plate = elbo_module, num_data, plate

    def forward(self, *batch, num_data: float | None = None):
        rows = batch[0].shape[0]  # the rows passed, not the plate's declared size (it may have none)
        with DataScale(self.num_data if num_data is None else num_data, rows, self.plate):
            return self.elbo_module(*batch)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present; an explicit ``cuda`` without a GPU is an error, not a fallback."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device} was asked for, but no CUDA GPU is available here: "
                            "use --device cpu (or auto to pick a GPU when there is one)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
    return device


def fit(model: Callable, guide: Callable, data: Data | Dataset, *, test_data: Data | None = None,
        objective: pyro.infer.ELBO | None = None, settings: TrainingSettings | None = None,
        out: str | Path | None = None, resume: bool = False, overwrite: bool = False, config: dict | None = None,
        optimizer: Callable | pyro.optim.PyroOptim | None = None, scheduler: Callable | None = None,
        evaluator: Callable | None = elbo_parts, transform: Callable | None = None,
        callbacks: Sequence[cb.Callback] = (), quiet: bool = False, **options) -> list[dict]:
    """Maximizes the ELBO of ``model``/``guide`` on ``data`` by minibatch SVI; returns per-epoch metrics.

    Args:
        data, test_data: a tensor or a tuple of tensors with the examples along dim 0 (``uint8`` images
            are kept as bytes and scaled to [0, 1] per batch), a NumPy array or tuple of arrays
            (``np.load(path, mmap_mode="r")``: read batch by batch, for data larger than memory), a torch
            ``Dataset``, or a ``DataLoader`` (its dataset and ``collate_fn``; its ``batch_size`` unless
            ``batch_size=`` is given). Each batch is passed as ``model(*rows)`` and ``guide(*rows)``. A
            ``pyro_vae.data.Dataset`` gives both (``.train``, ``.test``) and its name to config.json.
        objective: a Pyro ELBO (``Trace_ELBO()``, ``TraceMeanField_ELBO()``, ``TraceEnum_ELBO(...)``, ...);
            default ``Trace_ELBO``, or ``TraceEnum_ELBO`` for a program with sites marked for enumeration.
        settings, **options: a :class:`~pyro_vae.settings.TrainingSettings` and/or its fields as keywords
            (``epochs``, ``batch_size``, ``lr``, ``optimizer``, ``clip_norm``, ``seed``, ``device``,
            ``eval_every``, ``checkpoint_every``, ``keep_last``, ``eval_batch_size``, ``plate``,
            ``tensorboard``); each default is defined there. ``seed`` fixes the order of the rows and the
            draws of training; the networks' initial weights were drawn when the caller built them (seed
            before building, as ``pyro-vae train`` does, for a run that repeats).
        out: a run folder for ``config.json``, ``metrics.jsonl`` and ``checkpoint.pt``.
        resume: continue the run in ``out`` from its checkpoint (the same trajectory: RNG states too).
        config: what config.json records beside the settings, e.g. ``runs.build``'s config, so that
            ``pyro-vae evaluate`` and ``pyro_vae.load`` can rebuild the model.
        optimizer: a ``pyro.optim`` optimizer or scheduler (``pyro.optim.ClippedAdam({...})``, as
            ``pyro.infer.SVI`` takes it), or ``params -> torch.optim.Optimizer``; default ``--optimizer``
            with ``lr`` (Adam, fused where torch has it).
        scheduler: ``optimizer -> LRScheduler``, stepped once per epoch (``ReduceLROnPlateau``: with the
            epoch's loss).
        evaluator: ``(model, guide, data, batch_size) -> dict`` of per-example measures, run on the test
            data and as many training rows (at most 10,000 of each) after the epochs ``eval_every`` picks;
            None skips it.
        transform: ``batch -> batch`` applied to every training batch on the device (e.g. dynamic binarization).
        callbacks: more :class:`~pyro_vae.callbacks.Callback` s, run after the built-in ones.

    TrainingSettings continues from the program's current parameters: module weights, and ``pyro.param`` values
    already in Pyro's param store (``pyro.clear_param_store()`` starts over, as Pyro's examples do).
    Metrics are ELBO terms per example, in nats: ``elbo = reconstruction − kl``; ``train_loss`` is the
    running −ELBO per example. If the loss (or, with ``clip_norm``, the gradient norm) becomes NaN/inf,
    training stops with a :class:`UserError` and the last good checkpoint is left as it was.
    """
    if isinstance(data, torch.utils.data.DataLoader) and "batch_size" not in options and settings is None \
            and data.batch_size is not None:
        options["batch_size"] = data.batch_size
    settings = (settings or TrainingSettings()).replace(**options)
    if hasattr(data, "train") and hasattr(data, "test"):  # a pyro_vae.data.Dataset
        config = {"dataset": data.name, **(config or {"model": None})}
        data, test_data = data.train_rows, data.test_rows if test_data is None else test_data
    distributed.init_from_env()
    run = RunFolder(out) if out is not None else None
    if resume and run is None:
        raise UserError("--resume needs --out, the run folder to continue")
    state = distributed.from_rank0(lambda: run.prepare(resume, overwrite) if run is not None else None)
    try:
        with warnings.catch_warnings(), pyro.validation_enabled(False):
            # Pyro warns of a NaN loss on every step; the guard below stops the run with one line instead
            warnings.filterwarnings("ignore", message="Encountered NaN", category=UserWarning)
            trainer = Trainer(model, guide, data, test_data=test_data, objective=objective, settings=settings,
                              run=run, config=config, optimizer=optimizer, scheduler=scheduler, evaluator=evaluator,
                              transform=transform, callbacks=callbacks, quiet=quiet, resuming=state is not None)
            if state is not None:
                trainer.load_state_dict(state)
            return trainer.loop()
    except BaseException:
        if run is not None and distributed.rank_and_world()[0] == 0:
            run.discard_if_new()
        raise


class Epoch:
    """The epoch in progress: its batches, each step's loss (and gradient norm) kept on the device, the rows done.

    A step only copies its loss here; weighting, summing and the NaN check wait for the ~10 host syncs
    per epoch. ``carried`` is the loss sum of a resumed epoch's steps before the checkpoint.
    """

    def __init__(self, number: int, batches: list[torch.Tensor], num_data: int, world: int, first_step: int,
                 device: torch.device, clip: bool, rows: int = 0, carried: torch.Tensor | None = None):
        self.number, self.batches, self.first_step = number, batches, first_step
        self.rows, self.done = rows, 0
        self.carried = carried if carried is not None else torch.zeros((), device=device)
        self.losses = torch.zeros(len(batches), device=device)
        self.norms = torch.zeros(len(batches), device=device) if clip else None
        self.weights = torch.tensor([b.shape[0] / (world * num_data) for b in batches], device=device)

    def record(self, i: int, loss: torch.Tensor, norm: torch.Tensor | None, rows: int) -> None:
        """Step ``i``'s loss (and gradient norm): copied on the device, no host sync."""
        self.losses[i] = loss.detach()
        if self.norms is not None:
            self.norms[i] = norm
        self.rows += rows
        self.done = i + 1

    def summed(self) -> torch.Tensor:
        """This rank's share of the loss summed over the epoch so far (a tensor: no host sync)."""
        return self.carried + (self.losses[:self.done] * self.weights[:self.done]).sum()

    def first_bad_step(self) -> int | None:
        """The first step (counted over the run) whose loss or gradient norm is NaN/inf, over all ranks; None."""
        n = self.done
        if n == 0:  # a resume at the very end of an epoch: the same on every rank
            return None
        ok = torch.isfinite(self.losses[:n]) if self.norms is None else \
            torch.isfinite(self.losses[:n]) & torch.isfinite(self.norms[:n])
        bad = int(distributed.all_max(torch.where(ok.all(), -1, (~ok).long().argmax() + self.first_step)))
        return None if bad < 0 else bad


CHECKPOINT_VERSION = 2  # 1: the same keys without "version" (runs made before it was written)


class Trainer:
    """One fit: the programs, their parameters and optimizer, the data source, and where the loop is.

    Callbacks read its attributes: ``model``, ``guide``, ``modules``, ``settings``, ``run`` (a
    :class:`~pyro_vae.run_folder.RunFolder` or None), ``optimizer``, ``epoch``, ``step``, ``current``
    (the :class:`Epoch` in progress), ``steps_in_epoch``, ``history``, ``rank``, ``world``, ``device``,
    ``evaluating`` (whether the epoch that just ended is measured). A callback sets ``stop = True`` to end
    training after the current epoch (:class:`~pyro_vae.callbacks.EarlyStopping`).
    """

    def __init__(self, model, guide, data, *, test_data=None, objective=None, settings: TrainingSettings | None = None,
                 run: RunFolder | None = None, config: dict | None = None, optimizer=None, scheduler=None,
                 evaluator: Callable | None = elbo_parts, transform: Callable | None = None,
                 callbacks: Sequence[cb.Callback] = (), quiet: bool = False, resuming: bool = False):
        settings = settings or TrainingSettings()
        self.rank, self.world = distributed.rank_and_world()
        self.model, self.guide, self.settings, self.run = model, guide, settings, run
        self.device = distributed.local_device(resolve_device(settings.device))
        self.every = interval(settings.checkpoint_every).in_epochs(settings.epochs)
        self.eval_every = interval(settings.eval_every, "eval_every").in_epochs(settings.epochs)
        self.source = sources.make(data, self.device)  # tensors move to the device once; streams stay where they are
        self.num_data = self.source.num_rows
        _check_batch_size(settings, self.num_data, self.world)
        # config.json: what rebuilds the model ("model": None says nothing can: fit was given no config)
        self.config = None if config is None and run is None else \
            {**(config if config is not None else {"model": None}), **settings.to_dict()}
        self.transform = transform
        self.modules = parameters.owners(model, guide)
        self.order = torch.Generator(device=self.device)  # the data order: the same on every rank
        self.order.manual_seed(settings.seed)
        self.order_state = self.order.get_state()
        pyro.set_rng_seed(settings.seed + self.rank)  # the noise, and lazily made parameters' initial values
        if resuming:  # the checkpoint holds every pyro.param value: none may come from an earlier program
            pyro.clear_param_store()
        first = self.source.head(min(settings.batch_size, self.num_data))
        self.params, self.param_names, self.layout = parameters.initialize(model, guide, first, self.device,
                                                                           self.num_data, settings.plate)
        self.layout.check_minibatches(settings.batch_size, self.num_data)
        self.objective = for_program(objective, self.layout.enumerated, self.layout.max_plate_nesting)
        self._record_objective()
        self.loss_module = ScaledLoss(self.objective(model, guide), self.num_data, settings.plate)
        self.optimizer, self.scheduler, self.default_lr = self._optimizer(optimizer, scheduler)
        self.epoch = self.step = self.steps_in_epoch = 0
        self.current: Epoch | None = None
        self.resumed_position: dict | None = None
        self.evaluating, self.stop, self.last_evaluated = False, False, time.perf_counter()
        self.history: list[dict] = []
        test = sources.make(test_data, self.device) if test_data is not None and not _empty(test_data) else None
        if evaluator is elbo_parts:  # the data plate may have another name (--plate documents)
            evaluator = functools.partial(elbo_parts, plate=settings.plate)
        self.callbacks = [*([self._evaluation(evaluator, test)] if evaluator else []),
                          cb.MetricsFile(), cb.Checkpoints(self.every), cb.Progress(quiet),
                          *([cb.TensorBoard(settings.tensorboard)] if settings.tensorboard else []), *callbacks]

    def _record_objective(self) -> None:
        """config.json names the objective trained (``auto`` made concrete) and the plate nesting it was given."""
        if self.config is None:
            return
        inner = getattr(self.objective, "elbo", self.objective)
        if self.config.get("elbo") == "auto" and isinstance(self.objective, Objective):
            self.config["elbo"] = self.objective.name
        self.config["objective"] = type(inner).__name__
        if self.layout.enumerated:
            self.config["max_plate_nesting"] = self.layout.max_plate_nesting

    def _optimizer(self, optimizer, scheduler):
        """(optimizer, scheduler, whether the lr is the settings' own): ``fit``'s optimizer (a ``pyro.optim``
        one or ``params -> torch optimizer``), else ``--optimizer`` with ``--lr``."""
        from_settings = optimizer is None
        if from_settings:
            optimizer = optimizers.named(self.settings.optimizer, self.settings.lr,
                                         self.settings.clip_norm if self.settings.optimizer == "clipped-adam" else None)
        if isinstance(scheduler, pyro.optim.PyroOptim):
            raise UserError("a pyro.optim scheduler is the optimizer itself, as for pyro.infer.SVI: pass it as "
                            "fit(optimizer=...), not scheduler=")
        made = optimizers.make(optimizer, self.params)
        self.clips_itself = from_settings and self.settings.optimizer == "clipped-adam"
        return made, scheduler(made) if scheduler else None, from_settings and scheduler is None

    def _evaluation(self, evaluator, test: sources.Source | None) -> cb.Evaluation:
        """The evaluation, on rows laid out as the program needs them: at most 10,000 test rows and as many
        training rows; a program with a parameter per row, or observations outside the data plate, is
        measured on all its rows at once (in order), and one with a parameter per row has no test rows."""
        whole = bool(self.layout.per_row or self.layout.outside)
        test_rows = test.head(EVALUATED_ROWS) if test is not None else None
        rows = test_rows[0].shape[0] if test_rows else min(self.num_data, EVALUATED_ROWS)
        train_rows = self.source.head(self.num_data if whole else rows)
        if self.layout.per_row and not self.layout.subsampled:
            test_rows = None
        size = max(self.num_data, rows) if whole else self.settings.eval_batch_size
        return cb.Evaluation(evaluator, train_rows, test_rows, size)

    # --- the loop -------------------------------------------------------------------------------
    def loop(self) -> list[dict]:
        """Trains from the start, or from the loaded checkpoint, to the last epoch (or a callback's stop);
        returns the metrics."""
        distributed.broadcast_(self.params)  # every rank starts from rank 0's parameters
        if self.run is not None and self.rank == 0:
            if self.resumed_position is not None or self.history:
                self.run.write_metrics(self.history)  # lines of epochs after the checkpoint (a killed run) go
            if self.config is not None:
                self.run.write_config(self.config)
        for callback in self.callbacks:
            callback.on_train_start(self)
        try:
            while self.epoch < self.settings.epochs and not self.stop:
                self.epoch += 1
                self._epoch()
            if self.stop and self.run is not None and self.epoch < self.settings.epochs:
                self.save_checkpoint()  # stopped early: the run ends here, and says so in its checkpoint
        finally:
            for callback in self.callbacks:
                callback.on_train_end(self)
        return self.history

    def _epoch(self) -> None:
        if hasattr(self.objective, "set_epoch"):
            self.objective.set_epoch(self.epoch)  # e.g. KL warm-up schedules
        for callback in self.callbacks:
            callback.on_epoch_start(self)
        started = time.perf_counter()
        self.order_state = self.order.get_state()  # a checkpoint within this epoch redraws its permutation from here
        # the full data in one batch keeps its rows in order, as Pyro's loop does
        perm = torch.arange(self.num_data, device=self.device) if self.settings.batch_size >= self.num_data else \
            torch.randperm(self.num_data, generator=self.order, device=self.device)
        position, self.resumed_position = self.resumed_position, None
        done = position["rows"] if position else 0
        # this rank's share of the summed loss (resuming mid-epoch: rank 0 carries the sum of the steps before)
        carried = position["total"].to(self.device) * (self.rank == 0) if position else None
        batches = _global_batches(perm[done:], self.settings.batch_size, self.world)
        clip = bool(self.settings.clip_norm) and not self.clips_itself  # ClippedAdam clips each parameter itself
        self.current = Epoch(self.epoch, batches, self.num_data, self.world, self.step + 1, self.device, clip,
                             done, carried)
        self.steps_in_epoch = len(batches)
        report_every = max(1, len(batches) // 10)
        for m in self.modules:
            m.train()
        shards = [idx[self.rank::self.world] if self.world > 1 else idx for idx in batches]  # this rank's rows
        for i, batch in enumerate(self.source.batches(shards)):
            self._step(i, batches[i], batch)
            if (i + 1) % report_every == 0 or i + 1 == len(batches):
                self.check_finite()  # the only host syncs: ~10 per epoch
                loss = float(self.current.summed()) * self.world / self.current.rows  # rank 0's estimate
                for callback in self.callbacks:
                    callback.on_report(self, loss)
        self.check_finite()
        train_loss = float(distributed.all_sum(self.current.summed()) / self.num_data)
        self._step_schedules(train_loss)
        metrics = {"epoch": self.epoch, "step": self.step, "train_loss": train_loss,
                   "lr": optimizers.learning_rate(self.optimizer), "seconds": time.perf_counter() - started}
        self.evaluating = self.due(self.eval_every, self.last_evaluated, first_step=self.current.first_step)
        if self.evaluating:
            self.last_evaluated = time.perf_counter()
        self.history.append(metrics)
        for callback in self.callbacks:
            callback.on_epoch_end(self, metrics)

    def _step(self, i: int, idx: torch.Tensor, batch: tuple) -> None:
        """One SVI step on this rank's ``batch`` of the global batch ``idx``."""
        rows = batch[0].shape[0]
        # Pyro's shape and support checks catch modelling bugs on the first step; later they would
        # only cost a host sync per step (fit runs with validation off)
        with pyro.validation_enabled() if self.step == 0 else contextlib.nullcontext():
            loss = self.loss_module(*(self.transform(batch) if self.transform else batch),
                                    num_data=self.num_data * self.world * rows / idx.shape[0])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients_(self.params)
        norm = nn.utils.clip_grad_norm_(self.params, self.settings.clip_norm) if self.current.norms is not None \
            else None
        self.optimizer.step()
        self.step += 1
        self.current.record(i, loss, norm, idx.shape[0])
        for callback in self.callbacks:
            callback.on_step_end(self)

    def due(self, every, since: float, first_step: int) -> bool:
        """Whether the epoch just ended is one to act on, every ``every`` (an Interval), also the last epoch;
        ``since``: when it last acted (for seconds); ``first_step``: this epoch's first step (for steps)."""
        if self.epoch == self.settings.epochs:
            return True
        if every.unit == "epochs":
            return self.epoch % every.n == 0
        if every.unit == "steps":  # a multiple of n steps was passed during this epoch
            return self.step // every.n > (first_step - 1) // every.n
        return time.perf_counter() - since >= every.n

    def _step_schedules(self, loss: float) -> None:
        """Once per epoch: ``scheduler`` (``ReduceLROnPlateau`` given the epoch's loss), or a pyro.optim scheduler's."""
        if isinstance(self.optimizer, optimizers.PyroOptimizer):
            self.optimizer.step_schedules(loss)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(loss)
        elif self.scheduler is not None:
            self.scheduler.step()

    def check_finite(self) -> None:
        """Stops with one line if a loss (or gradient norm) of this epoch's steps so far is NaN/inf."""
        bad = self.current.first_bad_step() if self.current is not None else None
        if bad is not None:
            raise UserError(f"training diverged: the loss or gradient became NaN/inf at step {bad}. Likely causes: "
                            "a learning rate too high (try --lr 1e-4 or --clip-norm 10), c too small, or data "
                            f"outside [0, 1] for a Bernoulli likelihood; {self._last_good()}")

    # --- checkpoints ----------------------------------------------------------------------------
    def state_dict(self, mid_epoch: bool = False) -> dict:
        """Every state the trajectory depends on, as a checkpoint (version ``CHECKPOINT_VERSION``): the
        program's parameters, optimizer, scheduler, every rank's RNG states, the data order's generator,
        the epoch and step, the position within an epoch (``mid_epoch``), the metrics and the config.
        All ranks call it (it gathers); rank 0's return value is the one to save."""
        # mid-epoch: the epoch in progress is redone on resume from its permutation, past the rows done
        partial = {"rows": self.current.rows, "total": distributed.all_sum(self.current.summed()).cpu()} \
            if mid_epoch else None
        return {"version": CHECKPOINT_VERSION, **parameters.state(self.model, self.guide, self.param_names),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "rng": distributed.all_gather(ckpt.rng_state()),
                "data_order": self.order_state if mid_epoch else self.order.get_state(),
                "epoch": self.epoch - mid_epoch, "step": self.step, "partial": partial,
                "metrics": self.history, "config": self.config}

    def load_state_dict(self, state: dict) -> None:
        """Loads a checkpoint (any version up to ``CHECKPOINT_VERSION``) into parameters, optimizer, scheduler,
        RNGs and the loop's position; a later one is a one-line error."""
        path = self.run.checkpoint_path if self.run is not None else "the checkpoint"
        if state.get("version", 1) > CHECKPOINT_VERSION:
            raise UserError(f"checkpoint {str(path)!r} was written by a newer pyro-vae (format "
                            f"{state['version']}, this one reads up to {CHECKPOINT_VERSION}): upgrade pyro-vae")
        parameters.load_state(self.model, self.guide, state, path)
        ckpt.load_into({"optimizer": self.optimizer, "scheduler": self.scheduler}, state, path)
        rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        if self.rank < len(rngs):
            ckpt.set_rng_state(rngs[self.rank])  # a different number of ranks: the extra ones keep seed + rank
        self.order.set_state(state["data_order"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], list(state["metrics"])
        self.resumed_position = state["partial"]
        if self.default_lr:  # the optimizer --optimizer made, with a constant lr: the run's own, or a new one
            optimizers.set_lr(self.optimizer, self.settings.lr)

    def save_checkpoint(self, mid_epoch: bool = False) -> None:
        """Saves :meth:`state_dict` (all ranks call it; rank 0 writes), after checking the run is finite."""
        self.check_finite()
        if not bool(torch.stack([torch.isfinite(p).all() for p in self.params]).all()):
            raise UserError("training diverged: parameters became NaN/inf. Likely causes: a learning rate too high "
                            f"(try --lr 1e-4 or --clip-norm 10) or c too small; {self._last_good()}")
        state = self.state_dict(mid_epoch)
        if self.rank == 0:
            self.run.save_checkpoint(state, self.epoch, self.step, self.settings.keep_last)

    def _last_good(self) -> str:
        return self.run.last_good() if self.run is not None else "no checkpoint had been written"


EVALUATED_ROWS = 10_000  # the most test (and training) rows an evaluation measures


def _empty(data) -> bool:
    first = data[0] if isinstance(data, (tuple, list)) else data
    return isinstance(first, (torch.Tensor, np.ndarray)) and first.shape[0] == 0


def _global_batches(perm: torch.Tensor, batch_size: int, world: int) -> list[torch.Tensor]:
    """``perm`` in batches; under DDP a last batch too small to give every rank a row joins the one before."""
    batches = list(perm.split(batch_size)) if perm.numel() else []  # empty: resumed at an epoch's very end
    if world > 1 and len(batches) > 1 and batches[-1].shape[0] < world:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _check_batch_size(settings: TrainingSettings, n: int, world: int) -> None:
    if settings.batch_size > n:
        raise UserError(f"--batch-size {settings.batch_size} is larger than the {n} training examples: "
                        f"use --batch-size {n} or less")
    if settings.batch_size < world:
        raise UserError(f"--batch-size {settings.batch_size} is smaller than the {world} processes: each rank "
                        f"needs at least one example per step; use --batch-size {world} or more")
