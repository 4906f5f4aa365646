"""pyro-vae train: fit the lecture's VAE by SVI and write a run folder with figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyro
import torch

from pyro_vae import data as datasets
from pyro_vae import distributed, plots, runs
from pyro_vae.commands.options import add_device, nonnegative_float, nonnegative_int, positive_float, positive_int, sizes
from pyro_vae.checkpoint import interval
from pyro_vae.errors import UserError
from pyro_vae.models.likelihoods import LIKELIHOODS
from pyro_vae.objectives import ELBOS
from pyro_vae.train import fit, resolve_device

# model settings: on --resume they come from the run's config.json, and a different value is an error
MODEL_DEFAULTS = {"dataset": "mnist-5k", "latent_dim": 2, "likelihood": "gaussian", "c": 0.1,
                  "hidden": (512,), "network": "mlp"}
# training settings: on --resume the run's own, unless a flag is given (e.g. --epochs 40 to train longer)
TRAIN_DEFAULTS = {"epochs": 20, "batch_size": 128, "lr": 1e-3, "clip_norm": None, "seed": 0,
                  "checkpoint_every": "1epochs", "keep_last": 1}
# objective settings: like model settings, on --resume the saved ones, and a different value is an error
OBJECTIVE_DEFAULTS = {"elbo": "trace", "particles": 1, "beta": 1.0, "kl_warmup": 0, "free_bits": 0.0,
                      "binarize": None}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a VAE by SVI on the ELBO",
                       description="Train the lecture's VAE: p(z)=N(0,I), p(x|z)=N(f(z), cI) (or Bernoulli), "
                                   "with the amortized guide q_x(z)=N(μ(x), σ(x)²), by SVI on Trace_ELBO.")
    p.add_argument("--dataset", help="mnist-5k (offline default: 5,000 real MNIST digits), digits (sklearn 8x8), "
                                     "mnist, fashion-mnist, or a path to .npy/.npz or a folder of PNGs")
    p.add_argument("--data-dir", help="where mnist/fashion-mnist are looked for and downloaded")
    p.add_argument("--latent-dim", type=positive_int,
                   help="dimension of z (default 2, so codes and the decoded manifold can be drawn)")
    p.add_argument("--likelihood", choices=list(LIKELIHOODS),
                   help="p(x|z): gaussian N(f(z), cI) as in the lecture; gaussian-learned N(f(z), σ²I) with one "
                        "learned σ (σ-VAE; --c is its start); bernoulli on logits; continuous-bernoulli, a "
                        "density on [0, 1] (default gaussian)")
    p.add_argument("--c", type=positive_float,
                   help="observation variance c of the Gaussian likelihood; larger c weights the KL "
                        "regularizer more against reconstruction (default 0.1)")
    p.add_argument("--hidden", type=sizes, help="hidden widths of encoder and (mirrored) decoder, e.g. 512,256 "
                                                "(default 512)")
    p.add_argument("--network", choices=["mlp", "conv"], help="mlp, or conv for 28x28 images (default mlp)")
    p.add_argument("--elbo", choices=ELBOS,
                   help="trace: Trace_ELBO, Monte Carlo KL (the lecture); meanfield: TraceMeanField_ELBO, analytic "
                        "KL; iwae: importance-weighted bound over --particles samples (default trace)")
    p.add_argument("--particles", type=positive_int,
                   help="samples z ~ q(z|x) per example and step, vectorized (default 1)")
    p.add_argument("--beta", type=nonnegative_float,
                   help="weight β of the KL term (β-VAE): 0 keeps the reconstruction term only (default 1)")
    p.add_argument("--kl-warmup", type=nonnegative_int,
                   help="ramp β linearly over N epochs: β·min(1, (epoch − 1)/N), so epoch 1 has β = 0 (default 0)")
    p.add_argument("--free-bits", type=nonnegative_float,
                   help="λ nats: the KL of each latent dimension below λ is not penalized (default 0)")
    p.add_argument("--binarize", choices=["dynamic"],
                   help="dynamic: draw binary pixels x ~ Bernoulli(grey level) for every training batch (the "
                        "test set is binarized once, with a fixed seed); for --likelihood bernoulli")
    p.add_argument("--epochs", type=positive_int, help="passes over the training data (default 20)")
    p.add_argument("--batch-size", type=positive_int,
                   help="examples per SVI step (default 128); under torchrun, the global batch over all processes")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--clip-norm", type=positive_float, help="clip the gradient norm to this value")
    p.add_argument("--seed", type=int, help="random seed; the same seed gives the same metrics on CPU (default 0)")
    add_device(p)
    p.add_argument("--out", default="runs/vae", help="run folder (default runs/vae)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with its saved settings: the same "
                        "trajectory as an uninterrupted run (give --epochs to train longer)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--checkpoint-every", type=checkpoint_interval,
                   help="N or Nepochs: checkpoint every N epochs; Nsteps: every N optimizer steps, also "
                        "mid-epoch (default 1epochs; the last epoch is always saved)")
    p.add_argument("--keep-last", type=positive_int,
                   help="also keep the last N checkpoints under checkpoints/ (default 1: only checkpoint.pt)")
    p.add_argument("--no-figures", action="store_true", help="skip drawing figures at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(run=run)


def checkpoint_interval(text: str) -> str:
    try:
        return str(interval(text))
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--checkpoint-every ")) from None


def saved_config(args) -> dict:
    """On --resume, the run's config.json; else {}."""
    if not args.resume:
        return {}
    path = Path(args.out) / "config.json"
    if not path.is_file():
        raise UserError(f"--resume: {args.out!r} is not a run folder (no config.json); "
                        "give the --out of an earlier run")
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"--resume: {str(path)!r} is not valid JSON ({type(error).__name__}); "
                        "the run folder is damaged, start a new --out") from None
    if not isinstance(saved, dict):
        raise UserError(f"--resume: {str(path)!r} is not a pyro-vae config; start a new --out")
    return saved


