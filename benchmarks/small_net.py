"""Small-net overhead regime: a 784-64-8 VAE, where per-step Python, not arithmetic, sets the pace.

    .venv/bin/python benchmarks/small_net.py [--threads N] [--repeats 3] [--target-rounds 20]

One epoch (60,000 rows, batch 256, Bernoulli likelihood) of: the hand-written PyTorch loop (with fit's
optimizer, fused Adam, and with ``torch.optim.Adam``'s defaults), ``fit``
with its default objective, with TraceMeanField_ELBO and with Pyro's own Trace_ELBO, and Pyro's
``JitTrace_ELBO``. JitTrace_ELBO finds parameters through ``pyro.param``, so it cannot train our
networks (plain ``nn.Module`` parameters) in ``fit``; that failure is shown, and JitTrace_ELBO is
timed on copies of the networks turned into ``PyroModule`` s, in a loop shaped like fit's, with its
gradients checked against Trace_ELBO's on the same draw.
"""

from __future__ import annotations

import math
import warnings

import torch

import pyro
import pyro.infer
from pyro.nn.module import to_pyro_module_

from _common import (SMALL, Timer, build, interval_text, log, paired, parse_args, summary, table,
                     training_images, write_json)
from pyro_vae import elbos
from pyro_vae.handlers import DataScale
from pyro_vae.optimizers import adam as default_optimizer
from pyro_vae.train import ScaledLoss, fit
from train_epoch import BATCH, LR, hand_written_epoch

TARGETS = ("fit (default: sync-free Trace_ELBO)", "fit, TraceMeanField_ELBO",
           "JitTrace_ELBO, PyroModule networks, fit-like loop")


def fit_epoch(x, objective=None):
    model, guide = build("bernoulli", SMALL)
    fit(model, guide, x, epochs=1, batch_size=BATCH, lr=LR, evaluator=None, device="cpu", quiet=True,
        objective=objective)


def pyro_modules():
    pyro.clear_param_store()
    model, guide = build("bernoulli", SMALL)
    to_pyro_module_(model)
    to_pyro_module_(guide)
    return model, guide


