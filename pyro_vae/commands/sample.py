"""pyro-vae sample RUN: decode draws z ~ p(z) into images (.png grid) or an array (.npy)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pyro_vae import plots, runs
from pyro_vae.commands.options import positive_int
from pyro_vae.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help="decode draws from the prior p(z) = N(0, I)",
                       description="Draw z ~ p(z) = N(0, I) and decode E[x|z] with the run's decoder f.")
    p.add_argument("run_dir", metavar="RUN", help="a run folder written by pyro-vae train")
    p.add_argument("-n", "--num-samples", type=positive_int, default=64, help="how many samples (default 64)")
    p.add_argument("--out", required=True, help="a .png (image grid) or .npy (array of rows) file to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws")
    p.set_defaults(run=run)


def run(args) -> None:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise UserError(f"--out {args.out!r}: write a .png image grid or a .npy array")
    if not out.parent.is_dir():
        raise UserError(f"--out {args.out!r}: folder {str(out.parent)!r} does not exist")
    result = runs.load(args.run_dir)
    images = plots.generate_samples(result.model, args.num_samples, args.seed)
    if out.suffix == ".npy":
        tmp = out.with_name(f".{out.stem}.tmp.npy")
        np.save(tmp, images.cpu().numpy())
        tmp.replace(out)
    else:
        grid = plots.image_grid(images, result.config["shape"], rows=max(1, int(np.sqrt(args.num_samples))))
        plots.show_grid(grid, f"{args.num_samples} draws z ~ N(0, I)", out)
    print(json.dumps({"out": str(out), "num_samples": args.num_samples}))
