"""Exam analysis on LSAT: a 2PL fitted by SVI next to the exact maximum marginal likelihood, and new
students scored by the amortized encoder without refitting.

    .venv/bin/python examples/exam_irt.py [--out FOLDER]     (writes FOLDER/irt.json; default runs/examples/exam_irt)
"""

import argparse
import json
from pathlib import Path

import torch

from pyro_vae.irt import exams
from pyro_vae.irt import reference
from pyro_vae.irt import fitting, report

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("runs/examples/exam_irt"),
                    help="folder for irt.json (default runs/examples/exam_irt)")
args = parser.parse_args()

data = exams.lsat()
with fitting.one_thread():
    model, guide, _ = fitting.train(data, "2pl", "amortized", "point", epochs=500, quiet=True)
svi = report.item_estimates(model, guide)
mml = reference.fit_mml("2pl", data.answers.numpy())

se = mml["standard_errors"]
print(f"{'':6} {'difficulty b':^30} {'discrimination a':^30}")
print(f"{'item':6} {'SVI':>8} {'MML':>8} {'MML se':>8} {'|Δ|/se':>6} {'SVI':>8} {'MML':>8} {'MML se':>8} {'|Δ|/se':>6}")
for t, item in enumerate(data.items):
    cells = [(svi[k][t], mml[k][t], se[k][t]) for k in ("difficulty", "discrimination")]
    print(f"{item:6} " + " ".join(f"{s:8.3f} {m:8.3f} {e:8.3f} {abs(s - m) / e:6.2f}" for s, m, e in cells))
log_likelihood = reference.marginal_log_likelihood("2pl", svi, data.answers.numpy()).sum()
print(f"marginal log-likelihood: SVI items {log_likelihood:.3f}, MML {mml['log_likelihood']:.3f}")

# new students, some with unanswered items (mask 0): the encoder scores them at once
answers = torch.tensor([[1., 1., 1., 1., 1.], [0., 0., 0., 0., 0.], [1., 0., 0., 0., 0.], [1., 1., 0., 0., 0.]])
mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
with torch.no_grad():
    mean, sd = guide.abilities(answers, mask)
exact, exact_sd = reference.posterior_ability("2pl", svi, answers.numpy(), mask.numpy())
print(f"{'new student':>12} {'q(ability) mean ± sd':>22} {'exact posterior':>18}   (· = not answered)")
for row, given, m, s, e, es in zip(answers, mask, mean[:, 0], sd[:, 0], exact, exact_sd):
    pattern = "".join(str(int(a)) if g else "·" for a, g in zip(row, given))
    print(f"{pattern:>12} {float(m):14.3f} ± {float(s):.3f} {e:10.3f} ± {es:.3f}")

args.out.mkdir(parents=True, exist_ok=True)
numbers = {"items": list(data.items), "svi_marginal_log_likelihood": float(log_likelihood),
           "mml_log_likelihood": float(mml["log_likelihood"]),
           "new_students": [[float(m), float(s), float(e), float(es)]
                            for m, s, e, es in zip(mean[:, 0], sd[:, 0], exact, exact_sd)]}
for k in ("difficulty", "discrimination"):  # the printed table's columns, per item
    numbers[k] = {"svi": [float(v) for v in svi[k]], "mml": [float(v) for v in mml[k]],
                  "mml_se": [float(v) for v in se[k]],
                  "z": [abs(float(a) - float(b)) / float(e) for a, b, e in zip(svi[k], mml[k], se[k])]}
(args.out / "irt.json").write_text(json.dumps(numbers, indent=1) + "\n")
print(f"the numbers above written to {args.out / 'irt.json'}")
