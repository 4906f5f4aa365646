"""SVI for any Pyro model/guide pair: ``fit(model, guide, data)``.

The trainer knows nothing about VAEs. It takes

- ``model(*batch)`` and ``guide(*batch)``: Pyro programs in any idiom (``nn.Module``, ``PyroModule``,
  an autoguide, a bound method calling ``pyro.module``, a function calling ``pyro.param``), whose
  per-example sites live in ``pyro.plate("data", ...)``; ``batch`` holds the rows of ``data`` on the device;
- ``data``: a tensor, a tuple of tensors with the examples along dim 0, or a ``pyro_vae.data.Dataset``;
- an objective: any Pyro ELBO (default ``pyro_vae.elbos.Trace_ELBO()``), used as ``objective(model, guide)``,
  an ``nn.Module`` whose output is the loss, minimized by a ``torch.optim`` optimizer.

A minibatch's sites in the data plate are scaled by N / batch size (:class:`DataScale`), so the loss
estimates the whole data set's −ELBO and global latents count once. Under ``torchrun`` each rank takes
its shard of every global batch and the gradients are averaged; rank 0 alone writes the run folder.
A checkpoint holds every state the trajectory depends on, so ``resume=True`` continues it exactly,
also from the middle of an epoch. Evaluation, metrics, checkpoints and progress are callbacks
(``pyro_vae.callbacks``).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch import nn

import pyro

from pyro_vae import callbacks as cb
from pyro_vae import checkpoint as ckpt
from pyro_vae import distributed, optimizers, parameters
from pyro_vae.errors import UserError
from pyro_vae.evaluate import elbo_parts
from pyro_vae.handlers import DataScale
from pyro_vae.objectives import Objective, for_program
from pyro_vae.run_folder import RunFolder
from pyro_vae.settings import Training, interval

Data = torch.Tensor | Sequence[torch.Tensor]

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
        objective: pyro.infer.ELBO | None = None, settings: Training | None = None,
        out: str | Path | None = None, resume: bool = False, overwrite: bool = False, config: dict | None = None,
        optimizer: Callable | None = None, scheduler: Callable | None = None,
        evaluator: Callable | None = elbo_parts, transform: Callable | None = None,
        callbacks: Sequence[cb.Callback] = (), quiet: bool = False, **options) -> list[dict]:
    """Maximizes the ELBO of ``model``/``guide`` on ``data`` by minibatch SVI; returns per-epoch metrics.

    Args:
        data, test_data: a tensor or a tuple of tensors with the examples along dim 0; each batch is
            passed as ``model(*rows)`` and ``guide(*rows)``. A ``pyro_vae.data.Dataset`` gives both
            (``.train``, ``.test``) and its name to config.json.
        objective: a Pyro ELBO (``Trace_ELBO()``, ``TraceMeanField_ELBO()``, ``TraceEnum_ELBO(...)``, ...).
        settings, **options: a :class:`~pyro_vae.settings.Training` and/or its fields as keywords
            (``epochs``, ``batch_size``, ``lr``, ``clip_norm``, ``seed``, ``device``, ``checkpoint_every``,
            ``keep_last``, ``eval_batch_size``, ``plate``, ``tensorboard``); each default is defined there.
        out: a run folder for ``config.json``, ``metrics.jsonl`` and ``checkpoint.pt``.
        resume: continue the run in ``out`` from its checkpoint (the same trajectory: RNG states too).
        config: what config.json records beside the settings, e.g. ``runs.build``'s config, so that
            ``pyro-vae evaluate`` and ``pyro_vae.load`` can rebuild the model.
        optimizer: ``params -> torch.optim.Optimizer``; default Adam with ``lr`` (fused where torch has it).
        scheduler: ``optimizer -> LRScheduler``, stepped once per epoch.
        evaluator: ``(model, guide, data, batch_size) -> dict`` of per-example measures, run each epoch on
            the test data and a same-sized subset of the training data; None skips it.
        transform: ``batch -> batch`` applied to every training batch on the device (e.g. dynamic binarization).
        callbacks: more :class:`~pyro_vae.callbacks.Callback` s, run after the built-in ones.

    Training continues from the program's current parameters: module weights, and ``pyro.param`` values
    already in Pyro's param store (``pyro.clear_param_store()`` starts over, as Pyro's examples do).
    Metrics are ELBO terms per example, in nats: ``elbo = reconstruction − kl``; ``train_loss`` is the
    running −ELBO per example. If the loss (or, with ``clip_norm``, the gradient norm) becomes NaN/inf,
    training stops with a :class:`UserError` and the last good checkpoint is left as it was.
    """
    settings = (settings or Training()).replace(**options)
    if hasattr(data, "train") and hasattr(data, "test"):  # a pyro_vae.data.Dataset
        config = {"dataset": data.name, **(config or {"model": None})}
        data, test_data = data.train, data.test if test_data is None else test_data
    distributed.init_from_env()
    run = RunFolder(out) if out is not None else None
    if resume and run is None:
        raise UserError("--resume needs --out, the run folder to continue")
    state = distributed.from_rank0(lambda: run.prepare(resume, overwrite) if run is not None else None)
    try:
        with warnings.catch_warnings(), pyro.validation_enabled(False):
            # Pyro warns of a NaN loss on every step; the guard below stops the run with one line instead
            warnings.filterwarnings("ignore", message="Encountered NaN", category=UserWarning)
            trainer = Trainer(model, guide, _as_tuple(data), _as_tuple(test_data), objective,
                              settings, run, config, optimizer, scheduler, evaluator, transform, callbacks, quiet,
                              resuming=state is not None)
            return trainer.loop(state)
    except BaseException:
        if run is not None and distributed.rank_and_world()[0] == 0:
            run.discard_if_new()
        raise


class Trainer:
    """One fit: the programs, their parameters and optimizer, the data on the device, and where the loop is.

    Callbacks read its attributes: ``model``, ``guide``, ``modules``, ``settings``, ``run`` (a
    :class:`~pyro_vae.run_folder.RunFolder` or None), ``optimizer``, ``epoch``, ``step``,
    ``steps_in_epoch``, ``history``, ``rank``, ``world``, ``device``.
    """

    def __init__(self, model, guide, data, test_data, objective, settings: Training, run, config, optimizer,
                 scheduler, evaluator, transform, callbacks, quiet, resuming: bool = False):
        self.rank, self.world = distributed.rank_and_world()
        _check_data(data, settings, self.world)
        self.model, self.guide, self.settings, self.run = model, guide, settings, run
        self.device = distributed.local_device(resolve_device(settings.device))
        self.every = interval(settings.checkpoint_every).in_epochs(settings.epochs)
        self.eval_every = interval(settings.eval_every, "eval_every").in_epochs(settings.epochs)
        self.data = tuple(t.to(self.device) for t in data)  # once: batches are then views chosen by index
        self.test_data = tuple(t.to(self.device) for t in test_data) if test_data else None
        self.num_data = self.data[0].shape[0]
        # config.json: what rebuilds the model ("model": None says nothing can: fit was given no config)
        self.config = None if config is None and run is None else \
            {**(config if config is not None else {"model": None}), **settings.to_dict()}
        self.transform = transform
        self.modules = parameters.owners(model, guide)
        self.order = torch.Generator(device=self.device)  # the data order: the same on every rank
        self.order.manual_seed(settings.seed)
        pyro.set_rng_seed(settings.seed + self.rank)  # the noise, and lazily made parameters' initial values
        if resuming:  # the checkpoint holds every pyro.param value: none may come from an earlier program
            pyro.clear_param_store()
        first = tuple(t[: min(settings.batch_size, self.num_data)] for t in self.data)
        self.params, self.param_names, self.layout = parameters.initialize(model, guide, first, self.device,
                                                                           self.num_data, settings.plate)
        self.layout.check_minibatches(settings.batch_size, self.num_data)
        self.objective = for_program(objective, self.layout.enumerated, self.layout.max_plate_nesting)
        self._record_objective()
        self.loss_module = ScaledLoss(self.objective(model, guide), self.num_data, settings.plate)
        self.optimizer, self.scheduler, self.default_lr = self._optimizer(optimizer, scheduler)
        self.epoch = self.step = self.steps_in_epoch = 0
        self.evaluating, self.last_evaluated, self.last_saved = False, time.perf_counter(), time.perf_counter()
        self.history: list[dict] = []
        self.callbacks = [*([self._evaluation(evaluator)] if evaluator else []),
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

    def _evaluation(self, evaluator) -> cb.Evaluation:
        """The per-epoch evaluation, on rows laid out as the program needs them: a program with a parameter
        per row, or observations outside the data plate, is measured on all its rows at once (in order),
        and one with a parameter per row has no test rows to be measured on."""
        whole = bool(self.layout.per_row or self.layout.outside)
        rows = self.test_data[0].shape[0] if self.test_data else min(self.num_data, 10_000)
        train_rows = self.data if whole else tuple(t[:rows] for t in self.data)  # train and test on as many rows
        test = None if self.layout.per_row and not self.layout.subsampled else self.test_data
        size = max(self.num_data, rows) if whole else self.settings.eval_batch_size
        return cb.Evaluation(evaluator, train_rows, test, size, forked=self.eval_every.unit == "seconds")

    # --- the loop -------------------------------------------------------------------------------
    def loop(self, state: dict | None) -> list[dict]:
        """Trains from the start, or from checkpoint ``state``, to the last epoch; returns the metrics."""
        partial = self._restore(state) if state is not None else None
        distributed.broadcast_(self.params)  # every rank starts from rank 0's parameters
        if self.run is not None and self.rank == 0:
            if state is not None:
                self.run.write_metrics(self.history)  # lines of epochs after the checkpoint (a killed run) go
            if self.config is not None:
                self.run.write_config(self.config)
        for callback in self.callbacks:
            callback.on_train_start(self)
        try:
            for self.epoch in range(self.epoch + 1, self.settings.epochs + 1):
                self._epoch(partial)
                partial = None
        finally:
            for callback in self.callbacks:
                callback.on_train_end(self)
        return self.history

    def _epoch(self, partial: dict | None) -> None:
        if hasattr(self.objective, "set_epoch"):
            self.objective.set_epoch(self.epoch)  # e.g. KL warm-up schedules
        started = time.perf_counter()
        self.order_state = self.order.get_state()  # a checkpoint within this epoch redraws its permutation from here
        # the full data in one batch keeps its rows in order, as Pyro's loop does
        perm = torch.arange(self.num_data, device=self.device) if self.settings.batch_size >= self.num_data else \
            torch.randperm(self.num_data, generator=self.order, device=self.device)
        # this rank's share of the summed loss, and the rows done (resuming mid-epoch: rank 0 carries the sum)
        self.carried, self.rows = self.data[0].new_zeros((), dtype=torch.float32), 0
        if partial is not None:
            self.carried, self.rows = partial["total"].to(self.device) * (self.rank == 0), partial["rows"]
        batches = _global_batches(perm[self.rows:], self.settings.batch_size, self.world)
        self.steps_in_epoch, self.done_in_epoch, self.first_step = len(batches), 0, self.step + 1
        # a step only copies its loss (and gradient norm) here; weighting, summing and the NaN check
        # wait for the ~10 host syncs per epoch
        self.losses = self.data[0].new_zeros(len(batches), dtype=torch.float32)
        clip = self.settings.clip_norm and not self.clips_itself  # global norm clipping; ClippedAdam clips each parameter
        self.norms = self.losses.new_zeros(len(batches)) if clip else None
        self.weights = torch.tensor([idx.shape[0] / (self.world * self.num_data) for idx in batches],
                                    device=self.device)
        report_every = max(1, len(batches) // 10)
        for m in self.modules:
            m.train()
        for i, idx in enumerate(batches):
            self._step(i, idx)
            if (i + 1) % report_every == 0 or i + 1 == len(batches):
                self.check_finite()  # the only host syncs: ~10 per epoch
                loss = float(self.summed()) * self.world / self.rows  # rank 0's estimate
                for callback in self.callbacks:
                    callback.on_report(self, loss)
        self.check_finite()
        train_loss = float(distributed.all_sum(self.summed()) / self.num_data)
        self._step_schedules(train_loss)
        metrics = {"epoch": self.epoch, "step": self.step, "train_loss": train_loss,
                   "lr": optimizers.learning_rate(self.optimizer), "seconds": time.perf_counter() - started}
        self.evaluating = self.due(self.eval_every, self.last_evaluated, first_step=self.first_step)
        if self.evaluating:
            self.last_evaluated = time.perf_counter()
        self.history.append(metrics)
        for callback in self.callbacks:
            callback.on_epoch_end(self, metrics)

    def _step(self, i: int, idx: torch.Tensor) -> None:
        shard = idx[self.rank::self.world] if self.world > 1 else idx  # this rank's rows of the global batch
        batch = tuple(t[shard] for t in self.data)
        # Pyro's shape and support checks catch modelling bugs on the first step; later they would
        # only cost a host sync per step (fit runs with validation off)
        with pyro.validation_enabled() if self.step == 0 else contextlib.nullcontext():
            loss = self.loss_module(*(self.transform(batch) if self.transform else batch),
                                    num_data=self.num_data * self.world * shard.shape[0] / idx.shape[0])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients_(self.params)
        if self.norms is not None:
            self.norms[i] = nn.utils.clip_grad_norm_(self.params, self.settings.clip_norm)
        self.optimizer.step()
        self.losses[i] = loss.detach()
        self.step += 1
        self.rows += idx.shape[0]
        self.done_in_epoch = i + 1
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

    def summed(self) -> torch.Tensor:
        """This rank's share of the loss summed over the epoch so far (a tensor: no host sync)."""
        n = self.done_in_epoch
        return self.carried + (self.losses[:n] * self.weights[:n]).sum()

    def check_finite(self) -> None:
        """Stops with one line if a loss (or gradient norm) of this epoch's steps so far is NaN/inf."""
        n = self.done_in_epoch
        if n == 0:  # a resume at the very end of an epoch: the same on every rank
            return
        ok = torch.isfinite(self.losses[:n]) if self.norms is None else \
            torch.isfinite(self.losses[:n]) & torch.isfinite(self.norms[:n])
        bad = int(distributed.all_max(torch.where(ok.all(), -1, (~ok).long().argmax() + self.first_step)))
        if bad >= 0:
            raise UserError(f"training diverged: the loss or gradient became NaN/inf at step {bad}. Likely causes: "
                            "a learning rate too high (try --lr 1e-4 or --clip-norm 10), c too small, or data "
                            f"outside [0, 1] for a Bernoulli likelihood; {self._last_good()}")

    # --- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self, mid_epoch: bool = False) -> None:
        """Saves every state the trajectory depends on (all ranks call it; rank 0 writes)."""
        self.check_finite()
        if not bool(torch.stack([torch.isfinite(p).all() for p in self.params]).all()):
            raise UserError("training diverged: parameters became NaN/inf. Likely causes: a learning rate too high "
                            f"(try --lr 1e-4 or --clip-norm 10) or c too small; {self._last_good()}")
        # mid-epoch: the epoch in progress is redone on resume from its permutation, past the rows done
        partial = {"rows": self.rows, "total": distributed.all_sum(self.summed()).cpu()} if mid_epoch else None
        rngs = distributed.all_gather(ckpt.rng_state())
        if self.rank == 0:
            self.run.save_checkpoint(
                {**parameters.state(self.model, self.guide, self.param_names),
                 "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict() if self.scheduler else None, "rng": rngs,
                 "data_order": self.order_state if mid_epoch else self.order.get_state(),
                 "epoch": self.epoch - mid_epoch, "step": self.step, "partial": partial,
                 "metrics": self.history, "config": self.config}, self.epoch, self.step, self.settings.keep_last)

    def _restore(self, state: dict) -> dict | None:
        """Loads a checkpoint into parameters, optimizer, scheduler and RNGs; returns its mid-epoch position."""
        path = self.run.checkpoint_path
        parameters.load_state(self.model, self.guide, state, path)
        ckpt.load_into({"optimizer": self.optimizer, "scheduler": self.scheduler}, state, path)
        rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        if self.rank < len(rngs):
            ckpt.set_rng_state(rngs[self.rank])  # a different number of ranks: the extra ones keep seed + rank
        self.order.set_state(state["data_order"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], list(state["metrics"])
        if self.default_lr:  # the optimizer --optimizer made, with a constant lr: the run's own, or a new one
            optimizers.set_lr(self.optimizer, self.settings.lr)
        return state["partial"]

    def _last_good(self) -> str:
        return self.run.last_good() if self.run is not None else "no checkpoint had been written"


def _as_tuple(data):
    if data is None:
        return None
    return (data,) if isinstance(data, torch.Tensor) else tuple(data)


def _global_batches(perm: torch.Tensor, batch_size: int, world: int) -> list[torch.Tensor]:
    """``perm`` in batches; under DDP a last batch too small to give every rank a row joins the one before."""
    batches = list(perm.split(batch_size)) if perm.numel() else []  # empty: resumed at an epoch's very end
    if world > 1 and len(batches) > 1 and batches[-1].shape[0] < world:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _check_data(data: tuple, settings: Training, world: int) -> None:
    if not data or not all(isinstance(t, torch.Tensor) for t in data):
        raise UserError("the training data must be a tensor or a tuple of tensors with the examples along dim 0")
    n = data[0].shape[0] if data[0].dim() else 0
    if n == 0:
        raise UserError("the training data is empty: nothing to fit")
    if any(t.dim() == 0 or t.shape[0] != n for t in data):
        raise UserError(f"data tensors differ in length ({[tuple(t.shape)[:1] for t in data]}): rows must line up")
    if settings.batch_size > n:
        raise UserError(f"--batch-size {settings.batch_size} is larger than the {n} training examples: "
                        f"use --batch-size {min(n, 128)} or less")
    if settings.batch_size < world:
        raise UserError(f"--batch-size {settings.batch_size} is smaller than the {world} processes: each rank "
                        f"needs at least one example per step; use --batch-size {world} or more")