def jit_epoch(x):
    """fit's loop (in-memory batches, DataScale, torch Adam) around JitTrace_ELBO's loss module."""
    model, guide = pyro_modules()
    loss_module = ScaledLoss(pyro.infer.JitTrace_ELBO(ignore_jit_warnings=True)(model, guide), x.shape[0])
    with pyro.validation_enabled(False):
        loss_module(x[:BATCH])  # parameters exist after a first call; the optimizer needs them
        opt = default_optimizer(list(loss_module.parameters()), LR)
        for idx in torch.randperm(x.shape[0]).split(BATCH):
            loss = loss_module(x[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def jit_checks(x) -> list[str]:
    notes = []
    model, guide = build("bernoulli", SMALL)
    try:
        fit(model, guide, x[:2 * BATCH], epochs=1, batch_size=BATCH, evaluator=None, device="cpu", quiet=True,
            objective=pyro.infer.JitTrace_ELBO(ignore_jit_warnings=True))
        notes.append("`fit(..., objective=JitTrace_ELBO())` on our networks ran.")
    except Exception as error:  # noqa: BLE001 - the failure is the finding
        first = str(error).strip().splitlines()[0]
        notes.append(f"`fit(..., objective=JitTrace_ELBO())` on our networks fails: {type(error).__name__}: "
                     f"\"{first}\" (it traces ``pyro.param`` sites; nn.Module parameters become constants).")
    model, guide = pyro_modules()
    params = lambda: [p for m in (model, guide) for p in m.parameters()]  # noqa: E731
    results = {}
    jit = pyro.infer.JitTrace_ELBO(ignore_jit_warnings=True)
    with pyro.validation_enabled(False), DataScale(x.shape[0]):
        jit.differentiable_loss(model, guide, x[:BATCH])  # compiling draws random numbers: do it first
    with pyro.validation_enabled(False):
        for name, elbo in [("Trace_ELBO", pyro.infer.Trace_ELBO()),
                           ("JitTrace_ELBO", jit)]:
            for rows in (BATCH, 96):  # a full batch, then the epoch's last, smaller one
                pyro.set_rng_seed(1)
                with DataScale(x.shape[0]):
                    loss = elbo.differentiable_loss(model, guide, x[:rows])
                grads = torch.autograd.grad(loss, params())
                results[name, rows] = (loss.detach(), torch.cat([g.flatten() for g in grads]))
    for rows in (BATCH, 96):
        (loss_a, grad_a), (loss_b, grad_b) = results["Trace_ELBO", rows], results["JitTrace_ELBO", rows]
        ratio = float(grad_b.norm() / grad_a.norm())
        same = torch.allclose(grad_a, grad_b, rtol=1e-3, atol=1e-3 * float(grad_a.abs().max()))
        notes.append(f"JitTrace_ELBO vs Trace_ELBO on the same draw, {rows} rows: loss {float(loss_b):.6g} vs "
                     f"{float(loss_a):.6g}; gradient norm ratio {ratio:.3f} "
                     f"({'equal' if same else 'NOT equal'} gradients).")
    return notes


def main():
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit.trace's deprecation notice
    args = parse_args(__doc__.splitlines()[0])
    x, _, source = training_images()
    steps = math.ceil(x.shape[0] / BATCH)
    runs = {"hand-written PyTorch": lambda: hand_written_epoch("bernoulli", x, 0, SMALL),
            "hand-written PyTorch, torch.optim.Adam defaults (not fused)":
                lambda: hand_written_epoch("bernoulli", x, 0, SMALL, adam_defaults=True),
            TARGETS[0]: lambda: fit_epoch(x),
            TARGETS[1]: lambda: fit_epoch(x, elbos.TraceMeanField_ELBO()),
            "fit, Pyro's own Trace_ELBO": lambda: fit_epoch(x, pyro.infer.Trace_ELBO()),
            TARGETS[2]: lambda: jit_epoch(x)}
    log("small_net: warm-up")
    warm = x[:20 * BATCH]
    hand_written_epoch("bernoulli", warm, 0, SMALL), fit_epoch(warm), fit_epoch(warm, elbos.TraceMeanField_ELBO())
    fit_epoch(warm, pyro.infer.Trace_ELBO()), jit_epoch(warm)
    base = "hand-written PyTorch"
    timer = paired(runs, base, args.repeats, Timer(), log)
    paired({name: runs[name] for name in (base, *TARGETS)}, base, args.target_rounds - args.repeats, timer, log,
           first_round=args.repeats)  # the variants held to the 1.3× target: enough rounds for an interval
    rows = [[name, f"{timer.median(name) / steps * 1e3:.2f}", f"**{timer.ratio(name, base):.2f}×**",
             interval_text(timer.interval(name)), f"{timer.median(name, cpu=True) / steps * 1e3:.2f}",
             f"{timer.ratio(name, base, cpu=True):.2f}×", len(timer.ratios.get(name, "")) or ""] for name in runs]
    notes = jit_checks(x)
    print(f"Data: {source}, Bernoulli likelihood, 784-64-8, batch {BATCH}, {steps} steps per epoch; torch threads: "
          f"{args.threads}; {args.repeats} rounds after a warm-up (to {args.target_rounds} for the variants held to "
          "the 1.3× target), each variant's epoch right beside a hand-written one; \"vs hand\" is the median of the "
          "paired ratios (as for the training epoch), with its 95% interval; ms/step the median epoch.\n")
    print(table(["variant", "wall ms/step", "vs hand (wall)", "95% interval", "CPU ms/step", "vs hand (CPU)",
                 "rounds"], rows))
    print()
    print("\n".join(f"- {note}" for note in notes))
    write_json(args, {"variants": summary(timer, runs, base), "steps": steps, "notes": notes})


if __name__ == "__main__":
    main()
