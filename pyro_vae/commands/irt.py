"""pyro-vae irt: exam analysis by item response theory, fitted by SVI like the VAE.

Writes to the run folder: config.json, metrics.jsonl, checkpoint.pt (from ``fit``), irt.json (item
table, marginal log-likelihood, ELBO), abilities.csv and figures/icc.png; prints the item table.
The library side is ``pyro_vae.irt``; the flags are the fields of ``pyro_vae.irt.settings.IRTSettings``.
"""

from __future__ import annotations

from pyro_vae.commands.options import add_run_folder, add_settings, saved_config
from pyro_vae.irt.settings import IRTSettings


def add_parser(sub) -> None:
    """Adds ``irt`` to the subparsers."""
    p = sub.add_parser("irt", help="exam analysis: item response theory (1PL, 2PL, the lecture's model) by SVI",
                       description="Fit P(right) = σ(α_s β_t) (lecture), σ(θ_s − b_t) (1pl) or σ(a_t(θ_s − b_t)) "
                                   "(2pl) to a students × items answer matrix by SVI; missing answers are masked "
                                   "out of the likelihood. Abilities get an amortized encoder or a mean-field guide.")
    add_settings(p, IRTSettings, "the model, its data and training")
    run_folder = add_run_folder(p, "runs/irt", figures="skip the item characteristic curves",
                                quiet="print only the results")
    run_folder.add_argument("--verbose", action="store_true", help="the trainer's progress bar and line per epoch")
    p.set_defaults(run=run)


def run(args) -> None:
    """Fits (or resumes) an IRT run and prints its item table."""
    from dataclasses import asdict
    from pathlib import Path

    from pyro_vae.irt import exams, fitting, report

    irt_settings = IRTSettings.resolve(vars(args), saved_config(args))
    data = exams.load(irt_settings.source)
    out = Path(args.out)
    if not args.quiet:
        print(f"fitting {irt_settings.kind} ({irt_settings.guide} abilities, {irt_settings.items} items) to "
              f"{data.name}: {data.shape[0]} students × {data.shape[1]} items, {irt_settings.epochs} epochs ...",
              flush=True)
    with fitting.one_thread():
        model, guide, history = fitting.train(data, **asdict(irt_settings), device=args.device, out=out,
                                              resume=args.resume, overwrite=args.overwrite, quiet=not args.verbose)
    if not args.quiet and history:
        print(f"done in {sum(m['seconds'] for m in history):.1f}s; final loss per student "
              f"{history[-1]['train_loss']:.4f}")
    summary = report.write_outputs(out, model, guide, data, irt_settings.seed, figures=not args.no_figures)
    print(report.format_table(summary))
    a = summary["abilities"]
    print(f"abilities: mean {a['mean']:.3f}, sd of means {a['sd_of_means']:.3f}, mean posterior sd "
          f"{a['mean_posterior_sd']:.3f} → {out / 'abilities.csv'}; item table → {out / 'irt.json'}")
