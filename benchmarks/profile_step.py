"""Where a training step's time goes: fit's loss module against the hand-written step, taken apart.

    .venv/bin/python benchmarks/profile_step.py [--threads N] [--repeats 30]

One SVI step of the 784-400-50 Bernoulli VAE, batch 256, is built up in layers, each timed in CPU
milliseconds per step (median over interleaved blocks of 10 steps; CPU time of this single-threaded
process barely moves when other processes load the machine). Every layer uses fit's optimizer (fused Adam):

1. hand-written: encoder, reparameterized z, decoder, BCE on logits (sum), analytic KL;
2. the same terms computed by torch/Pyro's textbook distribution objects, without Pyro handlers:
   ``Bernoulli(logits).to_event(1).log_prob``, ``kl_divergence`` of expanded ``Normal(...).to_event(1)``, N/B scales;
3. the same with the default model's distributions (``pyro_vae.distributions``: IndependentBernoulli,
   DiagonalNormal, IsotropicNormal), still without handlers;
4. + Pyro's effect handlers: the real loss module of ``fit`` (``ScaledLoss(TraceMeanField_ELBO())``:
   trace, replay, plates, DataScale), which computes exactly the terms of layer 3;
5. the same with fit's default objective (``Trace_ELBO``: one-draw KL, log q(z) − log p(z)).

Then the per-step counts of tensor operations and autograd nodes, the torch.profiler table of a fit
step, and the Python functions (cProfile) that make up Pyro's share.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import kl_divergence
from torch.profiler import ProfilerActivity, profile

import pyro
import pyro.distributions as dist

from _common import BIG, build, log, parse_args, table, write_json
from pyro_vae import elbos
from pyro_vae.distributions import DiagonalNormal, IndependentBernoulli, IsotropicNormal
from pyro_vae.optimizers import adam as default_optimizer
from pyro_vae.train import ScaledLoss

N, BATCH = 60_000, 256


class HandLoss(nn.Module):
    def __init__(self, distributions: str | None):
        super().__init__()
        model, guide = build("bernoulli", BIG)
        self.encoder, self.decoder, self.distributions = guide.encoder, model.decoder, distributions

    def forward(self, x):
        mu, sigma = self.encoder(x)
        scale = N / x.shape[0]
        if self.distributions is None:
            z = mu + sigma * torch.randn_like(mu)
            reconstruction = -F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum")
            kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 1 - 2 * sigma.log()).sum()
            return -(reconstruction - kl) * scale
        if self.distributions == "textbook":
            q = dist.Normal(mu, sigma).to_event(1)
            p = dist.Normal(x.new_zeros(mu.shape[-1]), 1.0).to_event(1).expand(mu.shape[:1])
            z = q.rsample()
            likelihood = dist.Bernoulli(logits=self.decoder(z), validate_args=False).to_event(1)
        else:
            q = DiagonalNormal(mu, sigma)
            p = IsotropicNormal(x.new_zeros(mu.shape[-1]), 1.0).expand(mu.shape[:1])
            z = q.rsample()
            likelihood = IndependentBernoulli(self.decoder(z))
        return -((likelihood.log_prob(x) * scale).sum() - (kl_divergence(q, p) * scale).sum())


def layers() -> dict:
    def fit_loss(objective):
        model, guide = build("bernoulli", BIG)
        return ScaledLoss(objective(model, guide), N)

    return {"1. hand-written step": HandLoss(None),
            "2. + textbook distribution objects (no handlers)": HandLoss("textbook"),
            "3. pyro_vae.distributions instead (no handlers)": HandLoss("ours"),
            "4. + Pyro handlers = fit, TraceMeanField_ELBO": fit_loss(elbos.TraceMeanField_ELBO()),
            "5. fit, default Trace_ELBO (one-draw KL)": fit_loss(elbos.Trace_ELBO())}


def steps(module, optimizer, x, n):
    for _ in range(n):
        batch = x[torch.randint(0, x.shape[0], (BATCH,))]
        with pyro.validation_enabled(False):
            loss = module(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main():
    args = parse_args(__doc__.splitlines()[0])
    repeats = max(args.repeats, 30)  # blocks of 10 steps: cheap, so many
    torch.manual_seed(0)
    x = torch.rand(N, 784)  # the values do not change the work done per step
    modules = layers()
    optimizers = {k: default_optimizer(list(m.parameters()), 1e-3) for k, m in modules.items()}
    for k in modules:
        steps(modules[k], optimizers[k], x, 5)
    cpu = {k: [] for k in modules}
    log(f"profile_step: {repeats} blocks of 10 steps per layer")
    for _ in range(repeats):
        for k in modules:
            started = time.process_time()
            steps(modules[k], optimizers[k], x, 10)
            cpu[k].append((time.process_time() - started) / 10 * 1e3)
    base = statistics.median(cpu["1. hand-written step"])
    rows, previous = [], None
    for k in modules:
        m = statistics.median(cpu[k])
        rows.append([k, f"{m:.2f}", "" if previous is None else f"{m - previous:+.2f}", f"{m / base:.3f}×"])
        previous = m
    out = [f"torch threads: {args.threads}; CPU ms per step, median of {repeats} blocks of 10 steps.\n",
           table(["layer", "CPU ms/step", "vs the layer above", "vs hand"], rows), ""]

    counts = []
    for k in modules:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            steps(modules[k], optimizers[k], x, 5)
        events = prof.key_averages()
        ops = sum(e.count for e in events if e.key.startswith("aten::")) / 5
        nodes = sum(e.count for e in events if e.key.startswith("autograd::engine::evaluate_function")) / 5
        counts.append([k, f"{ops:.0f}", f"{nodes:.0f}"])
    out += ["Work per step (deterministic counts, torch.profiler):\n",
            table(["layer", "aten ops/step (incl. nested)", "autograd nodes/step"], counts), ""]

    fit_module = "5. fit, default Trace_ELBO (one-draw KL)"
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        steps(modules[fit_module], optimizers[fit_module], x, 10)
    out += ["torch.profiler, 10 steps of fit's default loss module + Adam, top 15 by self CPU time:\n",
            "```", prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=50),
            "```", ""]

    # a 16-4-2 network on 4x4 images: the arithmetic costs next to nothing, what is left is Pyro's Python
    model, guide = build("bernoulli", {"hidden": [4], "latent_dim": 2}, shape=(1, 4, 4))
    tiny = ScaledLoss(elbos.Trace_ELBO()(model, guide), N)
    xs = torch.rand(BATCH, 16)
    profiler = cProfile.Profile()
    with pyro.validation_enabled(False):
        for _ in range(20):
            tiny(xs)
        profiler.enable()
        for _ in range(500):
            tiny(xs)
        profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    listing = [line for line in text.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(listing) if "ncalls" in line)
    shown = [line.replace(str(pyro.__path__[0]), "pyro").replace(str(torch.__path__[0]), "torch")
             for line in listing[start:]]
    out += ["cProfile of the forward pass of fit's default loss module on a 16-4-2 network, batch 256 "
            "(500 calls; the arithmetic costs next to nothing, so this is Pyro's per-step Python), "
            "by cumulative time:\n",
            "```", *shown, "```", ""]

    ops = {}
    f = torch.randn(BATCH, 784)
    for name, fn in [("exp", torch.exp), ("log", lambda t: torch.log(t.abs() + 1)),
                     ("log1p", lambda t: torch.log1p(t.abs())), ("log_sigmoid (BCE on logits)", F.logsigmoid),
                     ("sigmoid", torch.sigmoid), ("mul", lambda t: t * t)]:
        fn(f)
        started = time.process_time()
        for _ in range(50):
            fn(f)
        ops[name] = (time.process_time() - started) / 50 / f.numel() * 1e9
    out += ["Elementwise cost on this CPU, ns per element (256×784 float32, one thread; `log` and `log1p` "
            "include an `abs`, plus an add for `log`):\n",
            table(list(ops), [[f"{v:.1f}" for v in ops.values()]]), ""]
    print("\n".join(out))
    write_json(args, {"layers_cpu_ms": {k: statistics.median(v) for k, v in cpu.items()}})


if __name__ == "__main__":
    main()
