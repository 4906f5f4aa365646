"""SVI for any Pyro model/guide pair: ``fit(model, guide, data)``.

The trainer knows nothing about VAEs. It needs:

- ``model(*batch)`` and ``guide(*batch)``: Pyro programs (``nn.Module`` s) whose per-example sites
  live in ``pyro.plate("data", ...)``; ``batch`` is a tuple of rows of ``data`` on the device;
- an objective: any Pyro ``ELBO`` (default ``Trace_ELBO()``), used as ``objective(model, guide)``,
  an ``nn.Module`` whose output is the loss, optimized by a ``torch.optim`` optimizer.

Minibatch ELBOs are scaled to the full data set (see :class:`DataScale`), so global latents
(topics, item parameters) are weighted correctly and data-parallel ranks optimize one objective.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

import pyro
from pyro.infer import Trace_ELBO

from pyro_vae import checkpoint as ckpt
from pyro_vae import distributed
from pyro_vae.errors import UserError
from pyro_vae.evaluate import elbo_parts
from pyro_vae.handlers import DataScale

CHECKPOINT, METRICS, CONFIG = "checkpoint.pt", "metrics.jsonl", "config.json"


class ScaledLoss(nn.Module):
    """The objective module (e.g. ``Trace_ELBO()(model, guide)``) under :class:`DataScale`."""

    def __init__(self, elbo_module: nn.Module, num_data: int):
        super().__init__()
        self.elbo_module, self.num_data = elbo_module, num_data

    def forward(self, *batch):
        with DataScale(self.num_data):
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


def fit(model: nn.Module, guide: nn.Module, data: torch.Tensor | Sequence[torch.Tensor], *,
        test_data: torch.Tensor | Sequence[torch.Tensor] | None = None,
        objective: pyro.infer.ELBO | None = None,
        epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
        optimizer: Callable | None = None, scheduler: Callable | None = None,
        clip_norm: float | None = None, seed: int = 0, device: str | torch.device = "auto",
        out: str | Path | None = None, resume: bool = False, overwrite: bool = False,
        config: dict | None = None, checkpoint_every: int = 1, keep_last: int = 1,
        eval_batch_size: int = 1000, evaluator: Callable | None = elbo_parts,
        transform: Callable | None = None, quiet: bool = False) -> list[dict]:
    """Maximizes the ELBO of ``model``/``guide`` on ``data`` by minibatch SVI; returns per-epoch metrics.

    Args:
        data, test_data: a tensor or a tuple of tensors with the examples along dim 0; each batch
            is passed as ``model(*rows)`` and ``guide(*rows)``.
        objective: a Pyro ELBO (``Trace_ELBO()``, ``TraceMeanField_ELBO()``, ...); default Trace_ELBO.
        optimizer: ``params -> torch.optim.Optimizer``; default Adam with ``lr``.
        scheduler: ``optimizer -> LRScheduler``, stepped once per epoch.
        clip_norm: clips the global gradient norm.
        out: a run folder for ``config.json``, ``metrics.jsonl`` and ``checkpoint.pt``.
        resume: continue the run in ``out`` from its checkpoint (same trajectory: RNG states too).
        checkpoint_every, keep_last: checkpoint every N epochs; keep the last N epoch checkpoints.
        evaluator: ``(model, guide, data, batch_size) -> dict`` of per-example measures, run each epoch on
            the test data and a same-sized subset of the training data; None skips it.
        transform: ``batch -> batch`` applied to every training batch on the device (e.g. dynamic
            binarization: a fresh Bernoulli draw of the pixels each time a row is visited).
    Metrics are ELBO terms per example, in nats: ``elbo = reconstruction − kl``.
    """
    data, test_data = _as_tuple(data), _as_tuple(test_data)
    _check_options(data, epochs=epochs, batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every,
                   keep_last=keep_last)
    device = resolve_device(device)
    rank, world = distributed.rank_and_world()
    run = Path(out) if out is not None else None
    created = run is not None and not run.exists()
    state = _open_run(run, resume, overwrite) if rank == 0 or resume else None
    try:
        return _fit(model, guide, data, test_data, objective or Trace_ELBO(), epochs, batch_size, lr,
                    optimizer, scheduler, clip_norm, seed, device, run, state, config, checkpoint_every,
                    keep_last, eval_batch_size, evaluator, transform, quiet, rank, world)
    except BaseException:
        if created and rank == 0 and not (run / CHECKPOINT).exists():
            shutil.rmtree(run, ignore_errors=True)  # no half-made run folder is left behind
        raise


def _fit(model, guide, data, test_data, objective, epochs, batch_size, lr, optimizer, scheduler,
         clip_norm, seed, device, run, state, config, checkpoint_every, keep_last, eval_batch_size,
         evaluator, transform, quiet, rank, world):
    data = tuple(t.to(device) for t in data)  # once: batches are then views chosen by index
    test_data = tuple(t.to(device) for t in test_data) if test_data else None
    num_data = data[0].shape[0]
    model.to(device), guide.to(device)
    loss_module = ScaledLoss(objective(model, guide), num_data)
    train_module = distributed.wrap(loss_module, device)
    params = [p for p in loss_module.parameters() if p.requires_grad]
    opt = optimizer(params) if optimizer else torch.optim.Adam(params, lr=lr)
    sched = scheduler(opt) if scheduler else None
    order = torch.Generator(device=device)
    order.manual_seed(seed)
    pyro.set_rng_seed(seed)
    start_epoch, step, history = 1, 0, []
    if state is not None and "optimizer" in state:
        ckpt.load_into({"model": model, "guide": guide, "optimizer": opt, "scheduler": sched}, state, run)
        ckpt.set_rng_state(state["rng"], order)
        start_epoch, step = state["epoch"] + 1, state["step"]
        history = _read_metrics(run, state["epoch"])
    if run is not None and rank == 0:
        _write_config(run, config)
    # a fixed subset of the training rows, so train and test ELBO parts are measured alike
    train_eval = tuple(t[: (test_data[0].shape[0] if test_data else min(num_data, 10_000))] for t in data)

    for epoch in range(start_epoch, epochs + 1):
        if hasattr(objective, "set_epoch"):
            objective.set_epoch(epoch)  # e.g. KL warm-up schedules
        started = time.perf_counter()
        total = torch.zeros((), device=device)
        first_bad = torch.full((), -1, dtype=torch.long, device=device)
        perm = torch.randperm(num_data, generator=order, device=device)
        batches = perm.split(batch_size)
        report_every, seen = max(1, len(batches) // 10), 0
        bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{epochs}", disable=quiet or rank != 0,
                   leave=False, dynamic_ncols=True)
        model.train(), guide.train()
        for i, idx in enumerate(batches):
            idx = idx[rank::world]  # this rank's shard of the global batch
            # Pyro's shape and support checks catch modelling bugs on the first step; later they would
            # only cost a host sync per step
            batch = tuple(t[idx] for t in data)
            with pyro.validation_enabled(step == 0):
                loss = train_module(*(transform(batch) if transform else batch))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip_norm:
                nn.utils.clip_grad_norm_(params, clip_norm)
            opt.step()
            step += 1
            loss = loss.detach()
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
            total += loss * (idx.shape[0] / num_data)  # the loss stands for N rows; this batch is B of them
            seen += idx.shape[0]
            bar.update()
            if (i + 1) % report_every == 0 or i + 1 == len(batches):
                _stop_if_diverged(first_bad, run, rank, world)  # the only host syncs: ~10 per epoch
                bar.set_postfix(loss=f"{float(total) / seen:.4g}")
        bar.close()
        if sched is not None:
            sched.step()
        train_loss = distributed.all_sum(total) / num_data
        metrics = {"epoch": epoch, "step": step, "train_loss": float(train_loss),
                   "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - started}
        if rank == 0 and evaluator is not None:
            model.eval(), guide.eval()
            metrics.update(_prefixed("train", evaluator(model, guide, train_eval, eval_batch_size)))
            if test_data:
                metrics.update(_prefixed("test", evaluator(model, guide, test_data, eval_batch_size)))
        history.append(metrics)
        if run is not None and rank == 0:
            _check_finite_parameters(params, run)
            with open(run / METRICS, "a") as f:
                f.write(json.dumps(metrics) + "\n")
            if epoch % checkpoint_every == 0 or epoch == epochs:
                _save(run, {"model": model.state_dict(), "guide": guide.state_dict(),
                            "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict() if sched else None,
                            "rng": ckpt.rng_state(order), "epoch": epoch, "step": step,
                            "config": config}, epoch, keep_last)
        if not quiet and rank == 0:
            tqdm.write(_summary(metrics, epochs))
    return history


def _as_tuple(data):
    if data is None:
        return None
    return (data,) if isinstance(data, torch.Tensor) else tuple(data)


def _check_options(data, **options):
    for name, value in options.items():
        if not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
            raise UserError(f"--{name.replace('_', '-')} must be a positive number, got {value!r}")
    n = data[0].shape[0]
    if n == 0:
        raise UserError("the training data is empty: nothing to fit")
    if any(t.shape[0] != n for t in data):
        raise UserError(f"data tensors differ in length ({[t.shape[0] for t in data]}): rows must line up")
    if options["batch_size"] > n:
        raise UserError(f"--batch-size {options['batch_size']} is larger than the {n} training examples: "
                        f"use --batch-size {min(n, 128)} or less")


def _open_run(run: Path | None, resume: bool, overwrite: bool) -> dict | None:
    if run is None:
        if resume:
            raise UserError("--resume needs --out, the run folder to continue")
        return None
    if resume:
        if not (run / CHECKPOINT).is_file():
            raise UserError(f"--resume: {str(run)!r} is not a run folder (no {CHECKPOINT}); "
                            "give the --out of an earlier run")
        return ckpt.load(run / CHECKPOINT)
    if (run / CHECKPOINT).exists() and not overwrite:
        raise UserError(f"{str(run)!r} already holds a run: pass --resume to continue it, "
                        "--overwrite to replace it, or choose another --out")
    if run.exists() and not run.is_dir():
        raise UserError(f"--out {str(run)!r} is a file, not a folder")
    run.mkdir(parents=True, exist_ok=True)
    for name in (METRICS, CHECKPOINT):
        (run / name).unlink(missing_ok=True)
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    return None


def _write_config(run: Path, config: dict | None) -> None:
    if config is not None:
        tmp = run / f".{CONFIG}.tmp"
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        tmp.replace(run / CONFIG)


def _read_metrics(run: Path, last_epoch: int) -> list[dict]:
    """The metrics up to the checkpoint; lines from epochs after it (a killed run) are dropped."""
    path = run / METRICS
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    rows = [r for r in rows if r["epoch"] <= last_epoch]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _save(run: Path, state: dict, epoch: int, keep_last: int) -> None:
    ckpt.save(state, run / CHECKPOINT)
    if keep_last > 1:
        folder = run / "checkpoints"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(run / CHECKPOINT, folder / f".epoch-{epoch:05d}.tmp")
        (folder / f".epoch-{epoch:05d}.tmp").replace(folder / f"epoch-{epoch:05d}.pt")
        for old in sorted(folder.glob("epoch-*.pt"))[:-keep_last]:
            old.unlink()


def _stop_if_diverged(first_bad: torch.Tensor, run, rank, world) -> None:
    bad = int(distributed.all_max(first_bad))
    if bad >= 0:
        last = f"the last good checkpoint is {run / CHECKPOINT}" if run and (run / CHECKPOINT).exists() \
            else "no checkpoint was written"
        raise UserError(f"training diverged: the loss became NaN/inf at step {bad}. Likely causes: a learning "
                        f"rate too high (try --lr 1e-4 or --clip-norm 10), c too small, or data outside [0, 1] "
                        f"for a Bernoulli likelihood; {last}")


def _check_finite_parameters(params, run) -> None:
    if not all(bool(torch.isfinite(p).all()) for p in params):
        raise UserError("training diverged: parameters became NaN/inf; try a lower --lr or --clip-norm; "
                        f"the last good checkpoint (if any) is left untouched in {run}")


def _prefixed(prefix: str, parts: dict) -> dict:
    return {f"{prefix}_{k}": v for k, v in parts.items()}


def _summary(m: dict, epochs: int) -> str:
    text = f"epoch {m['epoch']}/{epochs}  loss/example {m['train_loss']:.4g}"
    for key in ("train_elbo", "test_elbo", "test_reconstruction", "test_kl"):
        if key in m:
            text += f"  {key} {m[key]:.4g}"
    return text + f"  ({m['seconds']:.1f}s)"
