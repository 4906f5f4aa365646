"""Every computed number on the docs pages is checked against docs/figures/numbers.json (written by
``make figures``), at the precision the page shows it: a stale page fails here.

Each claim is a piece of a page's text with ``{}`` where numbers stand, and the numbers.json keys they show:

    ("code norm dips from {} and {} at the ends to {} halfway", ["generation.lerp.code_norms.0", ...])

A key may end in ``.range`` (max − min over seeds of a measure with ``min`` and ``max``), and in ``*F`` (shown multiplied by F, e.g. ``*100`` for a percentage) or ``/F`` (``/1e5`` for a
number written "9.0 × 10⁵"). A placeholder is compared at the shown precision: ``{}`` shows the value
rounded to its decimals (2.51 stands for [2.505, 2.515]); ``{~}`` shows it to its last non-zero digit
("≈ 25,000" stands for [24,500, 25,500]); ``{<}`` and ``{>}`` bound it ("less than 3%").

A page's text is matched with its line breaks as spaces. Besides the claims, every number in a table row of
the page, and every decimal number in its prose, must belong to a claim or to the page's list of settings
(numbers that are inputs, not results), or lie in a span the page declares unchecked, with the reason
(``UNCHECKED``: numbers measured by a command whose output is not recorded, generated pages): a new number
on a page needs a claim. Every page of docs/ is listed in ``PAGES``. What counts as a number to cover:
every number in a table row and every decimal number elsewhere, in prose and in fenced blocks of commands
and their output. Not counted, by rule: ```` ```python ```` blocks and inline `code` (a program and its
arguments are inputs), integers inside math (``$2^{21}/D$``: parts of a formula; decimals inside math
count), indented lines and image lines.

Some claims are derived from numbers.json by a formula written here (``DERIVED``): notation.md's Gaussian
constant −(D/2) log 2πc is computed from D and c, and a test checks it against the constant that
lecture.md section 3's own numbers imply.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
NUMBERS = json.loads((DOCS / "figures" / "numbers.json").read_text())
# docs/irt.md's runs `pyro-vae irt --data lsat --model M --out runs/irt-lsat-M`: each run's irt.json, kept as
# docs/figures/irt_lsat/M.json (the 2pl run's figures/icc.png is docs/figures/irt_lsat_icc.png)
NUMBERS["irt_lsat"] = {p.stem: json.loads(p.read_text()) for p in (DOCS / "figures" / "irt_lsat").glob("*.json")}
# docs/topics.md's run `pyro-vae topics --corpus lee --model prodlda --topics 10 --epochs 100 --baseline`: its
# topics.json, kept as docs/figures/topics_lee/prodlda.json
NUMBERS["topics_lee"] = {p.stem: json.loads(p.read_text()) for p in (DOCS / "figures" / "topics_lee").glob("*.json")}

NUMBER = r"(?<![\w.\-−])[−-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d|,\d)"

def _row(prefix: str) -> list[str]:
    """The keys of one row of the ablation table."""
    return [f"{prefix}.{k}" for k in ("kl", "mse", "sigma", "spread_over_sigma", "knn_accuracy*100")]


def _gaps(model: str) -> list[str]:
    """The keys of one row of the latent-gaps table: mean (min–max over seeds) of each measure."""
    keys = [f"latent_gaps.{model}.mean_sigma.mean"]
    for measure in ("empty_grid_fraction", "grid_digit_rate", "prior_digit_rate"):
        keys += [f"latent_gaps.{model}.{measure}.{k}*100" for k in ("mean", "min", "max")]
    return keys + [f"latent_gaps.{model}.prior_coverage.mean"]


def _generated(name: str, spread: bool = True) -> list[str]:
    """The keys of one row of the generation-quality table: the judged rate (with its range over seeds when
    ``spread``), the coverage, the Fréchet distance, precision and recall."""
    prefix = f"generation_quality.{name}"
    rates = [f"{prefix}.digit_rate_min*100", f"{prefix}.digit_rate_max*100"] if spread else []
    return [f"{prefix}.digit_rate*100", *rates, *(f"{prefix}.{k}" for k in ("coverage", "frechet_distance",
                                                                            "precision", "recall"))]


def _across(section: str, field: str) -> list[str]:
    """The keys of one row of the role-of-c table, one column per c."""
    return [f"{section}.{c}.{field}" for c in ("0.01", "0.03", "0.1", "0.3", "1.0")]


LECTURE = [
    # 1, 2
    ("w = ({}, {})", ["pca.direction.0", "pca.direction.1"]),
    ("| {}°, {}°, {}°, {}°, {}°, {}° |", [f"linear_autoencoder.principal_angles.{i}" for i in range(6)]),
    ("| $\\lVert W^\\top W - I \\rVert$ (0 for an orthonormal basis) | {} |", ["linear_autoencoder.orthonormality_error"]),
    ("principal direction k (1 if aligned) | {} |", ["linear_autoencoder.alignment"]),
    ("PCA / linear autoencoder | {} / {} |", ["linear_autoencoder.pca_mse", "linear_autoencoder.linear_ae_mse"]),
    ("makes angles of {}° to {}° with PCA's", ["linear_autoencoder.random_subspace_angles.0",
                                               "linear_autoencoder.random_subspace_angles.1"]),
    ("($\\lambda_6/\\lambda_7 \\approx$ {})", ["linear_autoencoder.eigenvalue_gap"]),
    # 3: the nonlinear autoencoder against PCA
    ("| 2 | {} | **{}** |", ["pca_vs_autoencoder.pca.2", "pca_vs_autoencoder.autoencoder.2"]),
    ("| 16 | {} | **{}** |", ["pca_vs_autoencoder.pca.16", "pca_vs_autoencoder.autoencoder.16"]),
    ("reconstructs about as well as PCA with {} components", ["pca_vs_autoencoder.pca_components_matching_16"]),
    # 3
    ("SVI loss {}, and squared error / 2c + constant {} (squared error {})",
     ["autoencoder.svi_loss_per_example", "autoencoder.mse_over_2c_plus_constant", "autoencoder.mse"]),
    # 4
    ("| corrupted input $\\tilde{x}$ itself | {} |", ["denoising.corrupted_input_mse"]),
    ("| plain autoencoder $d(e(\\tilde{x}))$ | {} |", ["denoising.plain_ae_mse_on_corrupted"]),
    ("| denoising autoencoder $d(e(\\tilde{x}))$ | **{}** |", ["denoising.denoising_ae_mse_on_corrupted"]),
    ("(plain autoencoder on the clean input, for reference) | {} |", ["denoising.plain_ae_mse_on_clean"]),
    # 5
    ("the test ELBO changes by less than {<} nats per 10 epochs ({} for the autoencoder, {} for the VAE with c = 0.1), "
     "no more than the {}–{} nats between seeds",
     ["latent_gaps.ae.test_elbo_change_last_10_epochs.mean", "latent_gaps.ae.test_elbo_change_last_10_epochs.mean",
      "latent_gaps.vae_c0.1.test_elbo_change_last_10_epochs.mean",
      "latent_gaps.vae_c0.1.test_elbo.range", "latent_gaps.ae.test_elbo.range"]),
    ("The judge is the CNN of section 9: {}% test accuracy, and ≥ 90% sure of one digit on {}% of",
     ["latent_gaps.judge_test_accuracy*100", "latent_gaps.real_digit_rate*100"]),
    ("the judge calls {}% of the blends digits", ["latent_gaps.blended_digit_rate*100"]),
    ("| autoencoder | {} | {}% ({}–{}%) | **{}%** ({}–{}%) | **{}%** ({}–{}%) | {} |", _gaps("ae")),
    ("| VAE, c = 0.1 | {} | **{}%** ({}–{}%) | {}% ({}–{}%) | {}% ({}–{}%) | {} |", _gaps("vae_c0.1")),
    ("| VAE, c = 1 | {} | {}% ({}–{}%) | {}% ({}–{}%) | {}% ({}–{}%) | {} |", _gaps("vae_c1")),
    ("| real test digits / blends of two digits | | | {}% / {}% |",
     ["latent_gaps.real_digit_rate*100", "latent_gaps.blended_digit_rate*100"]),
    ("{}% of its grid points lie far from every training code. Still, {}% of its grid images are judged digits, "
     "as many as the VAE's with c = 0.1 ({}%), and far above the blends ({}%)",
     ["latent_gaps.ae.empty_grid_fraction.mean*100", "latent_gaps.ae.grid_digit_rate.mean*100",
      "latent_gaps.vae_c0.1.grid_digit_rate.mean*100", "latent_gaps.blended_digit_rate*100"]),
    ("({}% against {}%), because the KL term", ["latent_gaps.vae_c0.1.empty_grid_fraction.mean*100",
                                                "latent_gaps.ae.empty_grid_fraction.mean*100"]),
    ("$\\sigma(x)$ is wide ({} against {} with c = 0.1)",
     ["latent_gaps.vae_c1.mean_sigma.mean", "latent_gaps.vae_c0.1.mean_sigma.mean"]),
    ("draws are judged digits {}% of the time, against {}% for the VAE with c = 0.1 and {}% for the blends",
     ["latent_gaps.vae_c1.prior_digit_rate.mean*100", "latent_gaps.vae_c0.1.prior_digit_rate.mean*100",
      "latent_gaps.blended_digit_rate*100"]),
    ("and they cover about {~} classes", ["latent_gaps.vae_c1.prior_coverage.mean"]),
    ("does as well as the VAE with c = 0.1** ({}% against {}%)",
     ["latent_gaps.ae.prior_digit_rate.mean*100", "latent_gaps.vae_c0.1.prior_digit_rate.mean*100"]),
    # 6
    ("| reconstruction only | {} | {} | {} | {} | {}% |", _row("ablation.recon-only")),
    ("| KL only | {} | {} | {} | {} | {}% |", _row("ablation.kl-only")),
    ("| both | {} | {} | {} | {} | {}% |", _row("ablation.vae")),
    ("Nothing stops $\\sigma(x)$ from shrinking, and it falls to {}.", ["ablation.recon-only.sigma"]),
    ("the codes spread over {} times their own width", ["ablation.recon-only.spread_over_sigma"]),
    ("$\\mathrm{KL} \\approx$ {} and $\\sigma \\approx$ {}.", ["ablation.kl-only.kl", "ablation.kl-only.sigma"]),
    ("The codes move less than {<}% of their own width", ["ablation.kl-only.spread_over_sigma*100"]),
    ("The regions are tight (spread / $\\sigma \\approx$ {~})", ["ablation.vae.spread_over_sigma"]),
    # 7
    ("| $\\mathrm{KL}(q \\Vert p(z))$ per test image (nats) | {} | {} | {} | {} | {} |", _across("role_of_c", "kl")),
    ("| squared error $\\lVert x - f(\\mu(x)) \\rVert^2$ | {} | {} | {} | {} | {} |", _across("role_of_c", "mse")),
    ("| mean $\\sigma(x)$ | {} | {} | {} | {} | {} |", _across("role_of_c", "sigma")),
    # 8
    ("| pathwise | {} × 10⁵ |", ["reparameterization.variance.pathwise/1e5"]),
    ("| score function | {} × 10¹⁰ |", ["reparameterization.variance.score_function/1e10"]),
    ("| **ratio** | **≈ {~}** |", ["reparameterization.variance_ratio"]),
    ("their means agree within 3 standard errors on {}% of the coordinates",
     ["reparameterization.means_agree_within_3_standard_errors*100"]),
    # 8: why the variance curves end
    ("The last {} of the {} coordinates have a", ["reparameterization.zero_variance_coordinates",
                                                  "reparameterization.coordinates"]),
    ("Those {} coordinates are the", ["reparameterization.zero_variance_coordinates"]),
    ("weights from the {} ReLU units of the encoder's hidden layer (out of {})",
     ["reparameterization.silent_units_on_batch", "reparameterization.trunk_units"]),
    ("and 4 × {} = {}.", ["reparameterization.silent_units_on_batch", "reparameterization.zero_variance_coordinates"]),
    ("{} of the units are silent on all 1,000 test digits", ["reparameterization.dead_units_on_test"]),
    # 9: generation, measured
    ("It classifies {}% of the 1,000 test digits correctly", ["generation_quality.judge_test_accuracy*100"]),
    ("| real training digits | {}% | {} | {} | {} | {} |", _generated("real", spread=False)),
    ("| VAE, c = 0.1: f(z), z ~ N(0, I) | {}% (seeds: {}–{}%) | {} | {} | {} | {} |", _generated("vae_c0.1")),
    ("| VAE, c = 1: f(z), z ~ N(0, I) | {}% ({}–{}%) | {} | {} | {} | {} |", _generated("vae_c1")),
    ("| autoencoder: d(z), z ~ N(m, S) fitted to its codes | {}% ({}–{}%) | {} | {} | {} | {} |",
     _generated("ae_fitted_gaussian")),
    ("| VAE, Bernoulli, learned mixture prior: z ~ p(z) | {}% ({}–{}%) | {} | {} | {} | {} |",
     _generated("vae_learned_prior")),
    ("two training digits of different classes | {}% | {} | {} | {} | {} |", _generated("blended", spread=False)),
    ("(MLPs of 512 and 256 units, {} epochs)", ["generation_quality.epochs_learned_prior"]),
    ("are judged digits {}% of the time (seeds: {}% to {}%), with {} classes covered",
     ["generation_quality.vae_learned_prior.digit_rate*100", "generation_quality.vae_learned_prior.digit_rate_min*100",
      "generation_quality.vae_learned_prior.digit_rate_max*100", "generation_quality.vae_learned_prior.coverage"]),
    # 9: interpolation
    ("(here a \"{}\", at cosine {})", ["generation.ends.classes.1", "generation.ends.cosine"]),
    ("90% of its draws have a norm between {} and {}.", ["generation.prior_norm_5_95.0", "generation.prior_norm_5_95.1"]),
    ("the code norm dips from {} and {} at the ends to {} near the middle",
     ["generation.lerp.code_norms.0", "generation.lerp.code_norms.9", "generation.lerp.min_norm"]),
    ("keeps the norm between its end values, from {} to {},",
     ["generation.slerp.code_norms.0", "generation.slerp.code_norms.9"]),
    # 10
    ("| mean pixel mass of the decoded test digits | {} | {} | {} | {} | {} | {} | {} |",
     [f"attribute_vector.mean_pixel_mass.{i}" for i in range(7)]),
    ("| classified as the same digit as at α = 0 | {}% | {}% | {}% | {}% | {}% | {}% | {}% |",
     [f"attribute_vector.same_class_as_alpha_0.{i}*100" for i in range(7)]),
    ("For |α| ≤ 0.5 the digit keeps its identity about {~}% of the time",
     ["attribute_vector.same_class_as_alpha_0.2*100"]),
    # 11
    ("| $\\log p(x)$ | {} |", ["elbo_identity.log_px"]),
    ("| $\\mathrm{ELBO}(q)$ | {} |", ["elbo_identity.elbo"]),
    ("| $\\mathrm{KL}(q \\Vert p(z \\mid x))$ | {} |", ["elbo_identity.kl_to_posterior"]),
    ("| $\\mathrm{ELBO} + \\mathrm{KL}$ | {} |", ["elbo_identity.elbo_plus_kl"]),
    ("(20,000 draws) | {} |", ["elbo_identity.pyro_trace_elbo_estimate"]),
    ("The gap does not close completely ({} nats at the end)", ["elbo_identity.elbo_at_posterior_minus_log_px"]),
]

# numbers that are inputs of the computations (data, network sizes, settings), not results
SETTINGS = {
    "lecture.md": [
        "one hidden layer of 256 units, c = 0.1", "| c | 0.01 | 0.03 | 0.1 | 0.3 | 1 |",
        "| α | −1.5 | −1 | −0.5 | 0 | 0.5 | 1 | 1.5 |", "for α from −1.5 to 1.5", "For |α| ≤ 0.5",
        "With c = 0.1", "VAE with c = 0.1", "an 8-D code, c = 0.1", "≥ 90% sure", "a 20×20 grid over the box that holds 98%", "(a 10× stronger KL",
        "two hidden layers of 512 and 256", "50 epochs at learning rate 3·10⁻³", "within ±0.2 there",
        "spreads over ±2", "seeds (0, 1, 2)", "(10-NN)", "up to c ≈ 0.1", "radius √8 ≈ 2.8", "code dimension k |", "PCA for k = 1 … 32", "| 16 |", "one hidden layer of 256, 30 epochs",
        "probability ≥ 0.9", "(p ≥ 0.9)", "(of 10)", "(x_a + x_b)/2", "c = 0.5",
    ],
    "notation.md": ["(M. Sheshukova, 2021)", "(E. Sokolov, HSE 2021)", "(F. Ręka, UMCS 2022)", "(section 8)",
                    "(0/1, missing masked)", "$c = 0.1$"],
    "objectives.md": ["et al. 2016", "Rybkin et al. 2021", "Cunningham 2019", "epoch 1 is reconstruction only",
                      "($\\mathrm{KL}_j > 0.01$)"],
    "programs.md": ["$x_i \\sim \\mathcal{N}(z_i, 0.5^2 I)$"],
    "distributed.md": ["10.0.0.1"],
    "topics.md": ["$\\alpha = \\eta = 0.1$", "| 10 topics on `lee` (mean of 3 seeds)", "concentrations $\\geq 0.3$",
                  "$\\varphi$'s $\\geq 0.1$"],
}


def _item(t: int) -> tuple[str, list[str]]:
    """One row of the SVI-against-MML table of examples/exam_irt.py, as docs/irt.md shows it."""
    keys = [f"exam_irt.{k}.{column}.{t}" for k in ("difficulty", "discrimination")
            for column in ("svi", "mml", "mml_se", "z")]
    return f"item{t + 1} {{}} {{}} {{}} {{}} {{}} {{}} {{}} {{}}", keys


def _student(pattern: str, row: int) -> tuple[str, list[str]]:
    """One new student's line of examples/exam_irt.py: q(ability) mean ± sd, exact posterior mean ± sd."""
    return f"{pattern} {{}} ± {{}} {{}} ± {{}}", [f"exam_irt.new_students.{row}.{i}" for i in range(4)]


