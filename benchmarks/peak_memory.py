"""Peak resident memory (RSS) of a training epoch and of the IS log-likelihood at K = 50, 500, 5000.

    .venv/bin/python benchmarks/peak_memory.py [--threads N] [--seconds 10]

Each case runs in a fresh Python process, watched from outside (``VmHWM`` in /proc: the peak RSS,
reset once data and model are loaded, so the peak is the work's own).
The training epoch runs to the end: ``fit`` for one epoch, evaluation included, on 60,000 images
with the 784-400-50 Gaussian VAE, batch 256. The K = 5000 evaluation of 10,000 test images would take
far longer than a benchmark may (50 million decoder passes), so each evaluation case is stopped after
``--seconds`` (at the throughputs measured in loglik_throughput.py, one to a few passes). Every pass
holds at most ``max_pairs`` (image, sample) pairs and the passes are alike, so the peak is set in the
first one and does not grow with the images still to go; the K rows show it does not grow with K either.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time

from _common import table

HERE = os.path.dirname(os.path.abspath(__file__))


def child(case: str, threads: int) -> None:
    import torch

    from _common import BIG, build, training_images
    from pyro_vae.evaluate import log_likelihood
    from pyro_vae.train import fit

    torch.set_num_threads(threads)
    train, test, _ = training_images()
    if case != "train":
        train = None  # the evaluation needs the test images only; freeing the rest lowers the baseline
        gc.collect()
    model, guide = build("gaussian", BIG)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS: loading the data had its own, higher, peak
    print(json.dumps({"baseline_mib": current_rss_mib()}), flush=True)
    if case == "train":
        fit(model, guide, train, test_data=test, epochs=1, batch_size=256, device="cpu", quiet=True)
    else:
        num_samples, max_pairs = (int(v) for v in case.split(":")[1:])
        model.eval(), guide.eval()
        kwargs = {"max_pairs": max_pairs} if max_pairs else {}
        log_likelihood(model, guide, test, num_samples, **kwargs)
    print(json.dumps({"done": True}), flush=True)


def vm_hwm_mib(pid: int, key: str = "VmHWM") -> float | None:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def current_rss_mib() -> float:
    return vm_hwm_mib(os.getpid(), "VmRSS")


def watch(case: str, threads: int, seconds: float) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "peak_memory.py"), "--child", case,
                             "--threads", str(threads)], stdout=subprocess.PIPE, text=True, cwd=HERE)
    baseline = json.loads(proc.stdout.readline())["baseline_mib"]
    measured_from = time.perf_counter()
    peak, finished = baseline, False
    while True:
        hwm = vm_hwm_mib(proc.pid)
        peak = max(peak, hwm or 0)
        if proc.poll() is not None:
            finished = proc.returncode == 0
            break
        if time.perf_counter() - measured_from > seconds:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait()
            break
        time.sleep(0.1)
    return {"baseline": baseline, "peak": peak, "finished": finished, "seconds": time.perf_counter() - started}


def main():
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--child") + 1], int(sys.argv[sys.argv.index("--threads") + 1]))
        return
    sys.path.insert(0, HERE)
    from _common import log, parse_args, write_json

    args = parse_args(__doc__.splitlines()[0], lambda p: p.add_argument("--seconds", type=float, default=10))
    cases = [("training epoch (fit, 60,000 images, evaluation included)", "train", 600),
             ("log_likelihood K=50, 10,000 images", "eval:50:0", args.seconds),
             ("log_likelihood K=500, 10,000 images", "eval:500:0", args.seconds),
             ("log_likelihood K=5000, 10,000 images", "eval:5000:0", args.seconds),
             ("log_likelihood K=5000, 10,000 images, max_pairs=65536 (before)", "eval:5000:65536", args.seconds)]
    rows, results = [], {}
    for label, case, seconds in cases:
        log(f"peak_memory: {label}")
        r = watch(case, args.threads, seconds)
        results[case] = r
        status = "ran to the end" if r["finished"] else f"stopped after {seconds:.0f} s"
        rows.append([label, f"{r['baseline']:.0f}", f"**{r['peak']:.0f}**", f"{r['peak'] - r['baseline']:.0f}",
                     status])
    print(f"Peak RSS (VmHWM) in MiB, one fresh process per case; torch threads: {args.threads}. "
          "Baseline: the RSS after imports, data and model, where the peak is reset (``/proc/self/clear_refs``).\n")
    print(table(["case", "baseline MiB", "peak MiB", "peak − baseline", "run"], rows))
    write_json(args, results)


if __name__ == "__main__":
    main()
