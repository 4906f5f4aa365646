"""pyro-vae sample RUN: decode draws z ~ p(z) into images (.png grid) or an array (.npy)."""

from __future__ import annotations

from pyro_vae import settings

NUM_SAMPLES, SEED = 64, 0


def add_parser(sub) -> None:
    """Adds ``sample`` to the subparsers."""
    p = sub.add_parser("sample", help="decode draws from the prior p(z) = N(0, I) (VAE runs)",
                       description="Draw z ~ p(z) = N(0, I) and decode E[x|z] with the run's decoder f. Program "
                                   "runs: z from the prior of the program's one per-example latent site, E[x|z] of its "
                                   "observed site holding the rows. Topic and IRT runs, and programs without such "
                                   "sites, have no decoder of examples: sample says so and exits 2.")
    p.add_argument("run_dir", metavar="RUN", help="a run folder written by pyro-vae train")
    p.add_argument("-n", "--num-samples", type=settings.argument_type("int", "positive"), default=NUM_SAMPLES,
                   help=f"how many samples (default {NUM_SAMPLES})")
    p.add_argument("--out", required=True, help="a .png (image grid) or .npy (array of rows) file to write")
    p.add_argument("--seed", type=int, default=SEED, help=f"seed of the draws (default {SEED})")
    p.set_defaults(run=run)


def run(args) -> None:
    """Writes decoded prior draws to --out and prints JSON."""
    import json

    from pyro_vae import plots, runs

    plots.check_output(args.out)
    result = runs.load(args.run_dir)
    images = result.sample(args.num_samples, args.seed)
    plots.write_samples(images, result.config["shape"], args.out, f"{args.num_samples} draws z ~ N(0, I)")
    print(json.dumps({"out": str(args.out), "num_samples": args.num_samples}))