# docs/irt.md: the output of examples/exam_irt.py (run by `make figures`), and below, of the recorded
# `pyro-vae irt --data lsat` runs; the numbers of its tests and benchmarks are declared in UNCHECKED
IRT = [*(_item(t) for t in range(5)),
       ("marginal log-likelihood: SVI items {}, MML {}",
        ["exam_irt.svi_marginal_log_likelihood", "exam_irt.mml_log_likelihood"]),
       _student("11111", 0), _student("00000", 1), _student("10···", 2), _student("110··", 3)]

# docs/notation.md: the Gaussian likelihood's constant, and lecture.md section 3's numbers that show it
NOTATION = [
    ("A loss of {} on lecture.md's page is an ELBO of +{}.", ["autoencoder.svi_loss_per_example", "notation.elbo"]),
    ("the constant $-\\frac{D}{2} \\log 2\\pi c$ alone is **+{}** nats: $2\\pi c \\approx {} < 1$",
     ["notation.gaussian_constant", "notation.two_pi_c"]),
    ("the autoencoder's squared error {} gives ${} / 2c = {}$, and its loss ${} - {} = {}$",
     ["autoencoder.mse", "autoencoder.mse", "notation.mse_over_2c", "notation.mse_over_2c", "notation.gaussian_constant",
      "autoencoder.svi_loss_per_example"]),
]

