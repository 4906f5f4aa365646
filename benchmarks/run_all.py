"""Runs every speed benchmark and writes docs/benchmarks.md from what they measure (``make bench``).

    .venv/bin/python benchmarks/run_all.py [--threads N] [--repeats 6] [--target-rounds 20] [--out docs/benchmarks.md]

Each benchmark runs in its own process, prints its markdown section, and leaves its key numbers in a
JSON file; the headline table and the verdicts below are computed from those numbers, not typed.
The torch thread count is chosen once for all of them (all cores on an idle machine, one when other
processes keep the cores busy) and written into the report with the machine's load before and after.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _common import interval_text, set_threads, table  # noqa: E402
from loglik_throughput import TARGET as IS_TARGET  # noqa: E402  (the variants held to a target)
from small_net import TARGETS as SMALL_TARGETS  # noqa: E402
from train_epoch import TARGETS as TRAIN_TARGETS  # noqa: E402

BENCHMARKS = [  # (title, script, time limit in seconds)
    ("Training epoch: fit vs hand-written PyTorch vs Pyro's example", "train_epoch.py", 1500),
    ("Small-net overhead regime (784-64-8)", "small_net.py", 400),
    ("Where a step's time goes (profile)", "profile_step.py", 300),
    ("Importance-sampled log-likelihood throughput", "loglik_throughput.py", 600),
    ("Peak memory", "peak_memory.py", 600),
    ("torch.compile", "compile_check.py", 400),
    ("Data larger than memory: a .npy trained from its file", "streamed_data.py", 1500),
    ("Sample-quality measures (10,000 samples)", "quality_cost.py", 900),
]


def run(script: str, threads: int, repeats: int, target_rounds: int, limit: int) -> tuple[str, dict, float]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, os.path.join(HERE, script), "--threads", str(threads),
                               "--repeats", str(repeats), "--target-rounds", str(target_rounds), "--json", path],
                              cwd=HERE, stdout=subprocess.PIPE, text=True, timeout=limit)
        text = done.stdout if done.returncode == 0 else \
            f"**Failed** (exit status {done.returncode}); see the console output of `make bench`.\n"
        with open(path) as f:
            results = json.load(f) if done.returncode == 0 and os.path.getsize(path) else {}
    except subprocess.TimeoutExpired:
        text, results = f"**Did not finish within {limit} s.**\n", {}
    finally:
        os.unlink(path)
    return text, results, time.perf_counter() - started


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def decide(intervals: list, medians: list[float], target: float) -> str:
    """met: every interval lies at or below the target; not met: one lies wholly above it; otherwise the
    run cannot tell (an interval spans the target). Without 95% intervals: the medians against the target."""
    if not intervals or None in intervals:
        return verdict(max(medians) <= target)
    if any(cover < 0.95 for _, _, cover in intervals):
        return verdict(max(medians) <= target) + " (by the median: too few rounds for a 95% interval)"
    if all(high <= target for _, high, _ in intervals):
        return "met"
    if any(low > target for low, _, _ in intervals):
        return "**not met**"
    return "**undecided**: the interval spans the target"


def within(v: dict, target: float) -> str:
    """Decided on both the wall-clock and the CPU-time ratio."""
    return decide([v.get("interval_wall"), v.get("interval_cpu")], [v["ratio_wall"], v["ratio_cpu"]], target)


def measured(v: dict) -> str:
    return f"{v['ratio_wall']:.2f}× (CPU {v['ratio_cpu']:.2f}×)" + interval_text(v.get("interval_wall"), ", 95% interval ")


def headline(r: dict) -> str:
    rows = []
    train = r.get("train_epoch.py", {})
    default = TRAIN_TARGETS[0]
    for likelihood in ("bernoulli", "gaussian"):
        results = train.get(likelihood, {})
        for name in (*TRAIN_TARGETS, "fit, textbook Normal(...).to_event(1) distributions",
                     "Pyro example style (DataLoader, SVI)"):
            v = results.get(name)
            if v:
                target = name in TRAIN_TARGETS
                rows.append([f"training epoch, {likelihood}: {name}", measured(v),
                             "≤ 1.10×" if target else "—", within(v, 1.10) if target else ""])
        plain = results.get("hand-written PyTorch, torch.optim.Adam defaults (not fused)")
        if plain and default in results:
            v = results[default]
            rows.append([f"training epoch, {likelihood}: {default}, vs a hand loop with torch.optim.Adam's defaults",
                         f"{v['wall'] / plain['wall']:.2f}× (CPU {v['cpu'] / plain['cpu']:.2f}×)", "—", ""])
    small = r.get("small_net.py", {}).get("variants", {})
    for name in SMALL_TARGETS:
        if name in small:
            v = small[name]
            rows.append([f"small net 784-64-8: {name}", measured(v), "≤ 1.3×", within(v, 1.3)])
    loglik = r.get("loglik_throughput.py", {})
    for name in (IS_TARGET, "log_likelihood, max_pairs=65536 (before)"):
        per_k = {k: loglik[k][name] for k in loglik if name in loglik[k]}
        if per_k:
            k, worst = max(per_k.items(), key=lambda kv: kv[1]["vs_per_datum"])
            rows.append([f"IS estimator, {name}: slowest K (K={k}), time vs per-datum loop",
                         f"{worst['vs_per_datum']:.2f}×" + interval_text(worst.get("vs_per_datum_interval"),
                                                                         ", 95% interval "),
                         "≤ 1× at every K", decide([v.get("vs_per_datum_interval") for v in per_k.values()],
                                                   [v["vs_per_datum"] for v in per_k.values()], 1.0)])
        at_1000 = loglik.get("1000", {}).get(name)
        if at_1000:
            rows.append([f"IS estimator, {name}: K=1000, time vs compute bound", f"{at_1000['vs_bound']:.2f}×",
                         "≤ 1.3×", verdict(at_1000["vs_bound"] <= 1.3)])
    memory = r.get("peak_memory.py", {})
    for case, label in (("eval:5000:0", "K=5000 on 10,000 images, default passes"),
                        ("eval:5000:65536", "K=5000 on 10,000 images, max_pairs=65536 (before)"),
                        ("train", "training epoch")):
        if case in memory:
            peak = memory[case]["peak"]
            rows.append([f"peak RSS, {label}", f"{peak / 1024:.2f} GiB", "≤ 2 GiB" if case != "train" else "—",
                         verdict(peak <= 2048) if case != "train" else ""])
    return table(["measure", "measured", "target", ""], rows)


def machine(threads: int, load_before, load_after, seconds: float) -> str:
    import pyro
    import torch

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    return table(["", ""], [
        ["CPU", f"{model}, {os.cpu_count()} cores ({torch.backends.cpu.get_cpu_capability()})"],
        ["torch / pyro / python", f"{torch.__version__} / {pyro.__version__} / {platform.python_version()}"],
        ["torch threads used", f"{threads}"],
        ["load average (1 min) before / after", f"{load_before:.1f} / {load_after:.1f}"],
        ["date, commit", f"{datetime.date.today().isoformat()}, {commit}"],
        ["total time of `make bench`", f"{seconds / 60:.1f} min"],
    ])


INTRO = """# Benchmarks

