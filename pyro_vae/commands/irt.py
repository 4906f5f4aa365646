"""pyro-vae irt: exam analysis by item response theory, fitted by SVI like the VAE.

Writes to the run folder: config.json, metrics.jsonl, checkpoint.pt (from ``fit``), irt.json (item
table, marginal log-likelihood, ELBO), abilities.csv and figures/icc.png; prints the item table.
"""

from __future__ import annotations

import csv
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

from pyro_vae import exams, irt_reference
from pyro_vae.commands.options import add_device, positive_float, positive_int
from pyro_vae.checkpoint import write_text
from pyro_vae.errors import UserError
from pyro_vae.evaluate import elbo_parts
from pyro_vae.guides.irt import AbilityEncoder, IRTGuide, ItemGuide, MeanFieldAbilities
from pyro_vae.models.irt import IRT, KINDS
from pyro_vae.train import fit


def add_parser(sub) -> None:
    p = sub.add_parser("irt", help="exam analysis: item response theory (1PL, 2PL, the lecture's model) by SVI",
                       description="Fit P(right) = σ(α_s β_t) (lecture), σ(θ_s − b_t) (1pl) or σ(a_t(θ_s − b_t)) "
                                   "(2pl) to a students × items answer matrix by SVI; missing answers are masked "
                                   "out of the likelihood. Abilities get an amortized encoder or a mean-field guide.")
    p.add_argument("--data", default="lsat", help="lsat (shipped: 1,000 examinees × 5 items), a .csv answer matrix "
                                                 "(0/1/empty, optional header) or a py-irt .jsonl file (default lsat)")
    p.add_argument("--model", choices=KINDS, default="2pl", help="the item response function (default 2pl)")
    p.add_argument("--guide", choices=["amortized", "meanfield"], default="amortized",
                   help="q(ability): an encoder of the answers and their mask (scores new students), or free "
                        "parameters per student (default amortized)")
    p.add_argument("--items", choices=["latent", "point"], default="latent",
                   help="item parameters: a Normal posterior per item (with sd), or a point estimate (MAP) "
                        "(default latent)")
    p.add_argument("--epochs", type=positive_int, default=500, help="passes over the students (default 500)")
    p.add_argument("--batch-size", type=positive_int, help="students per SVI step (default: all, at most 1000)")
    p.add_argument("--lr", type=positive_float, default=0.2, help="Adam learning rate, decayed over the last third "
                                                                 "of the epochs (default 0.2)")
    p.add_argument("--num-particles", type=positive_int, default=1,
                   help="ability draws per student and step in the ELBO estimate (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_device(p)
    p.add_argument("--out", default="runs/irt", help="run folder (default runs/irt)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--no-figures", action="store_true", help="skip the item characteristic curves")
    p.add_argument("--verbose", action="store_true", help="the trainer's progress bar and line per epoch")
    p.add_argument("--quiet", action="store_true", help="print only the results")
    p.set_defaults(run=run)


def build(config: dict) -> tuple[IRT, IRTGuide]:
    """config → (model, guide): the run folder's config.json alone rebuilds both."""
    model = IRT(config["num_items"], config["kind"])
    abilities = AbilityEncoder(config["num_items"]) if config["guide"] == "amortized" \
        else MeanFieldAbilities(config["num_students"])
    return model, IRTGuide(ItemGuide(model.item_sites, config["num_items"], config["items"] == "point"), abilities)


def decay(epochs: int):
    """The learning rate: constant for two thirds of the epochs, then linearly down to 1%."""
    return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: min(1.0, 3 * (1 - e / epochs) + 0.01))


