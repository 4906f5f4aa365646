"""The cost of the sample-quality measures (pyro_vae.quality) for 10,000 samples, stage by stage.

    .venv/bin/python benchmarks/quality_cost.py [--threads N] [--samples 10000] [--json FILE]

On Fashion-MNIST (10,000 test images as the held-out reference, the Debian package) or, without it,
MNIST-5k (1,000). The samples are 10,000 blends of two training images: what the images show does not
change what the measures cost. Each stage is timed once, in this order, in one process: the judge (read
from the data folder's cache, or trained there when absent: a one-time cost, shown apart), the judge's
features of the samples and of the reference, the Fréchet distance (two 128×128 covariances, float64),
precision and recall (k = 3: the k-th-neighbour radii within each set and the cross distances, in
batches of 2,048 rows), and the judged rate and coverage (one more forward pass of the samples).
"""

from __future__ import annotations

import json
import time

import torch

from _common import parse_args, table
from pyro_vae import quality
from pyro_vae.analysis import sampling
from pyro_vae import data as datasets


def timed(stages: list, name: str, call):
    """Runs ``call()``, appends (name, wall seconds, CPU seconds) to stages, returns its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    stages.append((name, time.perf_counter() - wall, time.process_time() - cpu))
    return result


def main():
    args = parse_args(__doc__.splitlines()[0], lambda p: p.add_argument("--samples", type=int, default=10_000))
    name = "fashion-mnist" if datasets.DEBIAN_FASHION_MNIST.is_dir() else "mnist-5k"
    dataset = datasets.load(name)
    cache = datasets.DEFAULT_DATA_DIR / f"judge-{name}-v{quality.VERSION}.pt"
    cached = cache.exists()
    stages = []
    judged = timed(stages, "judge: read from the cache" if cached else "judge: trained (once; then cached)",
                   lambda: quality.judge(dataset))
    samples = sampling.blended_digits(dataset.train, dataset.train_labels, args.samples, seed=0)
    reference = dataset.test
    fake = timed(stages, f"features of {len(samples):,} samples", lambda: judged.features(samples))
    real = timed(stages, f"features of {len(reference):,} reference images", lambda: judged.features(reference))
    distance = timed(stages, "Fréchet distance (128-D, float64)", lambda: quality.frechet_distance(fake, real))
    neighbours = timed(stages, f"precision and recall (k = {quality.K})",
                       lambda: quality.precision_recall(real, fake, quality.K))
    rate = timed(stages, "judged rate and coverage", lambda: quality.digit_rate(judged, samples, classes=judged.classes))
    measures = sum(wall for stage, wall, _ in stages[1:])
    print(f"Data: {name} ({len(reference):,} test images as the reference), {len(samples):,} blends of two "
          f"training images as the samples; torch threads {args.threads}; judge test accuracy "
          f"{judged.test_accuracy:.1%}. One run, each stage timed once.\n")
    print(table(["stage", "wall s", "CPU s"],
                [[stage, f"{wall:.2f}", f"{cpu:.2f}"] for stage, wall, cpu in stages]
                + [["**the measures (all stages after the judge)**", f"**{measures:.2f}**", ""]]))
    print(f"\nFor the record (blends, not a generator): Fréchet distance {distance:.1f}, precision "
          f"{neighbours['precision']:.3f}, recall {neighbours['recall']:.3f}, judged rate {rate['digit_rate']:.3f}.")
    print(f"\nEvery stage is linear in the number of images except precision and recall, which compute all "
          f"{len(samples):,} × {len(reference):,} distances twice (each set's k-th-neighbour radii, then the cross "
          f"distances) in batches of 2,048 rows. The judge is trained once per data set and then read from the "
          f"cache (`pyro_vae.quality.judge`); training it is the one large cost (a first run shows it above).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"dataset": name, "samples": len(samples), "reference": len(reference),
                       "judge_cached": cached, "measures_seconds": measures,
                       "stages": {stage: {"wall": wall, "cpu": cpu} for stage, wall, cpu in stages}}, f, indent=1)


if __name__ == "__main__":
    main()