PIXELS, C = 784, 0.1  # notation.md's D and c: lecture.md section 3's autoencoder (MNIST, c = 0.1)
DERIVED = {  # claims computed from numbers.json (or from the page's own inputs) by a formula
    "notation.gaussian_constant": lambda: -(PIXELS / 2) * math.log(2 * math.pi * C),
    "notation.two_pi_c": lambda: 2 * math.pi * C,
    "notation.mse_over_2c": lambda: value("autoencoder.mse") / (2 * C),
    "notation.elbo": lambda: -value("autoencoder.svi_loss_per_example"),
}

# docs/lecture.md section 1: L0's five points (the inputs, as the lecture gives them), encoded as w·x and
# decoded as (w·x) w with numbers.json's principal direction w (the points' mean is 0)
POINTS = {"A": (-0.5, -0.4), "B": (-0.4, -0.1), "C": (0.1, 0.0), "D": (0.3, 0.3), "E": (0.5, 0.2)}
for _name, _point in POINTS.items():
    DERIVED[f"pca.points.{_name}.0"] = lambda p=_point: p[0]
    DERIVED[f"pca.points.{_name}.1"] = lambda p=_point: p[1]
    DERIVED[f"pca.encoded.{_name}"] = lambda p=_point: p[0] * value("pca.direction.0") + p[1] * value("pca.direction.1")
    for _i in (0, 1):
        DERIVED[f"pca.decoded.{_name}.{_i}"] = lambda n=_name, i=_i: value(f"pca.encoded.{n}") * value(f"pca.direction.{i}")