Generated by `make bench` (`benchmarks/run_all.py`); every number below is measured by that command on
the machine described here. Do not edit by hand: rerun it. Each benchmark runs its variants side by
side in one process, interleaved, after a warm-up, and reports medians; ratios are taken within one
process run. Against the hand-written loop, every epoch of a variant runs right beside a hand-written
epoch, and the ratio is taken per pair (`benchmarks/_common.py: paired`): this machine's speed drifts
within minutes (see the ratios of each pair), and a ratio of two medians taken minutes apart would measure the drift.
"CPU" columns give the process's CPU seconds.
"""

VERDICTS = """Each paired ratio comes with a 95% confidence interval for its median (distribution-free, from
the order statistics of the ratios of consecutive rounds: `benchmarks/_common.py: median_interval`); the variants
held to a target run {target_rounds} rounds, the others {repeats}. A target is **met** when the interval lies at or below it,
for the wall-clock and the CPU-time ratio alike, **not met** when an interval lies wholly above it, and
**undecided** when an interval spans it: this run cannot tell the ratio from the target, and a rerun
may land on either side. Ratios without an interval (the compute bound, memory) are compared as they are.
"""

FINDINGS = """## What was done, and what the numbers say

The hand-written loop every ratio is taken against uses the same optimizer as `fit` (below), so the
ratios measure what Pyro's abstraction costs, not a difference in optimizers; the row "vs a hand loop
with torch.optim.Adam's defaults" is what a user who writes the usual five-line loop would see.

