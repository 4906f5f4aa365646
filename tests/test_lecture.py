"""The lecture's claims, checked on numbers (not pixels) with small data, few epochs and fixed seeds.

Each test names the lecture item it checks; examples/ draws the figures from the same functions.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

import pyro
from pyro.infer import Trace_ELBO

from pyro_vae.analysis import ablation, bayes, corruption, experiment, gradients, latent_space, subspaces
from pyro_vae.evaluate import elbo_parts, encode
from pyro_vae.guides.delta import DeltaGuide
from pyro_vae.guides.denoising import DenoisingGuide
from pyro_vae.guides.score_function import ScoreFunctionGuide
from pyro_vae.models import VAE
from pyro_vae.models.autoencoder import Autoencoder
from pyro_vae.objectives import Objective, scale_observations

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

LECTURE_TABLE = """\
Point  Initial        Encoded  Decoded
A      (-0.50,-0.40)  -0.63    (-0.54,-0.33)
B      (-0.40,-0.10)  -0.39    (-0.34,-0.20)
C      ( 0.10, 0.00)   0.09    ( 0.07, 0.04)
D      ( 0.30, 0.30)   0.41    ( 0.35, 0.21)
E      ( 0.50, 0.20)   0.53    ( 0.46, 0.27)
"""


@pytest.fixture(scope="module")
def mnist(mnist_5k):
    """2,000 training rows and 500 test rows of MNIST-5k: enough for every claim, fast on 2 cores."""
    return mnist_5k.train[:2000], mnist_5k.train_labels[:2000], mnist_5k.test[:500], mnist_5k.test_labels[:500]


@pytest.fixture(scope="module")
def vae_2d(mnist):
    """The lecture's VAE with a 2-D code, c = 0.1, briefly trained: shared by the tests that need one."""
    return trained(experiment.seeded(experiment.vae, (1, 28, 28), 2, 0.1, (128,)), mnist[0], epochs=10)


def trained(pair, x, epochs, objective=None, lr=1e-3, seed=0, batch_size=128):
    model, guide = pair
    return experiment.train(model, guide, x, epochs=epochs, lr=lr, seed=seed, batch_size=batch_size,
                          objective=objective)


# ---- 1. PCA --------------------------------------------------------------------------------------

def test_pca_example_prints_the_lectures_table_exactly(tmp_path, capsys):
    sys.path.insert(0, str(EXAMPLES))
    try:
        import pca
    finally:
        sys.path.remove(str(EXAMPLES))
    pca.main(tmp_path)
    printed = capsys.readouterr().out
    assert printed.startswith(LECTURE_TABLE)
    assert (tmp_path / "pca.png").stat().st_size > 0


def test_pca_encodes_onto_the_top_eigenvector_and_decodes_back():
    """Independent of sklearn: the code is the projection on the covariance's top eigenvector."""
    points = torch.tensor([[-0.5, -0.4], [-0.4, -0.1], [0.1, 0.0], [0.3, 0.3], [0.5, 0.2]], dtype=torch.float64)
    codes, decoded, components = subspaces.pca_table(points.numpy(), 1)
    centred = points - points.mean(0)
    top = torch.linalg.eigh(centred.T @ centred).eigenvectors[:, -1]
    top = top * top.sign()[top.abs().argmax()]
    assert torch.allclose(torch.from_numpy(components[0]), top, atol=1e-10)
    assert torch.allclose(torch.from_numpy(codes[:, 0]), centred @ top, atol=1e-10)
    assert torch.allclose(torch.from_numpy(decoded), points.mean(0) + torch.outer(centred @ top, top), atol=1e-10)


# ---- 2. linear autoencoder -------------------------------------------------------------------

def test_a_linear_autoencoder_spans_the_pca_subspace_with_another_basis(mnist):
    x = mnist[0]
    latent_dim = 6  # MNIST's eigenvalue gap λ6/λ7 ≈ 1.3 makes the top-6 subspace well defined
    model, guide = trained(experiment.seeded(experiment.autoencoder, (1, 28, 28), latent_dim, linear=True), x,
                           epochs=40, lr=1e-2, batch_size=64)
    _, _, components = subspaces.pca_table(x.numpy(), latent_dim)
    basis = model.decoder.weight.detach().numpy()
    report = subspaces.basis_report(basis, components.T)
    random_basis = torch.randn(x.shape[1], latent_dim, generator=torch.Generator().manual_seed(0)).numpy()
    assert subspaces.principal_angles(random_basis, components.T).max() > 60  # what "not the subspace" looks like
    assert report["max_angle"] < 6, report
    assert report["orthonormality_error"] > 1, report  # WᵀW is far from I
    assert report["alignment"] < 0.8, report  # column i of W is not principal direction i