def train(data: exams.ExamData, kind: str = "2pl", guide: str = "amortized", items: str = "latent",
          epochs: int = 500, batch_size: int | None = None, lr: float = 0.2, num_particles: int = 1, seed: int = 0,
          **fit_options):
    """Builds and fits model and guide on ``data`` by SVI (TraceMeanField_ELBO: the KLs in closed form)."""
    config = {"model": "irt", "kind": kind, "guide": guide, "items": items, "num_items": data.shape[1],
              "num_students": data.shape[0], "data": data.name, "epochs": epochs, "lr": lr, "seed": seed,
              "num_particles": num_particles,
              "batch_size": batch_size or min(data.shape[0], 1000)}
    pyro.set_rng_seed(seed)
    model, q = build(config)
    objective = TraceMeanField_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1,
                                    max_plate_nesting=2)
    history = fit(model, q, data.tensors(with_index=guide == "meanfield"), objective=objective,
                  epochs=epochs, batch_size=config["batch_size"], lr=lr, scheduler=decay(epochs), seed=seed,
                  config=config, checkpoint_every=epochs, evaluator=None, **fit_options)
    return model.cpu().eval(), q.cpu().eval(), history


@torch.no_grad()
def item_estimates(model: IRT, guide: IRTGuide) -> dict:
    """Posterior mean (and sd when items are latent) of every item parameter, as numpy arrays."""
    out = {}
    for name in model.item_sites:
        q = guide.items.posterior(name)
        out[name] = q.mean.numpy()
        if not guide.items.point:
            out[f"{name}_sd"] = q.stddev.numpy()
    if model.kind == "lecture":
        out["mu"] = float(model.mu)
        q = guide.items.posterior("beta")
        out["difficulty"] = (1 / q.mean).numpy() if guide.items.point else np.exp(-q.loc + q.scale**2 / 2).numpy()
    return out


@torch.no_grad()
def abilities(guide: IRTGuide, data: exams.ExamData) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of q(ability) for every student."""
    loc, scale = guide.abilities(data.answers, data.mask, torch.arange(data.shape[0]))
    return loc[:, 0].numpy(), scale[:, 0].numpy()


def summarize(model: IRT, guide: IRTGuide, data: exams.ExamData, seed: int = 0) -> dict:
    """The item table, the exact marginal log-likelihood at the item estimates, and the ELBO."""
    estimates = item_estimates(model, guide)
    log_likelihood = irt_reference.marginal_log_likelihood(model.kind, estimates, data.answers.numpy(),
                                                           data.mask.numpy()).sum()
    torch.manual_seed(seed)
    elbo = elbo_parts(model, guide, data.tensors(with_index=isinstance(guide.abilities, MeanFieldAbilities)),
                      batch_size=data.shape[0])["elbo"] * data.shape[0]
    proportions = data.proportions().numpy()
    columns = [c for c in ("difficulty", "difficulty_sd", "discrimination", "discrimination_sd", "beta", "beta_sd")
               if c in estimates]
    table = [{"item": item, "proportion_correct": round(float(proportions[t]), 4),
              "answered": int(data.mask[:, t].sum()),
              **{c: round(float(estimates[c][t]), 4) for c in columns}} for t, item in enumerate(data.items)]
    return {"data": data.name, "students": data.shape[0], "items": data.shape[1],
            "missing_fraction": round(1 - float(data.mask.float().mean()), 4), "model": model.kind,
            "item_parameters": "point" if guide.items.point else "latent",
            **({"mu": round(estimates["mu"], 4)} if "mu" in estimates else {}),
            "marginal_log_likelihood": round(float(log_likelihood), 3), "elbo": round(float(elbo), 3),
            "item_table": table}


def item_curves(model: IRT, guide: IRTGuide, data: exams.ExamData, ability_means: np.ndarray, path: Path):
    """P(right | ability) for every item at its estimate (posterior mean), above a histogram of the
    students' ability means."""
    from pyro_vae.plots import plt, save_figure  # matplotlib only when a figure is drawn

    center = float(model.mu.detach()) if model.kind == "lecture" else 0.0  # the prior mean ability, ± 4 prior sds
    grid = torch.linspace(min(center - 4, float(ability_means.min()) - 0.5),
                          max(center + 4, float(ability_means.max()) + 0.5), 200)
    items = {name: guide.items.posterior(name).mean.detach() for name in model.item_sites}
    with torch.no_grad():
        curves = torch.sigmoid(model.logits(grid[:, None], items)).numpy()
    fig, (ax, rug) = plt.subplots(2, 1, figsize=(6, 4.5), sharex=True, height_ratios=(4, 1))
    for t, item in enumerate(data.items[:20]):  # more than 20 curves are not readable
        ax.plot(grid.numpy(), curves[:, t], label=item)
    ax.set_ylabel("P(right | ability)")
    ax.set_title(f"item characteristic curves ({model.kind})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    rug.hist(ability_means, bins=40, color="grey")
    rug.set_xlabel("ability; below: histogram of the students' posterior means")
    return save_figure(fig, path)


def format_table(summary: dict) -> str:
    rows = summary["item_table"]
    columns = list(rows[0])
    widths = [max(len(c), *(len(_cell(r[c])) for r in rows)) for c in columns]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(_cell(r[c]).rjust(w) for c, w in zip(columns, widths)) for r in rows]
    extra = f"  mu {summary['mu']:.3f}" if "mu" in summary else ""
    lines.append(f"{summary['model']} on {summary['data']}: {summary['students']} students × {summary['items']} items, "
                 f"{summary['missing_fraction']:.1%} missing{extra}")
    lines.append(f"marginal log-likelihood {summary['marginal_log_likelihood']:.3f} (Gauss–Hermite, at the item "
                 f"estimates)  ELBO {summary['elbo']:.3f}")
    return "\n".join(lines)


