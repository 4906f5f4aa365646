"""The lecture, reproduced: runs every example in the lecture's order and writes all figures of
docs/lecture.md to docs/figures/, plus the printed numbers to docs/figures/numbers.json.

    make figures                    (= python examples/lecture.py)
    python examples/lecture.py --out /tmp/figures --quick     (one epoch per model: a smoke run)

Models that several examples share (the 2-D autoencoder and VAE, ...) are trained once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ORDER = ["pca", "linear_autoencoder", "autoencoder", "denoising", "latent_gaps", "ablation", "role_of_c",
         "reparameterization", "generation", "attribute_vector", "elbo_identity"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="figure folder (default docs/figures)")
    parser.add_argument("--quick", action="store_true", help="one epoch per model, to check the scripts run")
    args = parser.parse_args(argv)
    if args.quick:
        os.environ["PYRO_VAE_QUICK"] = "1"  # read by common.py when it is first imported, below
    import common

    out = args.out or common.FIGURES
    numbers, started = {}, time.perf_counter()
    for name in ORDER:
        began = time.perf_counter()
        numbers[name] = __import__(name).main(out)
        print(f"  ({name}: {time.perf_counter() - began:.0f}s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "numbers.json").write_text(json.dumps(numbers, indent=1, default=common._plain) + "\n")
    print(f"figures and numbers.json written to {out} in {time.perf_counter() - started:.0f}s")
    return numbers


if __name__ == "__main__":
    main()