LECTURE_PCA_TABLE = [
    (f"{name} " + ("( {}, {})" if point[0] >= 0 else "({},{})") + (" {} " if point[0] >= 0 else " {} ")
     + ("( {}, {})" if point[0] >= 0 else "({},{})"),
     [f"pca.points.{name}.0", f"pca.points.{name}.1", f"pca.encoded.{name}", f"pca.decoded.{name}.0",
      f"pca.decoded.{name}.1"]) for name, point in POINTS.items()]

# docs/irt.md's summary of the SVI-against-MML table: the largest gaps, from the same numbers.json entries
DERIVED.update({
    "exam_irt.max_gap.difficulty": lambda: max(abs(a - b) for a, b in zip(NUMBERS["exam_irt"]["difficulty"]["svi"],
                                                                        NUMBERS["exam_irt"]["difficulty"]["mml"])),
    "exam_irt.max_gap.discrimination": lambda: max(abs(a - b) for a, b in zip(
        NUMBERS["exam_irt"]["discrimination"]["svi"], NUMBERS["exam_irt"]["discrimination"]["mml"])),
    "exam_irt.max_z": lambda: max(NUMBERS["exam_irt"][k]["z"][t] for k in ("difficulty", "discrimination")
                                  for t in range(5)),
    "exam_irt.log_likelihood_gap": lambda: value("exam_irt.mml_log_likelihood") - value("exam_irt.svi_marginal_log_likelihood"),
})