# ---- 3. the autoencoder as a Pyro program ------------------------------------------------------

@pytest.mark.parametrize("c", [0.1, 2.0])
def test_the_autoencoders_svi_loss_is_squared_error_over_2c_plus_a_constant(c):
    x = torch.rand(16, 64, generator=torch.Generator().manual_seed(1))
    model, guide = experiment.seeded(experiment.autoencoder, (64,), 3, c, (32,))
    constant = 0.5 * x.numel() * math.log(2 * math.pi * c)
    for step in range(2):  # the identity holds for any weights, so check two settings of them
        loss = Trace_ELBO().differentiable_loss(model, guide, x)
        squared_error = (x - model.decoder(guide.encoder(x))).pow(2).sum()
        assert float(loss.detach()) == pytest.approx(float(squared_error.detach() / (2 * c) + constant), rel=1e-5)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
    parts = elbo_parts(model, guide, x)
    assert parts["kl"] == 0  # the prior is masked and the Delta guide has log q = 0


def test_autoencoder_to_vae_is_the_guide_and_the_prior(mnist_5k):
    """The same decoder under the VAE model scores log p(z) too; the Delta guide's code is e(x)."""
    x = mnist_5k.test[:8]
    model, guide = experiment.seeded(experiment.autoencoder, (1, 28, 28), 2, 0.1, (32,))
    assert isinstance(model, Autoencoder) and isinstance(guide, DeltaGuide)
    assert torch.equal(encode(guide, x), guide.encoder(x))
    unmasked = VAE(model.decoder, 2, model.likelihood)
    with torch.no_grad():
        gap = Trace_ELBO().loss(unmasked, guide, x) - Trace_ELBO().loss(model, guide, x)
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(guide.encoder(x)).sum()
    assert gap == pytest.approx(-float(log_prior), rel=1e-5)


# ---- 4. denoising ------------------------------------------------------------------------------

def test_the_denoising_autoencoder_beats_the_plain_one_on_noisy_input(mnist):
    x, _, test, _ = mnist
    plain = trained(experiment.seeded(experiment.autoencoder, (1, 28, 28), 16, hidden=(128,)), x, epochs=8)
    model, guide = experiment.seeded(experiment.autoencoder, (1, 28, 28), 16, hidden=(128,))
    denoising = trained((model, DenoisingGuide(guide, drop=0.5)), x, epochs=8)
    noisy = corruption.noisy_copy(test, drop=0.5, seed=1)  # half the pixels erased, apart from the training draws
    plain_mse, denoising_mse = (corruption.denoising_mse(*pair, test, noisy) for pair in (plain, denoising))
    noisy_mse = float((noisy - test).pow(2).sum(1).mean())
    assert plain_mse < noisy_mse and denoising_mse < 0.85 * plain_mse, (denoising_mse, plain_mse, noisy_mse)


def test_the_denoising_guide_corrupts_only_while_training():
    x = torch.rand(4, 10)
    guide = DenoisingGuide(DeltaGuide(torch.nn.Identity()), noise=0.5, drop=0.5)
    assert not torch.equal(guide.train()(x), x)
    assert torch.equal(guide.eval()(x), x)


# ---- 5. gaps in the latent space -----------------------------------------------------------------

def test_vae_codes_are_overlapping_regions_and_autoencoder_codes_are_points(mnist, vae_2d):
    """The lecture's mechanism for a continuous latent space: the VAE's decoder is trained on regions
    N(μ(x), σ(x)²) wider than the spacing between neighbouring codes, the autoencoder's only on points."""
    x = mnist[0]
    ae_guide = DeltaGuide(torch.nn.Linear(x.shape[1], 2))
    assert float(latent_space.posterior_scale(ae_guide, x).abs().max()) == 0
    _, guide = vae_2d
    codes, sigma = encode(guide, x), latent_space.posterior_scale(guide, x)
    spacing = torch.cdist(codes, codes).topk(2, largest=False).values[:, 1]  # distance to the nearest other code
    assert float(sigma.mean(1).median()) > 1.5 * float(spacing.median())


def test_the_held_out_classifier_is_confident_on_digits_and_not_on_noise(mnist):
    """The logistic-regression judge of examples/attribute_vector.py (section 5 now uses the CNN judge of
    tests/test_generation_quality.py)."""
    x, labels, test, _ = mnist
    judge = latent_space.digit_classifier(x[:1000], labels[:1000])
    noise = torch.rand(500, x.shape[1], generator=torch.Generator().manual_seed(0))
    shuffled = test[:, torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(0))]
    assert latent_space.confident_fraction(judge, test) > 0.5
    assert latent_space.confident_fraction(judge, noise) < 0.1 and latent_space.confident_fraction(judge, shuffled) < 0.1


