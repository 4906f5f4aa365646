"""Shared by the speed benchmarks: the data, the networks, timing, threads and markdown tables.

Every benchmark times its variants side by side in one process, after a warm-up. Comparisons with a
baseline (the hand-written loop, the per-datum loop) pair every run with a run of the baseline beside
it and report the median of those ratios with a confidence interval (:func:`paired`,
:func:`median_interval`): a slow spell of the shared machine then hits both runs of a pair alike.
Wall-clock seconds are what a user waits; CPU seconds of the process are shown next to them because
other processes on the machine inflate the former much more.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pyro_vae import data as datasets
from pyro_vae import runs

SHAPE = [1, 28, 28]
BIG = {"hidden": [400], "latent_dim": 50}      # 784-400-50, the network
SMALL = {"hidden": [64], "latent_dim": 8}      # 784-64-8, where per-step overhead dominates


def build(likelihood: str, net: dict, c: float = 0.1, seed: int = 0, shape=SHAPE):
    """The default VAE of ``pyro-vae train`` (runs.build), with the given network size."""
    torch.manual_seed(seed)
    return runs.build({"model": "vae", "shape": list(shape), "likelihood": likelihood, "c": c, "network": "mlp",
                       **net})


def training_images() -> tuple[torch.Tensor, torch.Tensor, str]:
    """Fashion-MNIST (60,000 + 10,000) from the Debian package if installed, or from its four IDX files in the
    folder ``$FASHION_MNIST_DIR`` (how benchmarks/gpu_check.sh brings them to a GPU machine); else MNIST-5k
    repeated to 60,000."""
    folder = os.environ.get("FASHION_MNIST_DIR")
    if folder:
        ds = datasets._idx_folder("fashion-mnist", Path(folder))
        return ds.train, ds.test, f"Fashion-MNIST ({folder})"
    if datasets.DEBIAN_FASHION_MNIST.is_dir():
        ds = datasets.load("fashion-mnist")
        return ds.train, ds.test, f"Fashion-MNIST (Debian package, {datasets.DEBIAN_FASHION_MNIST})"
    ds = datasets.load("mnist-5k")
    train = ds.train.repeat(60_000 // ds.train.shape[0] + 1, 1)[:60_000]
    test = ds.test.repeat(10, 1)[:10_000]
    return train, test, "MNIST-5k repeated to 60,000 rows (Fashion-MNIST package not installed)"


def parse_args(description: str, extra=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: all cores, or 1 when the machine is busy)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per variant (median reported)")
    parser.add_argument("--target-rounds", type=int, default=20,
                        help="paired rounds in all for the variants a target is checked on (an even number; "
                             "10 pairs of rounds give a 98%% interval for the median ratio)")
    parser.add_argument("--json", help="also write the key numbers to this JSON file (for run_all.py)")
    if extra:
        extra(parser)
    args = parser.parse_args()
    args.target_rounds = max(args.repeats, args.target_rounds + args.target_rounds % 2)
    args.threads = set_threads(args.threads)
    return args


def set_threads(threads: int | None) -> int:
    """All cores on an idle machine; one thread when others keep the cores busy (two OpenMP threads that
    fight other processes for two cores wait on each other and run many times slower, which would
    measure the neighbours, not the code)."""
    if threads is None:
        env = os.environ.get("BENCH_THREADS")
        if env:
            threads = int(env)
        else:
            cores = os.cpu_count() or 1
            threads = cores if os.getloadavg()[0] < 0.5 * cores else 1
    torch.set_num_threads(threads)
    return threads


@dataclass
class Timer:
    """Wall and process-CPU seconds of repeated calls, per variant."""

    wall: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)
    ratios: dict = field(default_factory=dict)  # name -> [(wall, cpu) ratio to the base run beside it]

    def time(self, name: str, fn, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(*args, **kwargs)
        self.wall.setdefault(name, []).append(time.perf_counter() - wall)
        self.cpu.setdefault(name, []).append(time.process_time() - cpu)
        return result

    def median(self, name: str, cpu: bool = False) -> float:
        return statistics.median((self.cpu if cpu else self.wall)[name])

    def joined(self, name: str, cpu: bool = False) -> list[float]:
        """From :func:`paired`: per two consecutive rounds, the geometric mean of the ratio where the
        variant ran first and the one where it ran second (the order effect cancels)."""
        r = [pair[cpu] for pair in self.ratios[name]]
        return [math.sqrt(a * b) for a, b in zip(r[::2], r[1::2])] if len(r) > 1 else r

    def ratio(self, name: str, base: str, cpu: bool = False) -> float:
        """The median of :meth:`joined` where paired, else the ratio of the medians."""
        if name in self.ratios:
            return statistics.median(self.joined(name, cpu))
        return 1.0 if name == base else self.median(name, cpu) / self.median(base, cpu)

    def interval(self, name: str, cpu: bool = False) -> tuple[float, float, float] | None:
        """:func:`median_interval` of :meth:`joined`; None below two joined values (four rounds)."""
        return median_interval(self.joined(name, cpu)) if len(self.ratios.get(name, [])) >= 4 else None


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(low, high, coverage): a distribution-free confidence interval for the median of ``values``.

    The order statistics (x₍ⱼ₎, x₍ₙ₊₁₋ⱼ₎) cover the median with probability 1 − 2·P(Binomial(n, ½) < j),
    whatever the distribution; j is the largest with coverage ≥ ``level``. With too few values for that,
    (min, max) with its lower coverage (3 values: 75%, 10 values: (x₍₂₎, x₍₉₎), 98%).
    """
    xs, n = sorted(values), len(values)

    def coverage(j):
        return 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2 ** n

    j = 1
    while j < n // 2 and coverage(j + 1) >= level:
        j += 1
    return xs[j - 1], xs[n - j], coverage(j)


