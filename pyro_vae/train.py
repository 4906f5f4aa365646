"""SVI for any Pyro model/guide pair: ``fit(model, guide, data)``.

The trainer knows nothing about VAEs. It needs:

- ``model(*batch)`` and ``guide(*batch)``: Pyro programs (``nn.Module`` s) whose per-example sites
  live in ``pyro.plate("data", ...)``; ``batch`` is a tuple of rows of ``data`` on the device;
- an objective: any Pyro ``ELBO`` (default ``Trace_ELBO()``), used as ``objective(model, guide)``,
  an ``nn.Module`` whose output is the loss, optimized by a ``torch.optim`` optimizer.

Minibatch ELBOs are scaled to the full data set (see :class:`DataScale`), so global latents
(topics, item parameters) are weighted correctly and data-parallel ranks optimize one objective.
Under ``torchrun`` each rank takes its shard of every global batch and DDP averages the gradients;
rank 0 alone writes the run folder. A checkpoint holds every state the trajectory depends on, so
``resume=True`` continues it exactly, also from the middle of an epoch.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

import pyro

from pyro_vae import checkpoint as ckpt
from pyro_vae import distributed
from pyro_vae.errors import UserError
from pyro_vae.elbos import Trace_ELBO  # Pyro's Trace_ELBO without a host sync per step
from pyro_vae.evaluate import elbo_parts
from pyro_vae.handlers import DataScale

CHECKPOINT, METRICS, CONFIG = "checkpoint.pt", "metrics.jsonl", "config.json"


class ScaledLoss(nn.Module):
    """The objective module (e.g. ``Trace_ELBO()(model, guide)``) under :class:`DataScale`.

    ``num_data`` is the number of rows the batch stands for: N in one process. Under DDP a rank's
    shard of b rows out of a global batch of B is scaled by world·N/B (not N/b), so the average of
    the ranks' gradients is the one-process gradient of the global batch even when shards differ in size.
    """

    def __init__(self, elbo_module: nn.Module, num_data: int):
        super().__init__()
        self.elbo_module, self.num_data = elbo_module, num_data

    def forward(self, *batch, num_data: float | None = None):
        with DataScale(self.num_data if num_data is None else num_data):
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
        config: dict | None = None, checkpoint_every: int | str = 1, keep_last: int = 1,
        eval_batch_size: int = 1000, evaluator: Callable | None = elbo_parts,
        transform: Callable | None = None, quiet: bool = False) -> list[dict]:
    """Maximizes the ELBO of ``model``/``guide`` on ``data`` by minibatch SVI; returns per-epoch metrics.

    Args:
        data, test_data: a tensor or a tuple of tensors with the examples along dim 0; each batch
            is passed as ``model(*rows)`` and ``guide(*rows)``.
        objective: a Pyro ELBO (``Trace_ELBO()``, ``TraceMeanField_ELBO()``, ...); default
            ``pyro_vae.elbos.Trace_ELBO()``, Pyro's Trace_ELBO without a host sync per step.
        batch_size: the global batch; under torchrun each of the W ranks takes every W-th row of it.
        optimizer: ``params -> torch.optim.Optimizer``; default Adam with ``lr`` (fused where torch has it).
        scheduler: ``optimizer -> LRScheduler``, stepped once per epoch.
        clip_norm: clips the global gradient norm (a NaN/inf norm then also stops the run).
        out: a run folder for ``config.json``, ``metrics.jsonl`` and ``checkpoint.pt``.
        resume: continue the run in ``out`` from its checkpoint (same trajectory: RNG states too).
        checkpoint_every: ``N`` or ``"Nepochs"`` (every N epochs), or ``"Nsteps"`` (every N optimizer
            steps, also mid-epoch); the last epoch is always checkpointed.
        keep_last: besides ``checkpoint.pt``, keep the last N checkpoints under ``checkpoints/``.
        evaluator: ``(model, guide, data, batch_size) -> dict`` of per-example measures, run each epoch on
            the test data and a same-sized subset of the training data; None skips it.
        transform: ``batch -> batch`` applied to every training batch on the device (e.g. dynamic
            binarization: a fresh Bernoulli draw of the pixels each time a row is visited).
    Metrics are ELBO terms per example, in nats: ``elbo = reconstruction − kl``. If the loss (or, with
    ``clip_norm``, the gradient norm) becomes NaN/inf, training stops with a :class:`UserError` and the
    last good checkpoint is left as it was.
    """
    data, test_data = _as_tuple(data), _as_tuple(test_data)
    every = ckpt.interval(checkpoint_every)
    distributed.init_from_env()
    rank, world = distributed.rank_and_world()
    _check_options(data, world, epochs=epochs, batch_size=batch_size, lr=lr, keep_last=keep_last,
                   **({} if clip_norm is None else {"clip_norm": clip_norm}))
    device = distributed.local_device(resolve_device(device))
    run = Path(out) if out is not None else None
    created = run is not None and not run.exists()
    state = distributed.from_rank0(lambda: _open_run(run, resume, overwrite))
    try:
        with warnings.catch_warnings(), pyro.validation_enabled(False):
            # Pyro warns of a NaN loss on every step; the guard below stops the run with one line instead
            warnings.filterwarnings("ignore", message="Encountered NaN", category=UserWarning)
            return _fit(model, guide, data, test_data, objective or Trace_ELBO(), epochs, batch_size, lr,
                        optimizer, scheduler, clip_norm, seed, device, run, state, config, every,
                        keep_last, eval_batch_size, evaluator, transform, quiet, rank, world)
    except BaseException:
        if created and rank == 0 and not (run / CHECKPOINT).exists():
            shutil.rmtree(run, ignore_errors=True)  # no half-made run folder is left behind
        raise


def _fit(model, guide, data, test_data, objective, epochs, batch_size, lr, optimizer, scheduler,
         clip_norm, seed, device, run, state, config, every, keep_last, eval_batch_size,
         evaluator, transform, quiet, rank, world):
    data = tuple(t.to(device) for t in data)  # once: batches are then views chosen by index
    test_data = tuple(t.to(device) for t in test_data) if test_data else None
    num_data = data[0].shape[0]
    model.to(device), guide.to(device)
    loss_module = ScaledLoss(objective(model, guide), num_data)
    params = [p for p in loss_module.parameters() if p.requires_grad]
    opt = optimizer(params) if optimizer else default_optimizer(params, lr)
    sched = scheduler(opt) if scheduler else None
    order = torch.Generator(device=device)  # the data order: the same on every rank
    order.manual_seed(seed)
    pyro.set_rng_seed(seed + rank)  # the noise: each rank its own
    done, step, history, partial = 0, 0, [], None
    if state is not None:
        ckpt.load_into({"model": model, "guide": guide, "optimizer": opt, "scheduler": sched}, state,
                       run / CHECKPOINT)
        rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        if rank < len(rngs):
            ckpt.set_rng_state(rngs[rank])  # a different number of ranks: the extra ones keep seed + rank
        order.set_state(state["data_order"])
        done, step, history, partial = state["epoch"], state["step"], list(state["metrics"]), state["partial"]
        if optimizer is None and scheduler is None:
            for group in opt.param_groups:
                group["lr"] = lr  # the default Adam's constant lr: the run's own, or a new --lr given on resume
    train_module = distributed.wrap(loss_module, device)  # after loading: DDP starts from rank 0's parameters
    if run is not None and rank == 0:
        if state is not None:
            ckpt.remove_stale_temporaries(run)  # a save cut short by the kill
            _write_metrics(run, history)  # lines of epochs after the checkpoint (a killed run) are dropped
        _write_config(run, config)
    # a fixed subset of the training rows, so train and test ELBO parts are measured alike
    train_eval = tuple(t[: (test_data[0].shape[0] if test_data else min(num_data, 10_000))] for t in data)

    def save(epoch, order_state, partial=None):
        """Checkpoint during or at the end of ``epoch`` (``partial``: how far into it); all ranks call it."""
        _check_finite_parameters(params, run)  # never replace a good checkpoint by a diverged one
        rngs = distributed.all_gather(ckpt.rng_state())
        if rank == 0:
            _save(run, {"model": model.state_dict(), "guide": guide.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched else None, "rng": rngs,
                        "data_order": order_state, "epoch": epoch - (partial is not None), "step": step,
                        "partial": partial,
                        "metrics": history, "config": config}, epoch, step, keep_last)

    for epoch in range(done + 1, epochs + 1):
        if hasattr(objective, "set_epoch"):
            objective.set_epoch(epoch)  # e.g. KL warm-up schedules
        started = time.perf_counter()
        order_state = order.get_state()  # a checkpoint within this epoch redraws its permutation from here
        perm = torch.randperm(num_data, generator=order, device=device)
        carried, rows = torch.zeros((), device=device), 0  # this rank's share of the summed loss; rows done
        if partial is not None:  # resuming mid-epoch: rank 0 carries the loss summed so far
            carried, rows, partial = partial["total"].to(device) * (rank == 0), partial["rows"], None
        batches = _global_batches(perm[rows:], batch_size, world)
        # a step only copies its loss (and gradient norm) here; weighting, summing and the NaN check
        # wait for the ~10 host syncs per epoch
        losses = torch.zeros(len(batches), device=device)
        norms = torch.zeros(len(batches), device=device) if clip_norm else None
        weights = torch.tensor([idx.shape[0] / (world * num_data) for idx in batches], device=device)
        first_step = step + 1

        def summed(n):  # this rank's share of the summed loss after n batches of this epoch
            return carried + (losses[:n] * weights[:n]).sum()

        def check(n):
            _stop_if_diverged(losses[:n], None if norms is None else norms[:n], first_step, run)

        report_every = max(1, len(batches) // 10)
        bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{epochs}", disable=quiet or rank != 0,
                   leave=False, dynamic_ncols=True)
        model.train(), guide.train()
        for i, idx in enumerate(batches):
            shard = idx[rank::world] if world > 1 else idx  # this rank's rows of the global batch
            batch = tuple(t[shard] for t in data)
            # Pyro's shape and support checks catch modelling bugs on the first step; later they would
            # only cost a host sync per step (fit runs with validation off)
            with pyro.validation_enabled() if step == 0 else contextlib.nullcontext():
                loss = train_module(*(transform(batch) if transform else batch),
                                    num_data=num_data * world * shard.shape[0] / idx.shape[0])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip_norm:
                norms[i] = nn.utils.clip_grad_norm_(params, clip_norm)
            opt.step()
            losses[i] = loss.detach()
            step += 1
            rows += idx.shape[0]
            bar.update()
            if (i + 1) % report_every == 0 or i + 1 == len(batches):
                check(i + 1)  # the only host syncs: ~10 per epoch
                if not bar.disable:
                    bar.set_postfix(loss=f"{float(summed(i + 1)) * world / rows:.4g}")  # rank 0's estimate
            if run is not None and every.unit == "steps" and step % every.n == 0:
                check(i + 1)
                save(epoch, order_state, {"rows": rows, "total": distributed.all_sum(summed(i + 1)).cpu()})
        bar.close()
        check(len(batches))
        total = summed(len(batches))
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
            with open(run / METRICS, "a") as f:
                f.write(json.dumps(metrics) + "\n")
        if run is not None and ((every.unit == "epochs" and epoch % every.n == 0) or epoch == epochs):
            save(epoch, order.get_state())
        if not quiet and rank == 0:
            tqdm.write(_summary(metrics, epochs))
    return history


def default_optimizer(params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam; its fused kernel where torch has one (CPU, CUDA): the same update in one pass over each
    parameter instead of about ten elementwise operations (docs/benchmarks.md: the hand-written loop
    with and without it)."""
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)


