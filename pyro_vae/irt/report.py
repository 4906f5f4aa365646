"""What an IRT run reports: item estimates, abilities, the item table, and the files it writes.

    irt.json        the item table, the marginal log-likelihood at the item estimates, the ELBO
    abilities.csv   student, ability (posterior mean), ability_sd
    figures/icc.png item characteristic curves over a histogram of the abilities
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import torch

from pyro_vae.checkpoint import write_text
from pyro_vae.evaluate import elbo_parts
from pyro_vae.guides.irt import IRTGuide, MeanFieldAbilities
from pyro_vae.irt import reference
from pyro_vae.irt.exams import ExamData
from pyro_vae.models.irt import IRT


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


def item_parameters(model: IRT, guide: IRTGuide) -> dict:
    """The item parameters at their estimates, in ``reference``'s form (plus μ for the lecture model)."""
    estimates = item_estimates(model, guide)
    return {k: estimates[k] for k in (*model.item_sites, "mu") if k in estimates}


@torch.no_grad()
def abilities(guide: IRTGuide, data: ExamData) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of q(ability) for every student."""
    loc, scale = guide.abilities(data.answers, data.mask, torch.arange(data.shape[0]))
    return loc[:, 0].numpy(), scale[:, 0].numpy()


def summarize(model: IRT, guide: IRTGuide, data: ExamData, seed: int = 0) -> dict:
    """The item table, the exact marginal log-likelihood at the item estimates, and the ELBO."""
    estimates = item_estimates(model, guide)
    log_likelihood = reference.marginal_log_likelihood(model.kind, estimates, data.answers.numpy(),
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


def format_table(summary: dict) -> str:
    """The item table as aligned text, with the data, the model and the fit's measures below."""
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


def write_outputs(out: Path, model: IRT, guide: IRTGuide, data: ExamData, seed: int = 0,
                  figures: bool = True) -> dict:
    """irt.json, abilities.csv and (with ``figures``) figures/icc.png into the run folder; returns the summary."""
    out = Path(out)
    summary = summarize(model, guide, data, seed)
    means, sds = abilities(guide, data)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["student", "ability", "ability_sd"])
    writer.writerows([s, f"{m:.4f}", f"{d:.4f}"] for s, m, d in zip(data.students, means, sds))
    write_text(out / "abilities.csv", table.getvalue())
    summary["abilities"] = {"file": "abilities.csv", "mean": round(float(means.mean()), 4),
                            "sd_of_means": round(float(means.std()), 4),
                            "mean_posterior_sd": round(float(sds.mean()), 4)}
    if figures:
        from pyro_vae.irt.figures import item_curves

        item_curves(model, guide, data.items, means, out / "figures" / "icc.png")
    write_text(out / "irt.json", json.dumps(summary, indent=2) + "\n")
    return summary
