"""Data larger than memory: a uint8 .npy of several GB trained from its file, and the cost of streaming.

    .venv/bin/python benchmarks/streamed_data.py [--gigabytes 3.2] [--repeats 3] [--json FILE]

1. Peak memory. A synthetic uint8 .npy of ``--gigabytes`` (28x28 images, random bytes) is written to
   a temporary folder, then ``pyro-vae train --dataset big.npy`` trains one epoch on it in a fresh
   process (784-64-8 VAE, batch 1024, evaluation and figures as the command makes them). The peak
   resident memory of that process (``ru_maxrss`` of the child) is printed beside the file's size.
   ``--stream auto`` reads a .npy over 1 GiB batch by batch (``os.pread``: the page cache holds the
   file, not the process), so the peak stays far below the file's size; the same file read into memory
   would need about 4.4 times its size (float32 rows and their copy).
2. Epoch time. On data that fits (100,000 images, 78 MB), one epoch of ``fit`` with the same network
   from the file (``--stream always``) and from memory (``--stream never``), paired rounds side by side
   in one run; the median ratio streamed / in memory is printed with its interval (target: ≤ 1.2).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import median_interval, parse_args  # noqa: E402

NET = ["--hidden", "64", "--latent-dim", "8"]


def write_images(path: Path, rows: int, chunk: int = 200_000) -> None:
    """``rows`` random 28x28 uint8 images, written chunk by chunk (never all in memory)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(rows, 28, 28))
    rng = np.random.default_rng(0)
    for start in range(0, rows, chunk):
        out[start:start + chunk] = rng.integers(0, 256, (min(chunk, rows - start), 28, 28), dtype=np.uint8)
    out.flush()
    del out


def train_once(data: Path, out: Path, stream: str, batch: int, threads: int) -> tuple[float, int]:
    """(the epoch's seconds as metrics.jsonl records them, peak RSS in bytes) of one ``pyro-vae train`` epoch in a
    fresh process."""
    script = (f"import sys, torch; torch.set_num_threads({threads}); from pyro_vae import cli; "
              "sys.exit(cli.main(sys.argv[1:]))")
    argv = [sys.executable, "-c", script, "train", "--dataset", str(data), "--stream", stream, *NET,
            "--batch-size", str(batch), "--epochs", "1", "--device", "cpu", "--quiet", "--no-figures",
            "--likelihood", "bernoulli", "--out", str(out), "--overwrite"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child so far
    seconds = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])["seconds"]
    return seconds, max(peak, before) * 1024


def main() -> None:
    args = parse_args(__doc__, lambda p: p.add_argument("--gigabytes", type=float, default=3.2))
    rows = int(args.gigabytes * 1e9 / 784)
    report = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        # 2. epoch time on data that fits, first (the children's peak RSS only grows)
        small = tmp / "fits.npy"
        write_images(small, 100_000)
        ratios, times = [], {"always": [], "never": []}
        for _ in range(args.repeats):
            pair = {}
            for stream in ("never", "always"):
                pair[stream], _ = train_once(small, tmp / f"run-{stream}", stream, 256, args.threads)
                times[stream].append(pair[stream])
            ratios.append(pair["always"] / pair["never"])
        low, high, cover = median_interval(ratios)
        median = float(np.median(ratios))
        print(f"epoch on 100,000 images (78 MB): in memory {np.median(times['never']):.1f} s, from the file "
              f"{np.median(times['always']):.1f} s; ratio streamed / in memory {median:.2f} "
              f"({cover:.0%} interval {low:.2f}–{high:.2f}, {len(ratios)} pairs; target ≤ 1.2)")
        report.update(epoch_ratio=median, epoch_ratio_low=low, epoch_ratio_high=high, pairs=len(ratios))
        # 1. peak memory on a file larger than the machine would want to hold as floats
        big = tmp / "big.npy"
        started = time.perf_counter()
        write_images(big, rows)
        size = big.stat().st_size
        print(f"wrote {size / 1e9:.2f} GB ({rows:,} images) in {time.perf_counter() - started:.0f} s")
        seconds, peak = train_once(big, tmp / "run-big", "auto", 1024, args.threads)
        print(f"one epoch from the file: {seconds:.0f} s, peak resident memory {peak / 1e9:.2f} GB "
              f"= {peak / size:.2f} × the file's size")
        report.update(file_bytes=size, peak_rss_bytes=peak, peak_over_file=peak / size, big_epoch_seconds=seconds)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
