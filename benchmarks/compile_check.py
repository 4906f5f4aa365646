"""Does ``torch.compile`` speed up fit's loss module? Compile time, graph breaks, and steps after compiling.

    .venv/bin/python benchmarks/compile_check.py [--threads N] [--repeats 3] [--warm-cache]

Compiles into a fresh, empty inductor cache (a user's first run), unless --warm-cache.

The 784-64-8 Bernoulli VAE (the overhead regime, where compiling could help most), fit's loss module
(``ScaledLoss`` around the sync-free ``Trace_ELBO``) compiled with ``torch.compile`` (default backend,
inductor). Timed: the first step (tracing and code generation), then blocks of 20 steps eager vs compiled.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings

if "--warm-cache" not in sys.argv:  # a fresh inductor cache: what a user's first compile costs
    CACHE = tempfile.mkdtemp(prefix="inductor-cache-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = CACHE
sys.argv = [a for a in sys.argv if a != "--warm-cache"]

import torch  # noqa: E402

import pyro  # noqa: E402

from _common import SMALL, build, log, parse_args, table, write_json  # noqa: E402
from pyro_vae import elbos  # noqa: E402
from pyro_vae.train import ScaledLoss  # noqa: E402

N, BATCH = 60_000, 256


def main():
    warnings.filterwarnings("ignore")
    args = parse_args(__doc__.splitlines()[0])
    model, guide = build("bernoulli", SMALL)
    loss_module = ScaledLoss(elbos.Trace_ELBO()(model, guide), N)
    opt = torch.optim.Adam(loss_module.parameters(), lr=1e-3)
    x = torch.rand(N, 784)

    def steps(module, n):
        for _ in range(n):
            with pyro.validation_enabled(False):
                loss = module(x[torch.randint(0, N, (BATCH,))])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    steps(loss_module, 3)
    compiled = torch.compile(loss_module)
    log("compile_check: compiling (first step)")
    started = time.perf_counter()
    steps(compiled, 1)
    first = time.perf_counter() - started
    steps(compiled, 2)
    blocks = {"eager": [], "compiled": []}
    for _ in range(max(args.repeats, 5)):
        for name, module in (("eager", loss_module), ("compiled", compiled)):
            started = time.perf_counter()
            steps(module, 20)
            blocks[name].append((time.perf_counter() - started) / 20 * 1e3)
    breaks = torch._dynamo.utils.counters["graph_break"]
    reasons = sorted({reason.strip().splitlines()[0][:90] for reason in breaks})
    eager, fast = statistics.median(blocks["eager"]), statistics.median(blocks["compiled"])
    print(f"torch {torch.__version__}, torch threads: {args.threads}; 784-64-8, batch {BATCH}.\n")
    print(table(["measure", "value"], [
        ["first compiled step (trace + codegen)", f"{first:.1f} s"],
        ["graph breaks (distinct reasons)", f"{sum(breaks.values())} ({len(reasons)})"],
        ["eager step (median of 20-step blocks)", f"{eager:.2f} ms"],
        ["compiled step", f"{fast:.2f} ms ({fast / eager:.2f}× eager)"],
    ]))
    print("\nGraph-break reasons: " + "; ".join(f"`{r}`" for r in reasons))
    if "CACHE" in globals():
        shutil.rmtree(CACHE, ignore_errors=True)
    write_json(args, {"first_step_s": first, "graph_breaks": sum(breaks.values()),
                      "eager_ms": eager, "compiled_ms": fast})


if __name__ == "__main__":
    main()
