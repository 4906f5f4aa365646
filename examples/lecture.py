"""The lecture, reproduced: runs every example in the lecture's order and writes all figures of
docs/lecture.md, plus the printed numbers to numbers.json, into one folder.

    make figures                                  (= python examples/lecture.py --out docs/figures)
    python examples/lecture.py                    (→ runs/examples/lecture/)
    python examples/lecture.py --out /tmp/figures --quick     (one epoch per model: a smoke run)
    python examples/lecture.py --out docs/figures --only pca_vs_autoencoder generation_quality
                                                  (reruns some examples; their keys in numbers.json are replaced)

Models that several examples share (the 2-D autoencoder and VAE, ...) are trained once. The companion
scripts (``COMPANIONS``: the exam model of docs/irt.md) run as their own processes with ``--out`` and add
their numbers to numbers.json, so docs/irt.md's numbers are checked like the lecture's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ORDER = ["pca", "linear_autoencoder", "pca_vs_autoencoder", "autoencoder", "denoising", "latent_gaps", "ablation",
         "role_of_c", "reparameterization", "generation", "generation_quality", "attribute_vector", "elbo_identity"]
COMPANIONS = {"exam_irt": "irt.json"}  # script: the file its --out folder gets


def companion(name: str) -> dict:
    """Runs examples/NAME.py in its own process with a temporary --out and returns the numbers it wrote."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, str(Path(__file__).resolve().parent / f"{name}.py"), "--out", out],
                       check=True)
        return json.loads((Path(out) / COMPANIONS[name]).read_text())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / "examples" / "lecture",
                        help="folder for the figures and numbers.json (default runs/examples/lecture; "
                             "`make figures` passes --out docs/figures)")
    parser.add_argument("--quick", action="store_true", help="one epoch per model, to check the scripts run")
    parser.add_argument("--only", nargs="+", choices=[*ORDER, *COMPANIONS], metavar="EXAMPLE",
                        help="run only these examples and replace only their entries of an existing numbers.json")
    args = parser.parse_args(argv)
    if args.quick:
        os.environ["PYRO_VAE_QUICK"] = "1"  # read by common.epochs
    import common

    out, path = args.out, args.out / "numbers.json"
    numbers = json.loads(path.read_text()) if args.only and path.exists() else {}
    started = time.perf_counter()
    for name in args.only or [*ORDER, *COMPANIONS]:
        began = time.perf_counter()
        numbers[name] = companion(name) if name in COMPANIONS else __import__(name).main(out)
        print(f"  ({name}: {time.perf_counter() - began:.0f}s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    ordered = {name: numbers[name] for name in [*ORDER, *COMPANIONS] if name in numbers}
    path.write_text(json.dumps(ordered, indent=1, default=common._plain) + "\n")
    print(f"figures and numbers.json written to {out} in {time.perf_counter() - started:.0f}s")
    return ordered


if __name__ == "__main__":
    main()