def _run_item(t: int) -> tuple[str, list[str]]:
    """One item's row of the `pyro-vae irt --data lsat` output that docs/irt.md shows."""
    after = f"item{t + 2}" if t < 4 else "2pl on lsat"
    keys = [f"irt_lsat.2pl.item_table.{t}.{k}" for k in ("proportion_correct", "answered", "difficulty",
                                                          "difficulty_sd", "discrimination", "discrimination_sd")]
    return f"item{t + 1} {{}} {{}} {{}} {{}} {{}} {{}} {after}", keys


IRT += [
    *(_run_item(t) for t in range(5)),
    ("{}% missing marginal log-likelihood {} (Gauss–Hermite, at the item estimates) ELBO {} abilities: mean {}, "
     "sd of means {}, mean posterior sd {}",
     ["irt_lsat.2pl.missing_fraction*100", "irt_lsat.2pl.marginal_log_likelihood", "irt_lsat.2pl.elbo",
      "irt_lsat.2pl.abilities.mean", "irt_lsat.2pl.abilities.sd_of_means", "irt_lsat.2pl.abilities.mean_posterior_sd"]),
    ("($\\mu = {}$) reaches a marginal log-likelihood of {}, against {} for `--model 1pl` and {} for `--model 2pl`",
     ["irt_lsat.lecture.mu", "irt_lsat.lecture.marginal_log_likelihood", "irt_lsat.1pl.marginal_log_likelihood",
      "irt_lsat.2pl.marginal_log_likelihood"]),
    ("item proportions {}, {}, {}, {}, {})", [f"irt_lsat.2pl.item_table.{t}.proportion_correct" for t in range(5)]),
    ("(item 1: sd {} vs se {})", ["irt_lsat.2pl.item_table.0.difficulty_sd", "exam_irt.difficulty.mml_se.0"]),
    ("Tolerances reached (all within {<} standard errors of MML): 2PL difficulties within {}, discriminations "
     "within {}, log-likelihood within {} nats ({} vs {})",
     ["exam_irt.max_z", "exam_irt.max_gap.difficulty", "exam_irt.max_gap.discrimination",
      "exam_irt.log_likelihood_gap", "exam_irt.svi_marginal_log_likelihood", "exam_irt.mml_log_likelihood"]),
]