def _as_tuple(data):
    if data is None:
        return None
    return (data,) if isinstance(data, torch.Tensor) else tuple(data)


def _global_batches(perm: torch.Tensor, batch_size: int, world: int) -> list[torch.Tensor]:
    """``perm`` in batches; under DDP a last batch too small to give every rank a row joins the one before."""
    batches = list(perm.split(batch_size))
    if world > 1 and len(batches) > 1 and batches[-1].shape[0] < world:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _check_options(data, world, **options):
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or not math.isfinite(value):
            raise UserError(f"--{name.replace('_', '-')} must be a positive number, got {value!r}")
    n = data[0].shape[0]
    if n == 0:
        raise UserError("the training data is empty: nothing to fit")
    if any(t.shape[0] != n for t in data):
        raise UserError(f"data tensors differ in length ({[t.shape[0] for t in data]}): rows must line up")
    if options["batch_size"] > n:
        raise UserError(f"--batch-size {options['batch_size']} is larger than the {n} training examples: "
                        f"use --batch-size {min(n, 128)} or less")
    if options["batch_size"] < world:
        raise UserError(f"--batch-size {options['batch_size']} is smaller than the {world} processes: each rank "
                        f"needs at least one example per step; use --batch-size {world} or more")


def _open_run(run: Path | None, resume: bool, overwrite: bool) -> dict | None:
    """Rank 0: checks the run folder and prepares it; on resume, returns its checkpoint."""
    if run is None:
        if resume:
            raise UserError("--resume needs --out, the run folder to continue")
        return None
    if resume:
        if not (run / CHECKPOINT).is_file():
            raise UserError(f"--resume: {str(run)!r} is not a run folder (no {CHECKPOINT}); "
                            "give the --out of an earlier run")
        state = ckpt.load(run / CHECKPOINT)
        missing = {"rng", "data_order", "epoch", "step", "partial", "metrics", "optimizer"} - set(state)
        if missing:
            raise UserError(f"--resume: {str(run / CHECKPOINT)!r} lacks {', '.join(sorted(missing))} "
                            "(written by another version?); start a new --out")
        return state
    if (run / CHECKPOINT).exists() and not overwrite:
        raise UserError(f"{str(run)!r} already holds a run: pass --resume to continue it, "
                        "--overwrite to replace it, or choose another --out")
    if run.exists() and not run.is_dir():
        raise UserError(f"--out {str(run)!r} is a file, not a folder")
    run.mkdir(parents=True, exist_ok=True)
    for name in (METRICS, CHECKPOINT):
        (run / name).unlink(missing_ok=True)
    ckpt.remove_stale_temporaries(run)
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    return None


