"""The instruments of the lecture's generation evidence (examples/generation_quality.py, latent_gaps.py,
pca_vs_autoencoder.py), checked on small data where the answer is known. The full computation is
``make figures``; these tests take seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_vae import analysis


class FixedJudge:
    """A judge whose probabilities are given: the digit-rate arithmetic, without a classifier."""

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities, dtype=float)

    def predict_proba(self, images):
        return self.probabilities[: len(images)]


def test_gaussian_draws_recover_the_mean_and_covariance_of_the_codes():
    generator = torch.Generator().manual_seed(0)
    mean, factor = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.5, 0.0], [0.0, -0.3, 0.2]])
    codes = mean + torch.randn(20_000, 3, generator=generator) @ factor.T
    fitted_mean, fitted_cov = analysis.fit_gaussian(codes)
    assert torch.allclose(fitted_mean, mean, atol=0.03)
    assert torch.allclose(fitted_cov, factor @ factor.T, atol=0.03)
    draws = analysis.gaussian_draws(codes, 20_000, seed=1)
    assert torch.allclose(draws.mean(0), mean, atol=0.04)
    assert torch.allclose(torch.cov(draws.T), factor @ factor.T, atol=0.05)
    assert torch.equal(draws, analysis.gaussian_draws(codes, 20_000, seed=1))  # seeded
    assert not torch.equal(draws, analysis.gaussian_draws(codes, 20_000, seed=2))


def test_digit_rate_counts_confident_images_and_the_effective_number_of_classes():
    sure = np.eye(10)[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]  # 2 of each class, p = 1
    unsure = np.full((5, 10), 0.1)
    judged = analysis.digit_rate(FixedJudge(np.r_[sure, unsure]), torch.zeros(25, 4))
    assert judged["digit_rate"] == pytest.approx(20 / 25)
    assert judged["coverage"] == pytest.approx(10.0)  # every class equally often
    one_class = analysis.digit_rate(FixedJudge(np.eye(10)[[3] * 8]), torch.zeros(8, 4))
    assert one_class["digit_rate"] == 1.0 and one_class["coverage"] == pytest.approx(1.0)
    two = analysis.digit_rate(FixedJudge(np.eye(10)[[3, 3, 7, 7]]), torch.zeros(4, 4))
    assert two["coverage"] == pytest.approx(2.0)
    assert analysis.digit_rate(FixedJudge(unsure), torch.zeros(5, 4))["digit_rate"] == 0.0


def test_blends_mix_two_digits_of_different_classes():
    x = torch.eye(6)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    blends = analysis.blended_digits(x, labels, 30, seed=0)
    assert len(blends) == 30
    assert torch.all(blends.sum(1) == 1.0) and torch.all(blends.max(1).values == 0.5)  # two rows, half each
    ones = (blends > 0).nonzero()[:, 1].reshape(30, 2)
    assert torch.all(labels[ones[:, 0]] != labels[ones[:, 1]])


def test_pca_errors_match_sklearn_and_the_trailing_eigenvalues():
    from sklearn.decomposition import PCA

    generator = torch.Generator().manual_seed(0)
    train = torch.randn(300, 12, generator=generator, dtype=torch.float64) * torch.linspace(3, 0.1, 12).double()
    test = torch.randn(50, 12, generator=generator, dtype=torch.float64)
    errors = analysis.pca_errors(train, test, [2, 5, 12])
    pca = PCA(5).fit(train.numpy())
    assert errors[5] == pytest.approx(((test.numpy() - pca.inverse_transform(pca.transform(test.numpy()))) ** 2)
                                      .sum(1).mean(), rel=1e-10)
    assert errors[12] == pytest.approx(0.0, abs=1e-20)  # all components: a perfect reconstruction
    # on the training rows themselves: the sum of the eigenvalues left out (with the 1/n covariance)
    on_train = analysis.pca_errors(train, train, [2])[2]
    eigenvalues = np.linalg.eigvalsh(np.cov(train.numpy().T, bias=True))[::-1]
    assert on_train == pytest.approx(eigenvalues[2:].sum(), rel=1e-8)
    assert errors[2] > errors[5] > errors[12]


def test_the_cnn_judge_is_sure_of_digits_and_not_of_noise_or_shuffled_pixels(digits):
    """On sklearn's 8×8 digits: a few epochs give a judge that reads digits and refuses noise."""
    judge = analysis.train_digit_judge(digits.train, digits.train_labels, (1, 8, 8), epochs=20, max_shift=0)
    test, labels = digits.test, digits.test_labels
    assert judge.score(test.numpy(), labels.numpy()) > 0.85
    real = analysis.digit_rate(judge, test)
    noise = analysis.digit_rate(judge, torch.rand(300, 64, generator=torch.Generator().manual_seed(0)))
    shuffled = test[:, torch.randperm(64, generator=torch.Generator().manual_seed(1))]
    blends = analysis.blended_digits(test, labels, 300, seed=0)
    assert real["digit_rate"] > 0.6 and real["coverage"] > 9
    assert noise["digit_rate"] < 0.05 and analysis.digit_rate(judge, shuffled)["digit_rate"] < 0.1
    assert analysis.digit_rate(judge, blends)["digit_rate"] < real["digit_rate"] - 0.2
    assert judge.predict_proba(test[:3].numpy()).shape == (3, 10)  # the "no digit" class is not a digit


def test_prior_draws_are_seeded_and_on_the_models_device():
    model, _ = analysis.seeded(analysis.vae, (16,), 3, 0.1, (8,))
    first, again = analysis.prior_draws(model, 5, seed=0), analysis.prior_draws(model, 5, seed=0)
    assert first.shape == (5, 16) and torch.equal(first, again)
    assert first.device == next(model.parameters()).device


def test_the_instruments_follow_the_datas_device_under_a_meta_default():
    codes, labels = torch.rand(50, 3), torch.arange(50) % 5
    model, _ = analysis.seeded(analysis.vae, (16,), 3, 0.1, (8,))
    with torch.device("meta"):
        assert analysis.gaussian_draws(codes, 4).device.type == "cpu"
        assert analysis.blended_digits(codes, labels, 4).device.type == "cpu"
        assert analysis.prior_draws(model, 4).device.type == "cpu"
        assert analysis._no_digits(codes, torch.Generator().manual_seed(0)).device.type == "cpu"