TOPICS = [(f"{t + 1} {{}} {words}", [f"topics_lee.prodlda.topics.{t}.npmi"]) for t, words in enumerate(
    ["detainees", "metres", "asylum", "workers", "test", "governor", "laden", "pilot", "palestinian", "space"])]
TOPICS += [(f"{row} {{}} {{}} {{}} {{}}", [f"topics_lee.prodlda.measures.{row}.{k}" for k in
                                           ("npmi_train", "npmi_test", "diversity", "perplexity_test")])
           for row in ("prodlda (pyro)", "sklearn LDA")]
TOPICS += [("where ours gives {} for the same fit", ["topics_lee.prodlda.measures.sklearn LDA.perplexity_test"])]

# the README's result claims (its other numbers are timings and settings, measured by the commands it names)
README = [("SVI lands within {<} standard errors of it ({} on difficulties, {} on discriminations)",
           ["exam_irt.max_z", "exam_irt.max_gap.difficulty", "exam_irt.max_gap.discrimination"])]
PAGES = {"lecture.md": LECTURE + LECTURE_PCA_TABLE, "irt.md": IRT, "notation.md": NOTATION, "topics.md": TOPICS}
PAGES.update({page: [] for page in ("api.md", "architecture.md", "bad-input.md", "benchmarks.md", "distributed.md",
                                    "generation.md", "objectives.md", "programs.md", "topics.md") if page not in PAGES})

# spans of a page whose numbers are not checked here, each with the reason: (from, to, why), the span running
# from the first text to the end of the second (both written as the page writes them, line breaks as spaces;
# an empty second text: to the end of the page)
NOT_RECORDED = "measured by the command the page names; its output is not recorded anywhere a test can read"
UNCHECKED: dict[str, list[tuple[str, str, str]]] = {
    "api.md": [("# API reference", "", "generated from the docstrings by docs/make_api.py (tests/test_api.py keeps it "
                                       "equal to the code): its numbers are defaults and constants of the code")],
    "benchmarks.md": [("# Benchmarks", "", "written by `make bench` (benchmarks/run_all.py) from its own measurements, "
                                           "in one run on the machine it describes; rerun it rather than edit")],
    "bad-input.md": [("| Bad input | Example | Message", "", "inputs and the exact messages they get; each row is a "
                                                            "test in tests/test_bad_input.py")],
    "generation.md": [("# Generation, measured", "",
                       "the tables are what examples/generation_table.py wrote to docs/figures/generation_*.json, and "
                       "tests/test_quality.py checks each table and each sentence of its reading against those files; "
                       "the other numbers are the tolerances and sizes of tests/test_quality.py")],
    "programs.md": [("## Pyro's examples as the acceptance suite", "",
                     "written by benchmarks/pyro_examples.py to docs/figures/pyro_examples.json, with the tolerances "
                     "stated in the programs' files; tests/test_pyro_examples.py checks the table against that file")],
    "irt.md": [
        ("done in ", " item proportion_correct", "the wall time of that run (the machine's), and its last "
                                                   "training loss (in its metrics.jsonl, which is not kept)"),
        ("(ltm: $b_1 = -3.360$", "log-likelihood $-2466.653$)", "the published MML fit (R package ltm), quoted"),
        ("the test (`tests/test_irt.py`, 300 epochs) asserts", "measures 0.006 and 0.006.",
         "thresholds of tests/test_irt.py and what one run of it measured; the test asserts the thresholds"),
        ("Tests also check, on synthetic 2PL data", "within 0.05 of the exact posterior (quadrature)",
         "thresholds of tests/test_irt.py and what one run of it measured; the test asserts the thresholds"),
        ("`.venv/bin/python benchmarks/irt_fit.py --reference`", "LSAT, where 5 items leave each ability very uncertain",
         f"benchmarks/irt_fit.py --reference and what it shows: {NOT_RECORDED}"),
    ],
    "objectives.md": [
        ("Memory: `python benchmarks/is_memory.py --images 26`", "(556 and 1,124 MiB).",
         f"benchmarks/is_memory.py: {NOT_RECORDED} (and memory is the machine's)"),
        ("## Measured: `bash benchmarks/objectives.sh`", "with no $c$ to tune.*",
         f"benchmarks/objectives.sh (9 trainings of 10 epochs): {NOT_RECORDED}"),
        ("- **pPCA exactness**", "and 5% of the true 0.3.", "thresholds that tests/test_ppca.py asserts"),
    ],
    "topics.md": [
        ("on this split it reports 15,210", "15,210", "sklearn's own perplexity(): " + NOT_RECORDED),
        ("| 10 topics on `lee` (mean of 3 seeds)", "not beating a tuned variational Bayes on 240 documents.",
         f"nine `pyro-vae topics ... --seed S` runs (three models, three seeds): {NOT_RECORDED}; the table's "
         "means are checked against the per-seed values below it"),
        ("about 1 start in 4 lands there", "mean cosine > 0.9;", "what tests/test_topics.py found and asserts"),
    ],
}