def _write_config(run: Path, config: dict | None) -> None:
    if config is not None:
        ckpt.write_text(run / CONFIG, json.dumps(config, indent=2) + "\n")


def _write_metrics(run: Path, rows: list[dict]) -> None:
    ckpt.write_text(run / METRICS, "".join(json.dumps(r) + "\n" for r in rows))


def _save(run: Path, state: dict, epoch: int, step: int, keep_last: int) -> None:
    ckpt.save(state, run / CHECKPOINT)
    if keep_last > 1:
        folder = run / "checkpoints"
        folder.mkdir(exist_ok=True)
        name = f"epoch-{epoch:04d}-step-{step:08d}.pt"  # the epoch in progress; sorts by time
        shutil.copyfile(run / CHECKPOINT, folder / f".{name}.tmp")
        (folder / f".{name}.tmp").replace(folder / name)
        for old in sorted(folder.glob("epoch-*.pt"))[:-keep_last]:
            old.unlink()


def _stop_if_diverged(losses: torch.Tensor, norms: torch.Tensor | None, first_step: int, run) -> None:
    """Stops with one line if a loss (or gradient norm) of the steps from ``first_step`` on is NaN/inf."""
    if losses.numel() == 0:  # a resume at the very end of an epoch: the same on every rank
        return
    bad = ~torch.isfinite(losses) if norms is None else ~(torch.isfinite(losses) & torch.isfinite(norms))
    bad = int(distributed.all_max(torch.where(bad.any(), bad.long().argmax() + first_step, -1)))
    if bad >= 0:
        raise UserError(f"training diverged: the loss or gradient became NaN/inf at step {bad}. Likely causes: "
                        "a learning rate too high (try --lr 1e-4 or --clip-norm 10), c too small, or data "
                        f"outside [0, 1] for a Bernoulli likelihood; {_last_good(run)}")


def _check_finite_parameters(params, run) -> None:
    if not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
        raise UserError("training diverged: parameters became NaN/inf. Likely causes: a learning rate too high "
                        f"(try --lr 1e-4 or --clip-norm 10) or c too small; {_last_good(run)}")


def _last_good(run) -> str:
    if run is not None and (run / CHECKPOINT).exists():
        return f"the last good checkpoint, {run / CHECKPOINT}, is left as it was (continue with --resume)"
    return "no checkpoint had been written"


def _prefixed(prefix: str, parts: dict) -> dict:
    return {f"{prefix}_{k}": v for k, v in parts.items()}


def _summary(m: dict, epochs: int) -> str:
    text = f"epoch {m['epoch']}/{epochs}  loss/example {m['train_loss']:.4g}"
    for key in ("train_elbo", "test_elbo", "test_reconstruction", "test_kl"):
        if key in m:
            text += f"  {key} {m[key]:.4g}"
    return text + f"  ({m['seconds']:.1f}s)"