**The trainer.** `fit` batches in-memory tensors by index on the device (no DataLoader), runs Pyro's
validation on the first step only, and reads anything back only about ten times per epoch: a step
copies its loss into a preallocated vector, and the NaN/inf check, the weighting and the sum wait for
those reads. Its default optimizer is `torch.optim.Adam` with the fused kernel where torch has one
(CPU and CUDA): the same update in one pass per parameter instead of about ten elementwise passes.
Its default objective is `pyro_vae.elbos.Trace_ELBO`: Pyro's `Trace_ELBO` with the same loss and
gradients (tested against Pyro's in `tests/test_elbos.py`, score-function sites and vectorized
particles included) whose `differentiable_loss` leaves the loss on the device. Pyro's own reads it
back twice per step (`torch_item`) and checks it for NaN (`warn_if_nan`, plus a hook in the backward
pass): on a CPU that is Python work per step (compare the "Pyro's own Trace_ELBO" rows), on a GPU each
read also stalls the host until the queued kernels have run (no GPU here: not measured). After the
validated first step, when every guide site is reparameterized, it scores the two traces directly,
Σ scale·(log p − log q), adding the terms of one plate before summing and scaling them, instead of
Pyro's trace copies and per-site `ScoreParts` (score-function sites and masks still get Pyro's
bookkeeping). `pyro_vae.elbos.TraceMeanField_ELBO` does the same for the analytic-KL objective.

**The distributions.** The default model and guide use `pyro_vae.distributions`: `IsotropicNormal`
for p(z) = N(0, I) and the Gaussian p(x|z), `DiagonalNormal` for q(z|x), `IndependentBernoulli` for
the Bernoulli p(x|z). Each equals torch's `Normal(...).to_event(1)` / `Bernoulli(logits=f).to_event(1)`
in values and gradients (tests/test_distributions.py), but: `Normal(f, √c)` broadcasts the single σ to
every pixel and computes σ², log σ and a division per pixel, forward and backward, where
`IsotropicNormal` computes only the squared error, with torch's fused `mse_loss` (one pass forward, one
back; `(x − f).pow(2).sum(-1)` makes two image-sized tensors forward and takes three passes back).
The hand-written Gaussian loop uses the same kernel (`mse_loss(f, x, reduction="sum")`), so the ratio
measures Pyro, not the kernel; its row "squared error as (x - f).pow(2).sum()" is the three-pass form
written by hand. `Bernoulli.log_prob` negates a full image-sized tensor (and its gradient)
before the sum over pixels; and `pyro.plate` calls `expand` on every site's distribution at every
step, which for `Independent(Normal)` builds two new objects even when the shape already fits. The
rows "textbook Normal(...).to_event(1) distributions" run `fit` with torch's distributions instead,
and the profile's layers 2 and 3 compare the two kinds without Pyro's handlers.

**Where the remaining time goes.** The profile section takes a step apart. With the networks and the
optimizer identical, the tensor work of `fit`'s step is that of the hand-written one plus a few
operations on batch-sized vectors (log p(z) and log q(z), or the KL of two Normals); the rest is
Python: Pyro's effect handlers (two traced programs, replay, two plates that each draw a subsample
index, `DataScale`, the distribution objects), see the cProfile listing. It does not grow with the
network, so it is a fixed cost per step: it weighs less with larger networks and batches, and more
with more threads, which shrink the arithmetic but not the Python. What is left of it is the price of
running the model and guide as Pyro programs.

**Bernoulli on this CPU.** `binary_cross_entropy_with_logits` goes through `log_sigmoid`, which here
costs about as much per element as `log1p` and far more than `exp` or `log` (see the elementwise
table). The hand-written loop and `fit` both pay it, so the training ratios are fair; in the IS
estimator it would be a cost on top of the decoder, which is why the throughput section uses the
Gaussian likelihood.

**The IS estimator.** Each pass of `evaluate.log_likelihood` holds up to `max_pairs` (image, sample)
pairs. With the earlier default of 65,536 pairs every image-sized tensor of a pass was 65,536 × 784
floats (about 200 MB) with several alive at once, so a pass ran at memory speed, not cache speed, and
needed over a GiB. The default is now 2²¹/D pairs (2,674 for 28×28 images, about 8 MB per tensor); the
tables measure the earlier 65,536 side by side ("before"). Batches and sample chunks are split into
equal parts (no last pass pays the fixed cost for a handful of pairs); the passes run without Pyro's
validation, which checked the decoder's output for NaN at every sample and pixel, while the data are
still checked against each observed site's support on the device, read back with the results (one
host sync). `DiagonalNormal` computes Σ log σ once per example, not once per sample. Each pass traces
guide and model with Pyro's messengers used as context managers (`pyro_vae.handlers.lean_traces`, the
ELBOs' own): no handler objects per pass and no copies of the traces (`prune_subsample_sites` copied
both); the plates' subsample sites are skipped when scoring, and the sample plate is built once per
size, not once per pass.