CHECKED = {**PAGES, "../README.md": README}  # every page with claims, relative to docs/ (docs/renumber.py reads it)


def value(key: str) -> float:
    """numbers.json's value at a dotted key, times or divided by an optional trailing factor."""
    factor = 1.0
    match = re.fullmatch(r"(.+?)([*/])([0-9.e+-]+)", key)
    if match:
        key, op, f = match.group(1), match.group(2), float(match.group(3))
        factor = f if op == "*" else 1 / f
    if key in DERIVED:
        return DERIVED[key]() * factor
    if key.endswith(".range"):  # max − min of a measure over seeds
        return value(key[: -len(".range")] + ".max") * factor - value(key[: -len(".range")] + ".min") * factor
    node, rest = NUMBERS, key
    while rest:  # keys may hold dots themselves ("role_of_c.0.01.kl"): take the longest that exists
        if isinstance(node, list):
            part, _, rest = rest.partition(".")
            node = node[int(part)]
            continue
        part = max((k for k in node if rest == k or rest.startswith(k + ".")), key=len, default=None)
        if part is None:
            raise KeyError(f"{key}: no {rest!r} in numbers.json")
        node, rest = node[part], rest[len(part) + 1:]
    return float(node) * factor


def parse(shown: str) -> float:
    return float(shown.replace("−", "-").replace(",", ""))


def agrees(shown: str, kind: str, actual: float) -> bool:
    """Whether ``shown`` is ``actual`` at the precision shown (see the module's docstring)."""
    number = parse(shown)
    if kind == "<":
        return actual < number
    if kind == ">":
        return actual > number
    digits = shown.split(".")[1] if "." in shown else ""
    if kind == "~" and not digits:
        integer = shown.lstrip("−-").replace(",", "")
        unit = 10 ** (len(integer) - len(integer.rstrip("0"))) if integer.strip("0") else 1
    elif kind == "~":
        unit = 10 ** -(len(digits.rstrip("0")) or 0)
    else:
        unit = 10 ** -len(digits)
    return abs(actual - number) <= unit / 2 + 1e-9 * max(1.0, abs(number))


def pattern(template: str) -> tuple[re.Pattern, list[str]]:
    parts = re.split(r"\{([~<>]?)\}", " ".join(template.split()))
    regex = "".join(re.escape(p) if i % 2 == 0 else f"({NUMBER})" for i, p in enumerate(parts))
    return re.compile(regex), parts[1::2]


def prose(page: str) -> str:
    """The page without ```python blocks, fence lines, indented lines and images."""
    page = re.sub(r"```python\n.*?```", " ", page, flags=re.S)
    page = re.sub(r"^```\w*$", " ", page, flags=re.M)
    return "\n".join(line for line in page.splitlines() if not line.startswith("    ") and not line.startswith("!["))


def masked(text: str) -> str:
    """``text`` with inline code and the integers inside math hidden (same length, so positions agree)."""
    text = re.sub(r"`[^`]*`", lambda m: "\0" * len(m.group()), text)
    return re.sub(r"\$\$.+?\$\$|\$[^$]+\$", lambda m: re.sub(NUMBER, lambda n: n.group() if "." in n.group() else
                                                "\0" * len(n.group()), m.group()), text)


def flat(text: str) -> str:
    return " ".join(text.split())


def claims():
    for page, page_claims in CHECKED.items():
        for template, keys in page_claims:
            yield pytest.param(page, template, keys, id=f"{page}: {template[:40]}")


@pytest.mark.parametrize("page, template, keys", claims())
def test_a_pages_number_agrees_with_numbers_json(page, template, keys):
    text = flat((DOCS / page).read_text())
    regex, kinds = pattern(template)
    match = regex.search(text)
    assert match, f"{page} no longer says: {template!r}: update the claim in {Path(__file__).name}"
    assert len(kinds) == len(keys)
    for shown, kind, key in zip(match.groups(), kinds, keys):
        actual = value(key)
        assert agrees(shown, kind, actual), f"{page} shows {shown} for {key} = {actual:.6g}: the page is stale"


def test_every_docs_page_is_listed():
    assert sorted(PAGES) == sorted(p.name for p in DOCS.glob("*.md")), "add the page to PAGES (and its settings)"