def training_options(args, saved: dict) -> dict:
    """epochs, batch_size, lr, clip_norm, seed: the flag, else (on --resume) the saved value, else the default."""
    return {key: getattr(args, key) if getattr(args, key) is not None else saved.get(key, default)
            for key, default in TRAIN_DEFAULTS.items()}


def fixed_settings(args, saved: dict, defaults: dict) -> dict:
    """Settings a run is tied to (model, objective): the flag, else (on --resume) the saved value, else the
    default; a flag that contradicts the run being resumed is an error, not a silent change."""
    config = {}
    for key, default in defaults.items():
        given, default = (list(v) if isinstance(v, tuple) else v for v in (getattr(args, key), default))
        if given is not None and key in saved and saved[key] != given:
            raise UserError(f"--resume: the run was trained with {key}={saved[key]!r}, not {given!r}; "
                            "drop the flag or start a new --out")
        config[key] = given if given is not None else saved.get(key, default)
    return config


def binarize_batch(batch: tuple) -> tuple:
    """Dynamic binarization: a fresh x ~ Bernoulli(grey level) each time a row is visited."""
    return (torch.bernoulli(batch[0]), *batch[1:])


def binarized_test(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The test set binarized once, the same way in every run and in ``pyro-vae evaluate``."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=generator)


def run(args) -> None:
    distributed.init_from_env()
    saved = saved_config(args)
    config = {"model": "vae", **fixed_settings(args, saved, MODEL_DEFAULTS),
              **fixed_settings(args, saved, OBJECTIVE_DEFAULTS)}
    if config["binarize"] and config["likelihood"] != "bernoulli":
        raise UserError(f"--binarize dynamic draws binary pixels, for --likelihood bernoulli, "
                        f"not {config['likelihood']}")
    objective = runs.objective(config)
    options = training_options(args, saved)
    device = distributed.local_device(resolve_device(args.device))
    dataset = datasets.load(config["dataset"], args.data_dir, seed=0)
    datasets.check_values(dataset.train, config["likelihood"])
    config.update(shape=list(dataset.shape), data_dir=args.data_dir, **options)
    pyro.set_rng_seed(options["seed"])
    model, guide = runs.build(config)
    test = binarized_test(dataset.test) if config["binarize"] else dataset.test
    history = fit(model, guide, dataset.train, test_data=test, **options, objective=objective,
                  transform=binarize_batch if config["binarize"] else None,
                  device=device, out=args.out, resume=args.resume, overwrite=args.overwrite, config=config,
                  quiet=args.quiet)
    if distributed.rank_and_world()[0] != 0:
        return
    if not args.no_figures:
        plots.all_figures(model, guide, dataset, history, Path(args.out) / "figures")
    last = history[-1] if history else {}
    print(json.dumps({"run": str(args.out), **{k: last[k] for k in ("epoch", "train_elbo", "test_elbo") if k in last}}))
