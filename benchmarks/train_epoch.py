"""Training epoch: our ``fit`` against a hand-written PyTorch loop and a loop in the style of Pyro's VAE example.

    .venv/bin/python benchmarks/train_epoch.py [--threads N] [--repeats 3] [--target-rounds 20] [--likelihoods bernoulli gaussian]

784-400-50 MLP VAE, batch 256, Adam(lr 1e-3), one epoch over 60,000 images (Fashion-MNIST from the
Debian package, else MNIST-5k repeated). All variants train the same networks (same initial weights):

- hand-written: data in memory, batches by index, analytic KL, the likelihood's loss written out
  (BCE on logits / squared error, each torch's fused kernel: ``binary_cross_entropy_with_logits``,
  ``mse_loss``), the same optimizer as ``fit`` (``torch.optim.Adam``, fused kernel); once more with
  ``torch.optim.Adam``'s defaults (not fused), what a PyTorch user writes by default, and for the
  Gaussian once more with the squared error as ``(x - f).pow(2).sum()`` (three passes, not one);
- ``fit``: ``pyro_vae.train.fit(model, guide, x, epochs=1, batch_size=256, evaluator=None)`` on the
  default VAE (``runs.build``), i.e. the real trainer, with its default objective (the sync-free
  ``Trace_ELBO``: Monte Carlo KL) and with ``TraceMeanField_ELBO`` (analytic KL, like the hand loop);
  once more with the textbook distributions in place of ``pyro_vae.distributions`` (``Normal(...).to_event(1)``
  for p(z), q(z|x) and the Gaussian p(x|z)), to show what those save;
- Pyro example style: ``DataLoader`` over a dataset that turns each image into a tensor with
  ``transforms.ToTensor()`` (as ``torchvision.datasets.FashionMNIST`` does), ``SVI`` with
  ``pyro.optim.Adam`` and ``Trace_ELBO``, ``pyro.module``, ``Bernoulli(probs=sigmoid(f))``.

``fit`` evaluates ELBO parts after every epoch; that is switched off here (``evaluator=None``) and
timed on its own below the table.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import pyro
import pyro.distributions as dist
import pyro.infer

from _common import (BIG, Timer, build, interval_text, log, paired, parse_args, summary, table,
                     training_images, write_json)
from pyro_vae import elbos
from pyro_vae.evaluate import elbo_parts
from pyro_vae.optimizers import adam as default_optimizer
from pyro_vae.train import fit
from pyro_vae.models.likelihoods import Gaussian
from pyro_vae.models.vae import VAE

BATCH, LR, C = 256, 1e-3, 0.1
TARGETS = ("fit (default: sync-free Trace_ELBO)", "fit, TraceMeanField_ELBO (analytic KL)")


def hand_written_epoch(likelihood: str, x: torch.Tensor, seed: int, net: dict = BIG, adam_defaults=False,
                       unfused_squares=False) -> None:
    """The loop a PyTorch user writes: five lines of loss, no framework."""
    model, guide = build(likelihood, net, C, seed)
    encoder, decoder = guide.encoder.to(x.device), model.decoder.to(x.device)
    params = [*encoder.parameters(), *decoder.parameters()]
    opt = torch.optim.Adam(params, lr=LR) if adam_defaults else default_optimizer(params, LR)
    n = x.shape[0]
    for idx in torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(x.device).split(BATCH):
        xb = x[idx]
        mu, sigma = encoder(xb)
        z = mu + sigma * torch.randn_like(mu)
        f = decoder(z)
        if likelihood == "bernoulli":
            reconstruction = F.binary_cross_entropy_with_logits(f, xb, reduction="sum")
        else:
            squares = (xb - f).pow(2).sum() if unfused_squares else F.mse_loss(f, xb, reduction="sum")
            reconstruction = squares / (2 * C) + xb.numel() / 2 * math.log(2 * math.pi * C)
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 1 - 2 * sigma.log()).sum()
        loss = (reconstruction + kl) * (n / xb.shape[0])  # the full data set's −ELBO, as fit scales it
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def fit_epoch(likelihood: str, x: torch.Tensor, seed: int, objective=None, textbook=False, net: dict = BIG) -> None:
    model, guide = build(likelihood, net, C, seed)
    if textbook:
        model, guide = textbook_vae(model, guide)
    fit(model, guide, x, epochs=1, batch_size=BATCH, lr=LR, evaluator=None, device=x.device, quiet=True,
        seed=seed, objective=objective)


class PerPixelNormal(nn.Module):
    """N(f, cI) as ``Normal(f, √c).to_event(1)``, σ broadcast to every pixel."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, f):
        return dist.Normal(f, self.c ** 0.5).to_event(1)

    def mean(self, f):
        return f


