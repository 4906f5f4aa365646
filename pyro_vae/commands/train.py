"""pyro-vae train: fit the lecture's VAE by SVI and write a run folder with figures."""

from __future__ import annotations

import json
from pathlib import Path

import pyro

from pyro_vae import data as datasets
from pyro_vae import distributed, plots, runs
from pyro_vae.commands.options import add_device, positive_float, positive_int, sizes
from pyro_vae.errors import UserError
from pyro_vae.train import fit, resolve_device

# model settings: on --resume they come from the run's config.json, and a different value is an error
MODEL_DEFAULTS = {"dataset": "mnist-5k", "latent_dim": 2, "likelihood": "gaussian", "c": 0.1,
                  "hidden": (512,), "network": "mlp"}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a VAE by SVI on the ELBO",
                       description="Train the lecture's VAE: p(z)=N(0,I), p(x|z)=N(f(z), cI) (or Bernoulli), "
                                   "with the amortized guide q_x(z)=N(μ(x), σ(x)²), by SVI on Trace_ELBO.")
    p.add_argument("--dataset", help="mnist-5k (offline default: 5,000 real MNIST digits), digits (sklearn 8x8), "
                                     "mnist, fashion-mnist, or a path to .npy/.npz or a folder of PNGs")
    p.add_argument("--data-dir", help="where mnist/fashion-mnist are looked for and downloaded")
    p.add_argument("--latent-dim", type=positive_int,
                   help="dimension of z (default 2, so codes and the decoded manifold can be drawn)")
    p.add_argument("--likelihood", choices=["gaussian", "bernoulli"],
                   help="p(x|z): gaussian N(f(z), cI) as in the lecture, or bernoulli on logits (default gaussian)")
    p.add_argument("--c", type=positive_float,
                   help="observation variance c of the Gaussian likelihood; larger c weights the KL "
                        "regularizer more against reconstruction (default 0.1)")
    p.add_argument("--hidden", type=sizes, help="hidden widths of encoder and (mirrored) decoder, e.g. 512,256 "
                                                "(default 512)")
    p.add_argument("--network", choices=["mlp", "conv"], help="mlp, or conv for 28x28 images (default mlp)")
    p.add_argument("--epochs", type=positive_int, default=20, help="passes over the training data (default 20)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="examples per SVI step (default 128)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--clip-norm", type=positive_float, help="clip the gradient norm to this value")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same metrics on CPU")
    add_device(p)
    p.add_argument("--out", default="runs/vae", help="run folder (default runs/vae)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--checkpoint-every", type=positive_int, default=1, help="checkpoint every N epochs (default 1)")
    p.add_argument("--keep-last", type=positive_int, default=1,
                   help="also keep the last N epoch checkpoints under checkpoints/ (default 1: only checkpoint.pt)")
    p.add_argument("--no-figures", action="store_true", help="skip drawing figures at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(run=run)


def model_config(args) -> dict:
    """The settings that rebuild the model; on --resume, the saved ones, checked against the flags given."""
    saved = {}
    if args.resume:
        path = Path(args.out) / "config.json"
        if not path.is_file():
            raise UserError(f"--resume: {args.out!r} is not a run folder (no config.json); "
                            "give the --out of an earlier run")
        saved = json.loads(path.read_text())
    config = {}
    for key, default in MODEL_DEFAULTS.items():
        given = getattr(args, key)
        given = list(given) if isinstance(given, tuple) else given
        if given is not None and key in saved and saved[key] != given:
            raise UserError(f"--resume: the run was trained with {key}={saved[key]!r}, not {given!r}; "
                            "drop the flag or start a new --out")
        config[key] = given if given is not None else saved.get(key, list(default) if isinstance(default, tuple)
                                                                  else default)
    return config


def run(args) -> None:
    distributed.init_from_env()
    config = {"model": "vae", **model_config(args)}
    device = distributed.local_device(resolve_device(args.device))
    dataset = datasets.load(config["dataset"], args.data_dir, seed=0)
    datasets.check_values(dataset.train, config["likelihood"])
    config.update(shape=list(dataset.shape), data_dir=args.data_dir, seed=args.seed,
                  batch_size=args.batch_size, lr=args.lr)
    pyro.set_rng_seed(args.seed)
    model, guide = runs.build(config)
    history = fit(model, guide, dataset.train, test_data=dataset.test, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, clip_norm=args.clip_norm, seed=args.seed,
                  device=device, out=args.out, resume=args.resume, overwrite=args.overwrite, config=config,
                  checkpoint_every=args.checkpoint_every, keep_last=args.keep_last, quiet=args.quiet)
    if distributed.rank_and_world()[0] != 0:
        return
    if not args.no_figures:
        plots.all_figures(model, guide, dataset, history, Path(args.out) / "figures")
    last = history[-1] if history else {}
    print(json.dumps({"run": str(args.out), **{k: last[k] for k in ("epoch", "train_elbo", "test_elbo") if k in last}}))
