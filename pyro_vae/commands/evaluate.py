"""pyro-vae evaluate RUN: test-set measures of a trained run of any kind, as JSON."""

from __future__ import annotations

from pyro_vae import settings
from pyro_vae.commands.options import add_device

BATCH_SIZE, SEED = settings.TrainingSettings.eval_batch_size, 0
positive_int = settings.argument_type("int", "positive")


def add_parser(sub) -> None:
    """Adds ``evaluate`` to the subparsers."""
    p = sub.add_parser("evaluate", help="test ELBO, IS log-likelihood and reconstruction error of a run, as JSON",
                       description="VAE runs: test-set ELBO per example = E_q[log p(x|z)] − KL(q_x(z) ‖ p(z)) in "
                                   "nats, its two parts, the KL per latent dimension (≈ 0: a collapsed dimension), "
                                   "the reconstruction error ‖x − E[x|μ(x)]‖², and with --is-samples K the "
                                   "importance-sampled log p(x) ≈ log (1/K) Σ_k p(x, z_k)/q(z_k|x) and bits/dim. "
                                   "Program runs (--program): the ELBO E_q[log p(x, z) − log q(z)] per example, "
                                   "its observed part and the KL of each latent site (kl/SITE), sites found by role, "
                                   "not by name (a program with enumerated sites: the enumerated ELBO), and what else "
                                   "applies to the program; with --index on the training rows. "
                                   "Topic runs: held-out ELBO per document and perplexity. IRT runs: ELBO and the "
                                   "exact marginal log-likelihood on the students it was fitted to.")
    p.add_argument("run_dir", metavar="RUN", help="a run folder written by pyro-vae train, topics or irt")
    p.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE,
                   help=f"examples per evaluation batch (default {BATCH_SIZE})")
    p.add_argument("--seed", type=int, default=SEED, help=f"seed for the Monte Carlo draw of z (default {SEED})")
    p.add_argument("--is-samples", type=positive_int, metavar="K",
                   help="also estimate log p(x) by importance sampling with K draws from the guide per example "
                        "(K = 5000 is the usual protocol; memory does not grow with K; topic runs: draws of θ_d)")
    p.add_argument("--samples", type=positive_int, metavar="N",
                   help="also measure N decoded prior draws against the test set in the feature space of a CNN "
                        "judge trained on the data set (cached in the data folder): Fréchet distance, precision "
                        "and recall (k = 3 neighbours), judged-class rate and coverage (mnist-5k, fashion-mnist; "
                        "default: not measured)")
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> None:
    """Prints the run's test-set measures as JSON."""
    import json

    from pyro_vae import runs
    from pyro_vae.train import resolve_device

    run, device = runs.load(args.run_dir), resolve_device(args.device)
    quality = {"sample_quality": run.sample_quality(args.samples, args.seed, device)} if args.samples else {}
    report = {**run.evaluate(batch_size=args.batch_size, seed=args.seed, num_samples=args.is_samples,
                             device=device), **quality}
    print(json.dumps({"run": str(args.run_dir), **report}, indent=2))
