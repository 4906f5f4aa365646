"""The instruments of the lecture's generation evidence (examples/generation_quality.py, latent_gaps.py,
pca_vs_autoencoder.py), checked on small data where the answer is known. The full computation is
``make figures``; these tests take seconds. The judge and its measures: tests/test_quality.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_vae.analysis import experiment, sampling, subspaces


def test_gaussian_draws_recover_the_mean_and_covariance_of_the_codes():
    generator = torch.Generator().manual_seed(0)
    mean, factor = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.5, 0.0], [0.0, -0.3, 0.2]])
    codes = mean + torch.randn(20_000, 3, generator=generator) @ factor.T
    fitted_mean, fitted_cov = sampling.fit_gaussian(codes)
    assert torch.allclose(fitted_mean, mean, atol=0.03)
    assert torch.allclose(fitted_cov, factor @ factor.T, atol=0.03)
    draws = sampling.gaussian_draws(codes, 20_000, seed=1)
    assert torch.allclose(draws.mean(0), mean, atol=0.04)
    assert torch.allclose(torch.cov(draws.T), factor @ factor.T, atol=0.05)
    assert torch.equal(draws, sampling.gaussian_draws(codes, 20_000, seed=1))  # seeded
    assert not torch.equal(draws, sampling.gaussian_draws(codes, 20_000, seed=2))


def test_blends_mix_two_digits_of_different_classes():
    x = torch.eye(6)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    blends = sampling.blended_digits(x, labels, 30, seed=0)
    assert len(blends) == 30
    assert torch.all(blends.sum(1) == 1.0) and torch.all(blends.max(1).values == 0.5)  # two rows, half each
    ones = (blends > 0).nonzero()[:, 1].reshape(30, 2)
    assert torch.all(labels[ones[:, 0]] != labels[ones[:, 1]])


def test_pca_errors_match_sklearn_and_the_trailing_eigenvalues():
    from sklearn.decomposition import PCA

    generator = torch.Generator().manual_seed(0)
    train = torch.randn(300, 12, generator=generator, dtype=torch.float64) * torch.linspace(3, 0.1, 12).double()
    test = torch.randn(50, 12, generator=generator, dtype=torch.float64)
    errors = subspaces.pca_errors(train, test, [2, 5, 12])
    pca = PCA(5).fit(train.numpy())
    assert errors[5] == pytest.approx(((test.numpy() - pca.inverse_transform(pca.transform(test.numpy()))) ** 2)
                                      .sum(1).mean(), rel=1e-10)
    assert errors[12] == pytest.approx(0.0, abs=1e-20)  # all components: a perfect reconstruction
    # on the training rows themselves: the sum of the eigenvalues left out (with the 1/n covariance)
    on_train = subspaces.pca_errors(train, train, [2])[2]
    eigenvalues = np.linalg.eigvalsh(np.cov(train.numpy().T, bias=True))[::-1]
    assert on_train == pytest.approx(eigenvalues[2:].sum(), rel=1e-8)
    assert errors[2] > errors[5] > errors[12]


def test_prior_draws_are_seeded_and_on_the_models_device():
    model, _ = experiment.seeded(experiment.vae, (16,), 3, 0.1, (8,))
    first, again = sampling.prior_draws(model, 5, seed=0), sampling.prior_draws(model, 5, seed=0)
    assert first.shape == (5, 16) and torch.equal(first, again)
    assert first.device == next(model.parameters()).device


def test_the_instruments_follow_the_datas_device_under_a_meta_default():
    codes, labels = torch.rand(50, 3), torch.arange(50) % 5
    model, _ = experiment.seeded(experiment.vae, (16,), 3, 0.1, (8,))
    with torch.device("meta"):
        assert sampling.gaussian_draws(codes, 4).device.type == "cpu"
        assert sampling.blended_digits(codes, labels, 4).device.type == "cpu"
        assert sampling.prior_draws(model, 4).device.type == "cpu"
