"""Peak host memory and time of ``evaluate.log_likelihood`` (the IS estimate of log p(x)).

    python benchmarks/is_memory.py                      # K = 5000 on 200 binary 28x28 images, CPU
    python benchmarks/is_memory.py --images 10000 --device cuda

Each pass holds at most ``max_pairs`` (sample, example) pairs, so the peak depends on max_pairs and the
network, not on K or the number of images: a short run measures the bound of the long one. To show that,
the estimate runs first on half the images (``peak_rss_mib_half``), then on all of them (``peak_rss_mib``):
the two peaks are equal when nothing grows with the number of passes (with the passes unvalidated,
one small result tensor kept per batch once took 200 images to 1.6 GiB and 400 to 2.4).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from pyro_vae import runs
from pyro_vae.evaluate import log_likelihood


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--max-pairs", type=int, default=None, help="pairs per pass (default: the estimator's own)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    model, guide = runs.build({"model": "vae", "shape": [1, 28, 28], "latent_dim": 10, "hidden": [512],
                               "likelihood": "bernoulli", "c": 0.1, "network": "mlp"})
    model, guide = model.to(args.device).eval(), guide.to(args.device).eval()
    x = torch.rand(args.images, 784, device=args.device).bernoulli()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    log_likelihood(model, guide, x[:max(1, args.images // 2)], num_samples=args.num_samples, max_pairs=args.max_pairs)
    half = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    estimate = log_likelihood(model, guide, x, num_samples=args.num_samples, max_pairs=args.max_pairs)
    report = {"images": args.images, "num_samples": args.num_samples, "max_pairs": args.max_pairs,
              "seconds": round(time.perf_counter() - started, 1), "peak_rss_mib_half": round(half),
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "rss_before_mib": round(before), "log_likelihood": estimate["log_likelihood"]}
    if args.device.startswith("cuda"):
        report["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2 ** 20)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