def test_latent_grid_and_empty_fraction_on_known_codes():
    codes = torch.stack(torch.meshgrid(torch.arange(10.0), torch.arange(10.0), indexing="xy"), -1).reshape(-1, 2)
    grid = latent_space.latent_grid(codes, 5, quantile=0.0)
    assert grid.shape == (25, 2) and grid.min() == 0 and grid.max() == 9
    assert latent_space.empty_fraction(codes, grid) == 0  # a full lattice has no holes
    holed = codes[(codes - 4.5).norm(dim=1) > 4]  # a disc of radius 4 cut out of the middle
    assert latent_space.empty_fraction(holed, torch.tensor([[4.5, 4.5], [0.0, 0.0]]), factor=3) == 0.5


# ---- 6. ablation ---------------------------------------------------------------------------------

def test_ablation_kl_only_collapses_and_reconstruction_only_spreads_out(mnist, vae_2d):
    x, _, test, test_labels = mnist
    rows = {}
    for kind in ("recon-only", "kl-only", "both"):
        model, guide = vae_2d if kind == "both" else experiment.seeded(experiment.vae, (1, 28, 28), 2, 0.1, (128,))
        if kind == "recon-only":  # β = 0: the latent sites of model and guide scaled to 0
            trained((model, guide), x, epochs=10, objective=Objective(beta=0.0))
        elif kind == "kl-only":  # the observed site scaled to 0
            trained((ablation.Handled(model, scale_observations(0.0)), guide), x, epochs=10)
        codes = encode(guide, test)
        rows[kind] = {**ablation.elbo_terms(model, guide, test), **latent_space.cluster_separation(codes, test_labels)}
    recon, kl, both = rows["recon-only"], rows["kl-only"], rows["both"]
    # KL only: q(z|x) ≈ N(0, I) for every x: the codes move less than their own noise and say little about x
    assert kl["kl"] < 0.05 and kl["spread"] < 0.1 * kl["sigma"], rows
    assert kl["knn_accuracy"] < 0.6 * min(both["knn_accuracy"], recon["knn_accuracy"]), rows
    assert both["spread"] > 5 * both["sigma"], rows
    assert kl["mse"] > 1.5 * both["mse"], rows
    # reconstruction only: nothing stops σ(x) from shrinking, so each code is a point and the classes lie
    # far apart relative to the room each code takes up; the KL to N(0, I) is large
    assert recon["sigma"] < 0.3 * both["sigma"], rows
    assert recon["spread"] / recon["sigma"] > 3 * both["spread"] / both["sigma"], rows
    assert recon["kl"] > 1.5 * both["kl"], rows
    assert recon["mse"] < 1.1 * both["mse"], rows


# ---- 7. the role of c ------------------------------------------------------------------------------

def test_a_larger_c_puts_more_weight_on_the_kl_term(mnist):
    x, _, test, _ = mnist
    kls, mses = [], []
    for c in (0.01, 0.1, 1.0):
        model, guide = trained(experiment.seeded(experiment.vae, (1, 28, 28), 8, c, (128,)), x, epochs=6)
        terms = ablation.elbo_terms(model, guide, test)
        kls.append(terms["kl"]), mses.append(terms["mse"])
    assert kls[0] > kls[1] > kls[2], kls  # less information in the codes ...
    assert mses[2] > 1.2 * mses[0], mses  # ... and worse reconstructions


# ---- 8. the reparameterization trick ---------------------------------------------------------

def test_pathwise_gradients_have_far_lower_variance_than_score_function_ones(mnist, vae_2d):
    model, guide = vae_2d
    batch = mnist[2][:16]
    params = [*guide.encoder.mu.parameters(), *guide.encoder.sigma.parameters()]  # the heads g and h
    pathwise = gradients.gradient_draws(model, guide, batch, params, num_draws=100, seed=1)
    score = gradients.gradient_draws(model, ScoreFunctionGuide(guide.encoder), batch, params, num_draws=100, seed=2)
    assert gradients.gradient_variance(score) > 20 * gradients.gradient_variance(pathwise)
    # both estimate the same gradient: their means agree within 4 standard errors on ≥ 95% of coordinates
    standard_error = ((pathwise.var(0) + score.var(0)) / 100).sqrt()
    agree = ((pathwise.mean(0) - score.mean(0)).abs() <= 4 * standard_error + 1e-8).float().mean()
    assert agree > 0.95, float(agree)