def _spans(page: str, text: str) -> list[tuple[int, int]]:
    """Where the page's claims, settings and unchecked spans lie in ``text``."""
    spans = []
    for regex in [pattern(template)[0] for template, _ in PAGES[page]] + \
                 [re.compile(re.escape(flat(setting))) for setting in SETTINGS.get(page, [])]:
        spans += [match.span() for match in regex.finditer(text)]
    for start, end, why in UNCHECKED.get(page, []):
        assert why, f"{page}: say why {start!r} is not checked"
        first = text.find(flat(start))
        last = text.find(flat(end), max(first, 0)) + len(flat(end)) if end else len(text)  # "": to the page's end
        assert first >= 0 and last >= len(flat(end)), f"{page} no longer says {start!r} … {end!r}: update UNCHECKED"
        spans.append((first, last))
    return spans


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_computed_number_on_a_page_has_a_claim(page):
    text, in_table = "", []
    for line in prose((DOCS / page).read_text()).splitlines():
        line = flat(line) + " "
        text += line
        in_table += [line.startswith("|") and not set(line) <= set("|-: ")] * len(line)
    covered = [False] * len(text)
    for start, end in _spans(page, text):
        covered[start:end] = [True] * (end - start)
    unclaimed = [f"{text[max(0, m.start() - 40):m.start()]}[{m.group()}]{text[m.end():m.end() + 10]}"
                 for m in re.finditer(NUMBER, masked(text))
                 if (in_table[m.start()] or "." in m.group()) and not any(covered[m.start():m.end()])]
    assert not unclaimed, f"{page}: numbers without a claim, a setting or a reason:\n" + "\n".join(unclaimed)


def test_the_gaussian_constant_is_the_one_lecture_md_measures():
    """−(D/2) log 2πc against lecture.md section 3: SVI loss = squared error / 2c − that constant."""
    implied = value("autoencoder.mse") / (2 * C) - value("autoencoder.svi_loss_per_example")
    assert abs(value("notation.gaussian_constant") - implied) < 1e-3
    assert abs(value("notation.gaussian_constant") - 182.1655) < 1e-4


def test_the_precision_rule():
    assert agrees("2.51", "", 2.506) and not agrees("2.49", "", 2.506)
    assert agrees("92", "", 91.6) and not agrees("92", "", 91.4)
    assert agrees("25,000", "~", 25131) and not agrees("25,000", "~", 25600)
    assert agrees("3", "<", 2.9) and not agrees("3", "<", 3.1)
    assert agrees("−5.23850", "", -5.2385039) and math.isclose(parse("−7.418346"), -7.418346)


def test_topics_three_seed_table_is_the_mean_of_its_per_seed_values():
    """docs/topics.md's runs are not recorded, but its table must be the mean of the per-seed values it lists."""
    page = (DOCS / "topics.md").read_text()
    rows = {"ProdLDA": "| ProdLDA (Pyro", "our LDA": "| LDA (Pyro", "sklearn": "| sklearn LatentDirichletAllocation"}
    for name, row in rows.items():
        seeds = re.search(re.escape(name) + " " + ", ".join([f"({NUMBER}) / ({NUMBER})"] * 3), flat(page))
        line = next((line for line in page.splitlines() if line.startswith(row)), None)
        assert seeds and line, f"topics.md: no per-seed values or table row for {name}"
        cells = [cell.strip().strip("*") for cell in line.split("|")[1:-1]]  # name, NPMI train, ..., perplexity
        npmi, perplexity = [parse(v) for v in seeds.groups()[0::2]], [parse(v) for v in seeds.groups()[1::2]]
        assert abs(sum(npmi) / 3 - parse(cells[1])) <= 0.001, (name, npmi, cells[1])  # each rounded to 0.001
        assert abs(sum(perplexity) / 3 - parse(cells[4])) <= 0.55, (name, perplexity, cells[4])  # integers per seed


def test_renumber_rewrites_stale_numbers_at_the_precision_shown_and_leaves_bounds_to_a_person():
    """docs/renumber.py (after `make figures`): a stale number is rewritten as the page wrote it (decimals,
    commas, minus sign, ≈ rounding), across line breaks; a bound that broke is reported, not rewritten."""
    import importlib.util
    import types

    spec = importlib.util.spec_from_file_location("renumber", DOCS / "renumber.py")
    renumber = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(renumber)
    values = {"a": 0.2125, "b": -4.81176, "c": 27_814.0, "d": 12_345.6, "e": 0.04}
    numbers = types.SimpleNamespace(NUMBER=NUMBER, agrees=agrees, value=values.__getitem__)
    text = "wide (0.41) and\nloss −5.23850, ratio ≈ 25,000, sum 1,234.5, under 3% here"
    claims = [("wide ({}) and loss {}, ratio ≈ {~}, sum {},", ["a", "b", "c", "d"]), ("under {<}% here", ["e"])]
    new, notes = renumber.renumber("page.md", text, claims, numbers)
    assert new == "wide (0.21) and\nloss −4.81176, ratio ≈ 28,000, sum 12,345.6, under 3% here"
    assert len(notes) == 4 and all("→" in note for note in notes)
    values["e"] = 5.0
    assert renumber.renumber("page.md", text, claims[1:], numbers)[1][0].startswith("page.md: e = 5 breaks the bound")