def interval_text(bounds: tuple[float, float, float] | None, prefix: str = "") -> str:
    """``prefix`` + ``1.03–1.12``, with the coverage when it falls short of 95% (too few rounds); "" for None."""
    if bounds is None:
        return ""
    low, high, cover = bounds
    return f"{prefix}{low:.2f}–{high:.2f}" + ("" if cover >= 0.95 else f" ({cover:.0%} only)")


def paired(variants: dict, base: str, repeats: int, timer: Timer, log=None, first_round: int = 0) -> Timer:
    """Each round runs every variant right beside a run of ``base`` and records the ratio of the pair;
    ``base`` runs first in even rounds and second in odd ones, and the variants' order rotates.

    Paired ratios resist the machine getting faster or slower during the run, which the ratio of two
    medians does not: on the shared 2-core machine of docs/benchmarks.md the same epoch's time drifts
    a lot within minutes. There, the first run of a pair is also several % slower than the
    second whichever it is, so :meth:`Timer.ratio` joins each round with the next, where the order is
    swapped (use an even number of rounds). ``first_round`` continues the numbering of an earlier call
    on the same timer (rounds taken in blocks, with other measurements between them).
    """
    names = [name for name in variants if name != base]
    for r in range(first_round, first_round + repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            for run in ((base, name) if r % 2 == 0 else (name, base)):
                timer.time(run, variants[run])
            pair = (timer.wall[name][-1] / timer.wall[base][-1], timer.cpu[name][-1] / timer.cpu[base][-1])
            timer.ratios.setdefault(name, []).append(pair)
            if log:
                log(f"  round {r + 1} {name}: {timer.wall[name][-1]:.2f} s wall, {pair[0]:.3f}× {base}")
    return timer


def write_json(args: argparse.Namespace, results: dict) -> None:
    if getattr(args, "json", None):
        import json

        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def summary(timer: Timer, names, base: str) -> dict:
    """Medians and ratios to ``base`` of every variant, wall and CPU (paired ratios, and the intervals
    of :func:`median_interval` for them, where measured)."""
    out = {}
    for name in names:
        out[name] = {"wall": timer.median(name), "cpu": timer.median(name, cpu=True),
                     "ratio_wall": timer.ratio(name, base), "ratio_cpu": timer.ratio(name, base, cpu=True)}
        if timer.ratios.get(name):
            out[name].update(interval_wall=timer.interval(name), interval_cpu=timer.interval(name, cpu=True))
    return out


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
