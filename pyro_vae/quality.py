"""Sample quality: generated images measured against held-out data in a judge's feature space.

A *judge* is a small CNN classifier (:class:`DigitJudge`) trained here on the data set's training split,
with one extra "no digit" class (noise and pixel-shuffled images). Its penultimate layer (128 ReLU units)
is the feature space of every measure:

- :func:`frechet_distance`: the Fréchet distance between Gaussians fitted to the two feature sets, as in
  FID (Heusel et al. 2017). FID proper uses ImageNet's Inception network, whose weights can't be
  downloaded here; ours uses the judge trained on the same data set, so its numbers compare generators
  on one data set only, never with published FIDs;
- :func:`precision_recall`: improved precision and recall (Kynkäänniemi et al. 2019): k-nearest-
  neighbour balls around each real and each generated feature vector estimate the two manifolds;
- :func:`digit_rate`: the rate of confident judgments (one class with probability ≥ 0.9) and the judged
  classes' coverage, exp(entropy) of their histogram.

:func:`judge` trains a data set's judge once with a fixed seed and caches it in the data folder
(``pyro_vae.data``'s, ``judge-NAME-v1.pt``) with its test accuracy, which every report carries.
:func:`sample_quality` measures a set of images; :func:`of_run` does so for a run's prior draws
(``pyro-vae evaluate RUN --samples N``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn

from pyro_vae import settings
from pyro_vae.errors import UserError

if TYPE_CHECKING:
    from pyro_vae.data import Dataset
    from pyro_vae.runs import Run

THRESHOLD = 0.9  # a judgment is confident when one class gets probability ≥ this
K = 3            # neighbours of the precision/recall manifolds (Kynkäänniemi et al. use k = 3)
VERSION = 1      # of the judge's recipe and network; a cache of another version is retrained


@dataclass(frozen=True)
class Recipe:
    """How a data set's judge is trained: epochs over the training split, random shifts of up to
    ``max_shift`` pixels. 60,000 Fashion-MNIST images need fewer epochs than 4,000 digits."""

    epochs: int
    max_shift: int = 2
    seed: int = 0


RECIPES = {"mnist-5k": Recipe(epochs=12), "fashion-mnist": Recipe(epochs=3), "digits": Recipe(epochs=20, max_shift=0)}


# ---- the judge ----------------------------------------------------------------------------------

class DigitJudge(nn.Module):
    """A small convolutional classifier, the judge of decoded images (trained apart from every
    autoencoder). Rows of pixels in [0, 1] → p(class | x) over the data's classes and one extra "no digit"
    class, trained on noise, so that a confident answer means a digit (a garment, for Fashion-MNIST).
    ``predict_proba`` returns the classes' probabilities only (the "no digit" mass lowers them) and, like
    ``predict``, takes and returns NumPy arrays as sklearn's classifiers do, so
    ``latent_space.confident_fraction`` accepts it. ``features`` is the 128-unit layer before the logits."""

    def __init__(self, shape: Sequence[int] = (1, 28, 28), classes: int = 10):
        super().__init__()
        c, h, w = shape
        self.shape, self.classes = (c, h, w), classes
        self.net = nn.Sequential(
            nn.Unflatten(1, (c, h, w)),
            nn.Conv2d(c, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * (h // 4) * (w // 4), 128), nn.ReLU(),
            nn.Linear(128, classes + 1))  # the last class: "no digit"
        self.test_accuracy: float | None = None  # set by :func:`judge` on its data set's test split

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of p(class | x)."""
        return self.net(x)

    @torch.no_grad()
    def _batched(self, layers: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
        """``layers`` applied to the rows in eval mode, batch by batch, images clamped to [0, 1] first."""
        self.eval()
        images = torch.as_tensor(images).detach().clamp(0, 1).to(next(self.parameters()))
        return torch.cat([layers(part) for part in images.split(batch_size)])

    def probabilities(self, images: torch.Tensor, batch_size: int = settings.TrainingSettings.eval_batch_size) -> torch.Tensor:
        """softmax(logits) for every row."""
        return self._batched(self.net, images, batch_size).softmax(-1)

    def features(self, images: torch.Tensor, batch_size: int = settings.TrainingSettings.eval_batch_size) -> torch.Tensor:
        """The penultimate layer's activations (N, 128): the space the Fréchet distance and the
        precision/recall manifolds are computed in."""
        return self._batched(self.net[:-1], images, batch_size)

    def predict_proba(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """p(class k | x) for the classes k (without the "no digit" class), as a NumPy array."""
        return self.probabilities(torch.as_tensor(images))[:, :-1].cpu().numpy()

    def predict(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """The most probable class of each row (never the "no digit" class)."""
        return self.predict_proba(images).argmax(1)

    def score(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
        """Accuracy on (images, labels)."""
        return float((self.predict(images) == np.asarray(labels)).mean())


def train_digit_judge(x: torch.Tensor, labels: torch.Tensor, shape: Sequence[int] = (1, 28, 28), *,
                      epochs: int = 12, batch_size: int = 64, lr: float = 1e-3, max_shift: int = 2,
                      seed: int = 0) -> DigitJudge:
    """Fits :class:`DigitJudge` by Adam on the cross-entropy of (x, labels), on x's device, with random
    shifts of up to ``max_shift`` pixels (decoded digits are not all centred like MNIST's). Each batch also holds a
    quarter as many "no digit" images: uniform noise and pixel-shuffled digits (a digit's ink, no shape)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    torch.manual_seed(seed)
    classes = int(labels.max()) + 1
    judge = DigitJudge(shape, classes).to(x.device)
    optimizer = torch.optim.Adam(judge.parameters(), lr=lr)
    c, h, w = judge.shape
    for _ in range(epochs):
        judge.train()
        order = torch.randperm(len(x), generator=generator, device="cpu").to(x.device)
        for rows in order.split(batch_size):
            shift = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator, device="cpu")
            dy, dx = int(shift[0]), int(shift[1])
            images = x[rows].reshape(-1, c, h, w).roll((dy, dx), dims=(2, 3)).reshape(len(rows), -1)
            junk = _no_digits(x[rows[: max(2, len(rows) // 4)]], generator)
            target = torch.cat([labels[rows], labels.new_full((len(junk),), classes)])
            loss = nn.functional.cross_entropy(judge(torch.cat([images, junk])), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return judge.eval()


def _no_digits(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Images that are no digit: half uniform noise, half the rows of x with their pixels shuffled."""
    half = len(x) // 2
    noise = torch.rand(half, x.shape[1], generator=generator, device="cpu").to(x)
    shuffled = x[half:, torch.randperm(x.shape[1], generator=generator, device="cpu").to(x.device)]
    return torch.cat([noise, shuffled])


def judge(dataset: Dataset, data_dir: str | os.PathLike | None = None, recipe: Recipe | None = None) -> DigitJudge:
    """The judge of ``dataset`` (a name in :data:`RECIPES`), trained once by its recipe and cached as
    ``DATA_DIR/judge-NAME-v1.pt`` (written atomically: a temporary file, then a rename). A cache that can't
    be read, or was made by another recipe, is retrained with a one-line note on stderr. The judge's
    ``test_accuracy`` on the data set's test split is kept with it."""
    from pyro_vae import data

    recipe = recipe or RECIPES.get(dataset.name)
    if recipe is None:
        raise UserError(f"no judge for dataset {dataset.name!r}: sample-quality measures need one, trained here "
                        f"for {', '.join(RECIPES)}; train the run on one of those")
    if dataset.train_labels is None or len(dataset.shape) != 3:
        raise UserError(f"dataset {dataset.name!r} has no labels or no (C, H, W) image shape to train a judge on")
    folder = Path(data_dir) if data_dir else data.DEFAULT_DATA_DIR
    path = folder / f"judge-{dataset.name}-v{VERSION}.pt"
    classes = int(dataset.train_labels.max()) + 1
    if path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved["recipe"] != [recipe.epochs, recipe.max_shift, recipe.seed]:
                raise ValueError(f"made by another recipe, {saved['recipe']}")
            judged = DigitJudge(dataset.shape, classes)
            judged.load_state_dict(saved["state"])
            judged.test_accuracy = float(saved["test_accuracy"])
            return judged.eval()
        except Exception as error:  # a truncated, foreign or stale file: retrain rather than fail
            reason = " ".join(str(error).split())[:100]  # one line, whatever the library wrote
            print(f"pyro-vae: note: the cached judge {path} can't be used ({type(error).__name__}: {reason}); "
                  "training it again", file=sys.stderr)
    judged = train_digit_judge(dataset.train, dataset.train_labels, dataset.shape, epochs=recipe.epochs,
                               max_shift=recipe.max_shift, seed=recipe.seed).cpu()
    judged.test_accuracy = judged.score(dataset.test, dataset.test_labels.cpu().numpy())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"state": judged.state_dict(), "test_accuracy": judged.test_accuracy,
                    "recipe": [recipe.epochs, recipe.max_shift, recipe.seed]}, tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only data folder only costs the training next time
    return judged


# ---- the measures --------------------------------------------------------------------------------

def digit_rate(judge: DigitJudge, images: torch.Tensor, threshold: float = THRESHOLD, classes: int = 10) -> dict:
    """How digit-like a set of images is, as the judge (anything with sklearn's ``predict_proba``) sees it.

    - ``digit_rate``: the fraction of images the judge assigns to one class with probability ≥ threshold;
    - ``coverage``: the effective number of classes among those images, exp(H(p̂)) with p̂ the histogram of
      their predicted classes (``classes`` if every class is equally frequent, 1 if all are one digit);
    - ``class_histogram``: p̂ itself.
    """
    probabilities = torch.as_tensor(judge.predict_proba(images.detach().cpu().clamp(0, 1).numpy()), device="cpu")
    confident, predicted = probabilities.max(1)
    sure = predicted[confident >= threshold]
    histogram = torch.bincount(sure, minlength=classes).double()
    if len(sure) == 0:
        return {"digit_rate": 0.0, "coverage": 0.0, "class_histogram": histogram.tolist()}
    p = histogram / histogram.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"digit_rate": float(len(sure) / len(images)), "coverage": float(entropy.exp()),
            "class_histogram": p.tolist()}


def gaussian_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, covariance) in float64 of feature rows: m = (1/n) Σ fᵢ, S = (1/(n−1)) Σ (fᵢ − m)(fᵢ − m)ᵀ."""
    f = features.detach().cpu().double()
    if f.shape[0] < 2:
        raise UserError(f"a Fréchet distance needs at least 2 images per set, got {f.shape[0]}")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def gaussian_frechet_distance(mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor,
                              cov_b: torch.Tensor) -> float:
    """The squared Fréchet (2-Wasserstein) distance between N(m_a, S_a) and N(m_b, S_b):

        d² = ‖m_a − m_b‖² + tr(S_a) + tr(S_b) − 2 tr((S_a^½ S_b S_a^½)^½)

    in float64. tr((S_a S_b)^½) equals the trace of the symmetric square root of S_a^½ S_b S_a^½, so two
    symmetric eigendecompositions give it; their eigenvalues are clipped at 0 (rounding makes tiny
    negative ones in rank-deficient covariances, e.g. 128 features from fewer than 128 images)."""
    mean_a, cov_a, mean_b, cov_b = (torch.as_tensor(t).double() for t in (mean_a, cov_a, mean_b, cov_b))
    values, vectors = torch.linalg.eigh((cov_a + cov_a.T) / 2)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = root_a @ cov_b @ root_a
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return float((mean_a - mean_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """d² between the Gaussians fitted (:func:`gaussian_statistics`) to two sets of feature rows: FID's
    formula, here in the judge's feature space. Biased upward for small sets: compare equal sizes."""
    return gaussian_frechet_distance(*gaussian_statistics(features_a), *gaussian_statistics(features_b))


def knn_radii(points: torch.Tensor, k: int = K, batch_size: int = 2048) -> torch.Tensor:
    """Each point's distance to its k-th nearest neighbour among the others: the radius of its ball."""
    if k >= points.shape[0]:
        raise UserError(f"precision and recall with k = {k} need more than {k} images per set, got {points.shape[0]}")
    # the k + 1 smallest distances include the point itself (0)
    return torch.cat([torch.cdist(part, points).topk(k + 1, largest=False).values[:, k]
                      for part in points.split(batch_size)])


def manifold_fraction(queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor,
                      batch_size: int = 2048) -> float:
    """The fraction of queries inside the estimated manifold ∪ᵢ B(pᵢ, rᵢ) of the points:
    mean over q of 1[∃ i: ‖q − pᵢ‖ ≤ rᵢ]."""
    inside = [(torch.cdist(part, points) <= radii).any(1) for part in queries.split(batch_size)]
    return float(torch.cat(inside).double().mean())


def precision_recall(real: torch.Tensor, generated: torch.Tensor, k: int = K) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of generated against real feature rows:

        precision = (1/|G|) Σ_g 1[g ∈ manifold(R)],   recall = (1/|R|) Σ_r 1[r ∈ manifold(G)],

    where manifold(X) = ∪_x B(x, distance from x to its k-th nearest neighbour in X). Precision: how
    many samples look real; recall: how much of the real data the samples cover. In float64."""
    real, generated = real.detach().double(), generated.detach().double()
    return {"precision": manifold_fraction(generated, real, knn_radii(real, k)),
            "recall": manifold_fraction(real, generated, knn_radii(generated, k))}


def sample_quality(judged: DigitJudge, images: torch.Tensor, reference: torch.Tensor, k: int = K) -> dict:
    """Every measure of ``images`` against held-out ``reference`` images (rows in [0, 1]):
    ``frechet_distance``, ``precision``, ``recall`` (k neighbours), ``digit_rate`` and ``coverage``, with
    the set sizes and the judge's test accuracy, which says how far its feature space can be trusted."""
    fake, real = judged.features(images), judged.features(reference)
    neighbours = precision_recall(real, fake, k)  # first: it says when a set is too small for k
    rate = digit_rate(judged, images, classes=judged.classes)
    return {"samples": int(images.shape[0]), "reference_examples": int(reference.shape[0]),
            "judge_test_accuracy": judged.test_accuracy, "frechet_distance": frechet_distance(fake, real),
            **neighbours, "k": k, "digit_rate": rate["digit_rate"], "coverage": rate["coverage"]}


def of_run(run: Run, num_samples: int, seed: int = 0, device: str | torch.device = "cpu") -> dict:
    """:func:`sample_quality` of ``num_samples`` decoded prior draws of a run against its data set's test
    split, with the data set's cached judge; a run that can't generate, or whose data has no judge, is a
    one-line UserError."""
    try:
        images = run.sample(num_samples, seed)
    except UserError as error:
        raise UserError(f"--samples needs draws from the run's model: {error}") from None
    dataset = run.dataset(device)
    judged = judge(dataset, run.config.get("data_dir")).to(device)
    return sample_quality(judged, images.to(device), dataset.test, K)