def _cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@contextmanager
def one_thread():
    """One intra-op CPU thread: an IRT step works on batches of at most 1,000 × items numbers, too small
    for threads to pay, and on a busy machine their spin-waits made fits ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run(args) -> None:
    data = exams.load(args.data)
    out = Path(args.out)
    if (out / "checkpoint.pt").exists() and not args.overwrite:
        raise UserError(f"{str(out)!r} already holds a run: pass --overwrite to replace it, or choose another --out")
    if args.batch_size is not None and args.batch_size > data.shape[0]:
        raise UserError(f"--batch-size {args.batch_size} is larger than the {data.shape[0]} students: "
                        f"use --batch-size {min(data.shape[0], 1000)} or less")
    if not args.quiet:
        print(f"fitting {args.model} ({args.guide} abilities, {args.items} items) to {data.name}: "
              f"{data.shape[0]} students × {data.shape[1]} items, {args.epochs} epochs ...", flush=True)
    with one_thread():
        model, guide, history = train(data, args.model, args.guide, args.items, epochs=args.epochs,
                                      batch_size=args.batch_size, lr=args.lr, num_particles=args.num_particles,
                                      seed=args.seed, device=args.device, out=out, overwrite=args.overwrite,
                                      quiet=not args.verbose)
    if not args.quiet:
        print(f"done in {sum(m['seconds'] for m in history):.1f}s; final loss per student "
              f"{history[-1]['train_loss']:.4f}")
    summary = summarize(model, guide, data, args.seed)
    means, sds = abilities(guide, data)
    with open(out / "abilities.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "ability", "ability_sd"])
        writer.writerows([s, f"{m:.4f}", f"{d:.4f}"] for s, m, d in zip(data.students, means, sds))
    summary["abilities"] = {"file": "abilities.csv", "mean": round(float(means.mean()), 4),
                            "sd_of_means": round(float(means.std()), 4),
                            "mean_posterior_sd": round(float(sds.mean()), 4)}
    if not args.no_figures:
        item_curves(model, guide, data, means, out / "figures" / "icc.png")
    write_text(out / "irt.json", json.dumps(summary, indent=2) + "\n")
    print(format_table(summary))
    print(f"abilities: mean {means.mean():.3f}, sd of means {means.std():.3f}, mean posterior sd {sds.mean():.3f} "
          f"→ {out / 'abilities.csv'}; item table → {out / 'irt.json'}")
