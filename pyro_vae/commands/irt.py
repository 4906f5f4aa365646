"""pyro-vae irt: exam analysis by item response theory, fitted by SVI like the VAE.

Writes to the run folder: config.json, metrics.jsonl, checkpoint.pt (from ``fit``), irt.json (item
table, marginal log-likelihood, ELBO), abilities.csv and figures/icc.png; prints the item table.
The library side is ``pyro_vae.irt``.
"""

from __future__ import annotations

from pyro_vae.commands.options import add_device, add_resume, positive_float, positive_int
from pyro_vae.irt.defaults import DEFAULTS, GUIDES, ITEMS, KINDS, MAX_BATCH

# on --resume these may change; the other settings come from the run's config.json
RESUMABLE = ("epochs",)


def add_parser(sub) -> None:
    """Adds ``irt`` to the subparsers."""
    d = DEFAULTS
    p = sub.add_parser("irt", help="exam analysis: item response theory (1PL, 2PL, the lecture's model) by SVI",
                       description="Fit P(right) = σ(α_s β_t) (lecture), σ(θ_s − b_t) (1pl) or σ(a_t(θ_s − b_t)) "
                                   "(2pl) to a students × items answer matrix by SVI; missing answers are masked "
                                   "out of the likelihood. Abilities get an amortized encoder or a mean-field guide.")
    p.add_argument("--data", help="lsat (shipped: 1,000 examinees × 5 items), a .csv answer matrix (0/1/empty, "
                                  "optional header) or a py-irt .jsonlines/.jsonl file, one "
                                  '{"subject_id": ..., "responses": {"item": 0 or 1, ...}} per line '
                                  f"(default {d['data']})")
    p.add_argument("--model", dest="kind", choices=KINDS, help=f"the item response function (default {d['kind']})")
    p.add_argument("--guide", choices=GUIDES,
                   help="q(ability): an encoder of the answers and their mask (scores new students), or free "
                        f"parameters per student (default {d['guide']})")
    p.add_argument("--items", choices=ITEMS,
                   help="item parameters: a Normal posterior per item (with sd), or a point estimate (MAP) "
                        f"(default {d['items']})")
    p.add_argument("--epochs", type=positive_int, help=f"passes over the students (default {d['epochs']})")
    p.add_argument("--batch-size", type=positive_int,
                   help=f"students per SVI step (default: all, at most {MAX_BATCH})")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate, decayed over the last third "
                                                     f"of the epochs (default {d['lr']})")
    p.add_argument("--num-particles", type=positive_int,
                   help=f"ability draws per student and step in the ELBO estimate (default {d['num_particles']})")
    p.add_argument("--seed", type=int, help=f"random seed (default {d['seed']})")
    add_device(p)
    p.add_argument("--out", default="runs/irt", help="run folder (default runs/irt)")
    add_resume(p)
    p.add_argument("--no-figures", action="store_true", help="skip the item characteristic curves")
    p.add_argument("--verbose", action="store_true", help="the trainer's progress bar and line per epoch")
    p.add_argument("--quiet", action="store_true", help="print only the results")
    p.set_defaults(run=run)


def run(args) -> None:
    """Fits (or resumes) an IRT run and prints its item table."""
    from pathlib import Path

    from pyro_vae import runs
    from pyro_vae.irt import exams, fitting, report

    given = {key: getattr(args, key) for key in DEFAULTS}
    given["source"] = given.pop("data")  # config.json keeps the name as "data", where it was read from as "source"
    settings = runs.command_settings({**DEFAULTS, "source": DEFAULTS["data"]}, given, args.out, args.resume, RESUMABLE)
    settings.setdefault("source", settings["data"])  # runs made before "source" was kept
    data = exams.load(settings["source"])
    out = Path(args.out)
    if not args.quiet:
        print(f"fitting {settings['kind']} ({settings['guide']} abilities, {settings['items']} items) to {data.name}: "
              f"{data.shape[0]} students × {data.shape[1]} items, {settings['epochs']} epochs ...", flush=True)
    with fitting.one_thread():
        model, guide, history = fitting.train(data, **{k: settings[k] for k in (*DEFAULTS, "source") if k != "data"},
                                              device=args.device, out=out, resume=args.resume,
                                              overwrite=args.overwrite, quiet=not args.verbose)
    if not args.quiet and history:
        print(f"done in {sum(m['seconds'] for m in history):.1f}s; final loss per student "
              f"{history[-1]['train_loss']:.4f}")
    summary = report.write_outputs(out, model, guide, data, settings["seed"], figures=not args.no_figures)
    print(report.format_table(summary))
    a = summary["abilities"]
    print(f"abilities: mean {a['mean']:.3f}, sd of means {a['sd_of_means']:.3f}, mean posterior sd "
          f"{a['mean_posterior_sd']:.3f} → {out / 'abilities.csv'}; item table → {out / 'irt.json'}")