def test_zero_variance_gradient_coordinates_are_the_weights_of_silent_relu_units(mnist, vae_2d):
    """Why the variance curves of examples/reparameterization.py end early: a ReLU unit of the encoder's trunk
    that outputs 0 on every image of the batch gives its outgoing weights in the μ and σ heads a gradient of
    exactly 0 in every draw, and every other coordinate varies."""
    model, guide = vae_2d
    batch = mnist[2][:16]
    params = [*guide.encoder.mu.parameters(), *guide.encoder.sigma.parameters()]
    zero = gradients.gradient_draws(model, guide, batch, params, num_draws=10, seed=1).var(0) == 0
    with torch.no_grad():
        silent = (guide.encoder.trunk(batch) == 0).all(0)
    weights, bias = silent.expand(2, -1).reshape(-1), torch.zeros(2, dtype=torch.bool)
    assert silent.any()  # the claim needs silent units to say something
    assert torch.equal(zero, torch.cat([weights, bias, weights, bias]))


def test_the_score_function_guide_is_the_same_distribution_without_rsample(mnist_5k):
    x = mnist_5k.test[:4]
    _, guide = experiment.seeded(experiment.vae, (1, 28, 28), 2, 0.1, (16,))
    sites = [pyro.poutine.trace(g).get_trace(x).nodes["z"] for g in (guide, ScoreFunctionGuide(guide.encoder))]
    assert sites[0]["fn"].has_rsample and not sites[1]["fn"].has_rsample
    assert torch.equal(sites[0]["fn"].mean, sites[1]["fn"].mean)
    assert not sites[1]["value"].requires_grad and sites[0]["value"].requires_grad


# ---- 9, 10. moving in the latent space ----------------------------------------------------------

def test_lerp_and_slerp_paths():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 1.0])
    t = torch.linspace(0, 1, 5)
    for path in (latent_space.lerp(a, b, t), latent_space.slerp(a, b, t)):
        assert torch.allclose(path[0], a) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.allclose(latent_space.lerp(a, b, t)[2], (a + b) / 2)
    slerp = latent_space.slerp(a, b, t)
    assert torch.allclose(slerp.norm(dim=1), 3 + t * (1 - 3), atol=1e-6)  # the norm moves linearly
    angles = torch.atan2(slerp[:, 1], slerp[:, 0])
    assert torch.allclose(angles, t * math.pi / 2, atol=1e-6)  # at a constant angular speed


def test_an_attribute_vector_is_the_difference_of_group_means():
    codes = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 0.0], [0.0, 2.0]])
    has = torch.tensor([True, True, False, False])
    assert torch.equal(latent_space.attribute_vector(codes, has), torch.tensor([2.0, 0.0]))


# ---- 11. Bayes and the ELBO -------------------------------------------------------------------------

def test_log_evidence_is_elbo_plus_kl_to_the_posterior_on_a_linear_gaussian_model():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(5, 2, generator=generator, dtype=torch.float64)
    bias, x = torch.randn(5, generator=generator, dtype=torch.float64), torch.randn(5, generator=generator,
                                                                                     dtype=torch.float64)
    for _ in range(5):
        loc = torch.randn(2, generator=generator, dtype=torch.float64)
        scale = torch.rand(2, generator=generator, dtype=torch.float64) + 0.1
        terms = bayes.linear_gaussian_terms(weight, bias, 0.5, x, loc, scale)
        assert terms["kl_posterior"] > 0
        assert terms["elbo"] + terms["kl_posterior"] == pytest.approx(terms["log_px"], abs=1e-10)
    # Pyro's Monte-Carlo ELBO of the same model (the package's VAE with a linear decoder) agrees
    decoder = torch.nn.Linear(2, 5).double()
    with torch.no_grad():
        decoder.weight.copy_(weight), decoder.bias.copy_(bias)

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", pyro.distributions.Normal(loc, scale).to_event(1))

    from pyro_vae.models.likelihoods import Gaussian

    model = VAE(decoder, 2, Gaussian(0.5))
    elbo = Trace_ELBO(num_particles=20_000, vectorize_particles=True, max_plate_nesting=1)
    estimates = torch.tensor([-elbo.loss(model, guide, x[None]) for _ in range(8)])
    standard_error = float(estimates.std() / math.sqrt(len(estimates)))
    assert abs(float(estimates.mean()) - terms["elbo"]) < 4 * standard_error + 1e-3


# ---- the new programs follow the data's device --------------------------------------------------

def test_autoencoder_denoising_and_score_function_programs_run_under_the_meta_device():
    x = torch.rand(8, 64, generator=torch.Generator().manual_seed(0))
    model, guide = experiment.seeded(experiment.autoencoder, (64,), 2, 0.1, (16,))
    _, vae_guide = experiment.seeded(experiment.vae, (64,), 2, 0.1, (16,))
    with torch.device("meta"):
        for g in (guide, DenoisingGuide(guide, noise=0.3, drop=0.5).train(), ScoreFunctionGuide(vae_guide.encoder)):
            assert Trace_ELBO().differentiable_loss(model, g, x).device.type == "cpu"
        assert corruption.noisy_copy(x).device.type == "cpu"