class TextbookVAE(VAE):
    """The default VAE with p(z) written ``Normal(0, 1).to_event(1)``."""

    def prior(self, x):
        return dist.Normal(x.new_zeros(self.latent_dim), x.new_ones(self.latent_dim)).to_event(1)


class TextbookGuide(nn.Module):
    """The default encoder guide with q(z|x) written ``Normal(μ, σ).to_event(1)``."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        mu, sigma = self.encoder(x)
        with pyro.plate("data", x.shape[0], device=x.device):
            return pyro.sample("z", dist.Normal(mu, sigma).to_event(1))


def textbook_vae(model, guide):
    """The same networks, with torch's Normal for every Gaussian (the Gaussian likelihood too)."""
    likelihood = PerPixelNormal(C) if isinstance(model.likelihood, Gaussian) else model.likelihood
    return TextbookVAE(model.decoder, model.latent_dim, likelihood), TextbookGuide(guide.encoder)


class ImageFolderLike(Dataset):
    """What ``torchvision.datasets.FashionMNIST`` does per item: uint8 image → PIL → ``ToTensor()``."""

    def __init__(self, x: torch.Tensor):
        from torchvision import transforms

        self.images = (x * 255).round().to(torch.uint8).reshape(-1, 28, 28).numpy()
        self.to_tensor = transforms.ToTensor()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        return self.to_tensor(Image.fromarray(np.asarray(self.images[i]), mode="L")), 0


class ExampleVAE(nn.Module):
    """Model and guide as in Pyro's examples/vae/vae.py (pyro.module, probs, a plate), our networks."""

    def __init__(self, likelihood: str, seed: int):
        super().__init__()
        model, guide = build(likelihood, BIG, C, seed)
        self.encoder, self.decoder, self.likelihood = guide.encoder, model.decoder, likelihood

    def model(self, x):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0]):
            z_loc = x.new_zeros(torch.Size((x.shape[0], BIG["latent_dim"])))
            z_scale = x.new_ones(torch.Size((x.shape[0], BIG["latent_dim"])))
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            f = self.decoder(z)
            if self.likelihood == "bernoulli":
                obs = dist.Bernoulli(torch.sigmoid(f), validate_args=False).to_event(1)
            else:
                obs = dist.Normal(f, C ** 0.5).to_event(1)
            pyro.sample("obs", obs, obs=x.reshape(-1, 784))

    def guide(self, x):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = self.encoder(x.reshape(-1, 784))
            pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))


def pyro_example_epoch(likelihood: str, dataset: Dataset, seed: int) -> None:
    pyro.clear_param_store()
    vae = ExampleVAE(likelihood, seed)
    svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": LR}), loss=pyro.infer.Trace_ELBO())
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(seed))
    epoch_loss = 0.0
    for images, _ in loader:
        epoch_loss += svi.step(images)  # a float: the example reads the loss back every step


def variants(likelihood: str, x: torch.Tensor, example_data: Dataset) -> dict:
    out = {
        "hand-written PyTorch": lambda: hand_written_epoch(likelihood, x, 0),
        "hand-written PyTorch, torch.optim.Adam defaults (not fused)":
            lambda: hand_written_epoch(likelihood, x, 0, adam_defaults=True),
        TARGETS[0]: lambda: fit_epoch(likelihood, x, 0),
        TARGETS[1]: lambda: fit_epoch(likelihood, x, 0, elbos.TraceMeanField_ELBO()),
        "fit, textbook Normal(...).to_event(1) distributions": lambda: fit_epoch(likelihood, x, 0, textbook=True),
    }
    if likelihood == "gaussian":
        out["hand-written PyTorch, squared error as (x - f).pow(2).sum()"] = \
            lambda: hand_written_epoch(likelihood, x, 0, unfused_squares=True)
    if likelihood == "bernoulli":  # the sync-free ELBO against Pyro's own, on one likelihood to save time
        out["fit, Pyro's own Trace_ELBO"] = lambda: fit_epoch(likelihood, x, 0, pyro.infer.Trace_ELBO())
    out["Pyro example style (DataLoader, SVI)"] = lambda: pyro_example_epoch(likelihood, example_data, 0)
    return out