The per-datum loop scores with the model's own distributions, unvalidated, like the estimator's
passes. At K = 1000 it already runs 1,000-row passes, about the size of the estimator's (2,000 rows),
so the two do the same arithmetic in passes of nearly the same shape and differ by what Pyro costs per
pass (two traced programs, three plates, the scoring loop): the "hand-written batched passes (no
Pyro)" row runs the estimator's passes in plain PyTorch, and the profiles below the table split the
three into matrix products, other tensor operations and Python, per pass. Both comparisons with the
per-datum loop are paired (each run beside a per-datum run), as for training. The compute bound
counts the decoder's matrix products only, at the best rate measured on its own shapes; the
hand-written passes show that the model's elementwise work (the squared error, ReLU, bias, sampling
and scoring z) keeps even code without any framework well above it, see the profile below the table.

"""


def compile_and_jit(r: dict) -> str:
    """The torch.compile / JitTrace_ELBO verdict, from what compile_check.py and small_net.py measured."""
    lines = ["**torch.compile and JitTrace_ELBO.**"]
    c = r.get("compile_check.py", {})
    if c:
        faster = c["compiled_ms"] < 0.95 * c["eager_ms"]
        lines.append(f"`torch.compile` of fit's loss module (784-64-8): the first step takes "
                     f"{c['first_step_s']:.0f} s, "
                     f"Dynamo breaks the graph {c['graph_breaks']} times at Pyro's messages and handlers, and a "
                     f"compiled step takes {c['compiled_ms'] / c['eager_ms']:.2f}× the eager one: "
                     + ("faster, but see the compile time." if faster else "no gain, so `fit` offers no compile flag."))
    notes = r.get("small_net.py", {}).get("notes", [])
    jit = r.get("small_net.py", {}).get("variants", {}).get("JitTrace_ELBO, PyroModule networks, fit-like loop")
    if notes:
        lines.append("`JitTrace_ELBO` finds parameters through `pyro.param`, so it cannot train our `nn.Module` "
                     "networks in `fit`; on `PyroModule` copies of them it runs"
                     + (f" at {jit['ratio_wall']:.2f}× the hand-written step (fit: see the table)" if jit else "")
                     + ". Against `Trace_ELBO` on the same draw: "
                     + " ".join(n.split(", ", 1)[1] for n in notes if n.startswith("JitTrace_ELBO vs"))
                     + " A gradient ratio of 2 is Pyro's `JitTrace_ELBO.differentiable_loss` adding the loss to "
                     "the surrogate without detaching it. No JIT flag, then.")
    return "\n".join(lines) + "\n"


GPU_RESULT = os.path.join(HERE, "gpu_check.md")  # benchmarks/gpu_check.sh's table, copied from a CUDA machine


def gpu() -> str:
    """The GPU section: gpu_check.sh's table when one has been brought back from a CUDA machine; else says so."""
    command = ("`bash benchmarks/gpu_check.sh` on a CUDA machine (at most 5 minutes on one H200; first "
               "`bash benchmarks/gpu_check.sh --prepare` here, and carry `.gpu-check/` there)")
    if os.path.exists(GPU_RESULT):
        with open(GPU_RESULT) as f:
            return f"## GPU (CUDA)\n\n{command}, its table copied to `benchmarks/gpu_check.md`:\n\n{f.read().strip()}\n"
    return ("## GPU (CUDA)\n\n**Has not run yet**: no CUDA machine was at hand for any of the numbers above, which "
            f"are all CPU numbers. {command} runs tests/test_cuda.py (a VAE epoch on the GPU, no host sync per step, "
            "resume on the GPU), then one Fashion-MNIST epoch of `fit` against the hand-written loop on the GPU "
            "(`benchmarks/train_epoch.py --device cuda`), and prints the ratio; its table, copied to "
            "`benchmarks/gpu_check.md`, then shows here.\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--target-rounds", type=int, default=20, help="rounds for the variants held to a target")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    parser.add_argument("--only", nargs="+", help="run only these scripts (a partial report, for checks)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    threads = set_threads(args.threads)
    started = time.perf_counter()
    sections, results = [], {}
    for title, script, limit in BENCHMARKS:
        if args.only and script not in args.only:
            continue
        print(f"== {title} ({script}, threads {threads})", file=sys.stderr, flush=True)
        text, results[script], seconds = run(script, threads, args.repeats, args.target_rounds, limit)
        sections.append(f"## {title}\n\n`.venv/bin/python benchmarks/{script} --threads {threads}` "
                        f"({seconds:.0f} s)\n\n{text.strip()}\n")
    report = [INTRO, "## Machine\n", machine(threads, load_before, os.getloadavg()[0], time.perf_counter() - started),
              "", "## Headline: targets of issue 7\n",
              VERDICTS.format(target_rounds=args.target_rounds, repeats=args.repeats),
              headline(results), "", FINDINGS, compile_and_jit(results), *sections, gpu()]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(report))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