def on_gpu(variants: dict) -> dict:
    """The variants that run on a GPU (not the Pyro example's CPU DataLoader), each timed to the end of its
    kernels: CUDA launches are asynchronous, so a variant waits for the device before the clock stops."""
    def synchronized(run):
        return lambda: (run(), torch.cuda.synchronize())

    return {name: synchronized(run) for name, run in variants.items() if "DataLoader" not in name}


def main():
    def options(parser):
        parser.add_argument("--likelihoods", nargs="+", default=["bernoulli", "gaussian"])
        parser.add_argument("--rows", type=int, default=None, help="train on the first ROWS rows only (quick check)")
        parser.add_argument("--device", default="cpu", help="cpu, or cuda: every variant but the Pyro example's "
                                                            "DataLoader, with the data on the GPU (default: cpu)")

    args = parse_args(__doc__.splitlines()[0], options)
    x, test, source = training_images()
    x = x[:args.rows] if args.rows else x
    example_data = ImageFolderLike(x)
    device = torch.device(args.device)
    x, test = x.to(device), test.to(device)
    select = on_gpu if device.type == "cuda" else lambda variants: variants
    sections = [f"Data: {source}; {x.shape[0]:,} rows, batch {BATCH}, {math.ceil(x.shape[0] / BATCH)} steps "
                f"per epoch; device: {device}; torch threads: {args.threads}; {args.repeats} rounds, after a warm-up of 20 steps each, "
                f"then more rounds, to {args.target_rounds}, for the variants held to the 1.10× target; in every "
                "round each variant runs right beside a hand-written epoch (first in one round, second in the "
                "next). \"vs hand\" is the median, over consecutive rounds, of the geometric mean of those two "
                "paired ratios, and the 95% interval is a distribution-free confidence interval for that median "
                "(order statistics, `_common.median_interval`).\n"]
    results = {}
    for likelihood in args.likelihoods:
        log(f"train_epoch: {likelihood}")
        runs = select(variants(likelihood, x, example_data))
        warm = select(variants(likelihood, x[:20 * BATCH], ImageFolderLike(x[:20 * BATCH].cpu())))
        for name, run in warm.items():
            run()
        base = "hand-written PyTorch"
        timer = paired(runs, base, args.repeats, Timer(), log)
        # the variants held to the 1.10× target: more rounds, so the interval can tell them from it
        paired({name: runs[name] for name in (base, *TARGETS)}, base, args.target_rounds - args.repeats, timer, log,
               first_round=args.repeats)
        results[likelihood] = summary(timer, runs, base)
        rows = [[name, f"{timer.median(name):.2f}", f"**{timer.ratio(name, base):.2f}×**",
                 interval_text(timer.interval(name)), f"{timer.median(name, cpu=True):.2f}",
                 f"{timer.ratio(name, base, cpu=True):.2f}×", len(timer.ratios.get(name, "")) or "",
                 " ".join(f"{r[0]:.2f}" for r in timer.ratios.get(name, []))] for name in runs]
        sections.append(f"**{likelihood.capitalize()} likelihood**\n\n" + table(
            ["variant", "wall s/epoch (median)", "vs hand (wall)", "95% interval", "CPU s/epoch", "vs hand (CPU)",
             "rounds", "wall ratio of each pair"], rows) + "\n")
        if likelihood == args.likelihoods[0]:
            model, guide = (m.to(device) for m in build(likelihood, BIG, C))
            evaluation = Timer()  # at fit's evaluation batch size (each call reads its numbers back)
            evaluation.time("eval", lambda: (elbo_parts(model, guide, x[:10_000]), elbo_parts(model, guide, test)))
            sections.append(f"fit's per-epoch evaluation (``elbo_parts`` on 10,000 training + 10,000 test rows, "
                            f"{likelihood}), excluded above: {evaluation.median('eval'):.2f} s wall.\n")
            results["evaluation_seconds"] = evaluation.median("eval")
    print("\n".join(sections))
    write_json(args, results)


if __name__ == "__main__":
    main()
