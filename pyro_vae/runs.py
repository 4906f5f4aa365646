"""A run folder is the unit a user shares: ``config.json`` rebuilds the model, ``checkpoint.pt`` fills it.

    runs/NAME/config.json     everything needed to rebuild model and guide ("model": the run's kind), and the data's name
    runs/NAME/metrics.jsonl   one line per epoch
    runs/NAME/checkpoint.pt   states only: model, guide, optimizer, RNGs, epoch
    runs/NAME/figures/

``load(path)`` reopens any of them as a :class:`Run` of the kind its config names: ``vae``
(:class:`ImageRun`), ``autoencoder`` (:class:`AutoencoderRun`), ``lda``/``prodlda`` (``pyro_vae.topics.run.TopicRun``), ``irt``
(``pyro_vae.irt.run.IRTRun``), ``program`` (:class:`ProgramRun`: a user's own program trained with
``pyro-vae train --program FILE.py:NAME``). Another kind plugs in with ``register(kind, RunClass)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

import pyro

from pyro_vae import checkpoint as ckpt
from pyro_vae import parameters, settings
from pyro_vae import program as programs
from pyro_vae.builders import build_autoencoder, build_vae, load_data, row_index
from pyro_vae.errors import UserError
from pyro_vae.run_folder import CHECKPOINT, RunFolder

if TYPE_CHECKING:
    from pyro_vae.data import Dataset
    from pyro_vae.evaluate import Program, Sites
    from pyro_vae.sites import Layout


@dataclass
class Run:
    """A trained run reopened from its folder: model and guide on the CPU in eval mode, with its config and
    per-epoch metrics. Subclasses add what their kind can do; what a kind cannot do raises a UserError."""

    path: Path
    config: dict
    model: nn.Module
    guide: nn.Module
    metrics: list[dict] = field(default_factory=list)

    kind: ClassVar[str] = "run"

    @staticmethod
    def build(config: dict) -> tuple[nn.Module, nn.Module]:
        """(model, guide) with fresh parameters from a config.json (each kind says how)."""
        raise UserError("a Run subclass must say how to build its model and guide")

    @classmethod
    def rebuild(cls, config: dict) -> tuple[Program, Program]:
        """(model, guide) ready to receive a checkpoint's states: ``build``, plus whatever makes lazy parameters."""
        return cls.build(config)

    @property
    def data(self) -> dict:
        """What the run was trained on (names, shapes, sizes), from its config."""
        return {}

    def evaluate(self, batch_size: int = settings.TrainingSettings.eval_batch_size, seed: int = 0, num_samples: int | None = None,
                 device: str | torch.device = "cpu") -> dict:
        """Test-set measures of the run, as a dict of numbers."""
        raise self.not_applicable("evaluate")

    def sample(self, num_samples: int = 64, seed: int = 0) -> torch.Tensor:
        """Draws from the model's prior, decoded."""
        raise self.not_applicable("sample", "its model has no decoder to draw examples from")

    def sample_quality(self, num_samples: int, seed: int = 0, device: str | torch.device = "cpu") -> dict:
        """Fréchet distance, precision/recall and judged-class rates of ``num_samples`` decoded prior draws
        against the test set, in a judge's feature space (``pyro_vae.quality.of_run``)."""
        from pyro_vae import quality

        return quality.of_run(self, num_samples, seed, device)

    def figures(self, folder: str | Path | None = None) -> list[Path]:
        """Redraws the run's figures into ``folder`` (default: the run's figures/); returns their paths."""
        raise self.not_applicable("plot")

    def not_applicable(self, action: str, why: str = "") -> UserError:
        """The one-line error for an action this kind of run has no meaning for."""
        return UserError(f"{action} does not apply to this {self.config.get('model')} run"
                         f"{': ' + why if why else ''}")


# kind (config["model"]) → "module:RunClass", imported on first use so loading one kind needs no other
KINDS: dict[str, str | type[Run]] = {"vae": "pyro_vae.runs:ImageRun", "autoencoder": "pyro_vae.runs:AutoencoderRun",
                                     "program": "pyro_vae.runs:ProgramRun", "lda": "pyro_vae.topics.run:TopicRun",
                                     "prodlda": "pyro_vae.topics.run:TopicRun", "irt": "pyro_vae.irt.run:IRTRun"}


def register(kind: str, run_class: type[Run] | str) -> None:
    """Makes ``load`` and ``build`` open runs whose config says ``"model": kind`` as ``run_class``."""
    KINDS[kind] = run_class


def run_class(kind: str) -> type[Run]:
    """The Run class of a kind; an unknown kind is a UserError naming the known ones."""
    if kind is None:
        raise UserError("this run was trained from Python with fit(..., out=...) but no config=, so config.json "
                        "can't rebuild its model: pass config= (e.g. runs.build's config) or train with --program")
    if kind not in KINDS:
        raise UserError(f"unknown model {kind!r} in config: choose one of {', '.join(KINDS)}")
    entry = KINDS[kind]
    if isinstance(entry, str):
        module, name = entry.split(":")
        entry = KINDS[kind] = getattr(importlib.import_module(module), name)
    return entry


def build(config: dict, dataset: Dataset | None = None) -> tuple[Program, Program]:
    """(model, guide) with fresh parameters from a config dict; ``"model"`` picks the kind (default vae).
    A user's program (``"model": "program"``) is given ``dataset`` (else it is loaded by the config's name)."""
    kind = config.get("model", "vae")
    if kind == "program":
        return ProgramRun.build(config, dataset)
    return run_class(kind).build(config)


def read_config(path: str | Path) -> dict:
    """A run folder's config.json as a dict; a missing or damaged one is a one-line UserError."""
    return RunFolder(path).config()


def load(path: str | Path) -> Run:
    """Reopens a run folder of any kind: its model and guide rebuilt from config.json, filled from
    checkpoint.pt, on the CPU in eval mode, with the metrics of every epoch."""
    path = Path(path)
    config = read_config(path)
    cls = run_class(config.get("model", "vae"))
    state = ckpt.load(path / CHECKPOINT)
    model, guide = cls.rebuild(config)
    parameters.load_state(model, guide, state, path / CHECKPOINT)  # module states and pyro.param values
    for module in parameters.owners(model, guide):
        module.eval()
    return cls(path, config, model, guide, RunFolder(path).metrics())


class ImageRun(Run):
    """A VAE run (``pyro-vae train``): encode images to codes, decode codes, generate, reconstruct.

    Rows x are flattened examples in [0, 1] of shape (N, prod(shape)); codes z are (N, latent_dim).
    """

    kind = "vae"

    @staticmethod
    def build(config: dict) -> tuple[nn.Module, nn.Module]:
        return build_vae(config)

    @property
    def data(self) -> dict:
        return {"dataset": self.config.get("dataset"), "shape": self.config.get("shape"),
                "data_dir": self.config.get("data_dir"), "binarize": self.config.get("binarize")}

    def dataset(self, device: str | torch.device = "cpu") -> "Dataset":
        """The run's data set (``pyro_vae.data.Dataset``), loaded again by name, on ``device``."""
        return load_data(self.config).to(device)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The codes μ(x), the mean of q(z|x), of rows x."""
        from pyro_vae.evaluate import encode

        return encode(self.guide, x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] = f(z): the decoder's rows for codes z."""
        with torch.no_grad():
            return self.model.generate(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x | z = μ(x)]: rows x through the encoder's mean and back through the decoder."""
        from pyro_vae.evaluate import reconstruct

        return reconstruct(self.model, self.guide, x)

    def generate(self, num_samples: int = 64, seed: int = 0) -> torch.Tensor:
        """E[x|z] for ``num_samples`` draws z ~ p(z) = N(0, I), reproducible by ``seed``."""
        from pyro_vae.plots import generate_samples

        return generate_samples(self.model, num_samples, seed)

    sample = generate

    def evaluate(self, batch_size: int = settings.TrainingSettings.eval_batch_size, seed: int = 0, num_samples: int | None = None,
                 device: str | torch.device = "cpu", samples: int | None = None) -> dict:
        """Test-set ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) per example and its parts, the reconstruction
        error, the KL per latent dimension and, with ``num_samples`` K, the importance-sampled
        log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k|x) and bits/dim; with ``samples`` N, the
        ``sample_quality`` of N prior draws."""
        quality = {"sample_quality": self.sample_quality(samples, seed, device)} if samples else {}
        from pyro_vae.data import binarized_test
        from pyro_vae.evaluate import elbo_parts, kl_per_dimension, log_likelihood, reconstruction_mse

        dataset = self.dataset(device)
        test = binarized_test(dataset.test) if self.config.get("binarize") else dataset.test
        model, guide = parameters.to_device(self.model, self.guide, device)
        torch.manual_seed(seed)
        report = {"test_examples": test.shape[0], **{f"test_{k}": v for k, v in
                                                     elbo_parts(model, guide, test, batch_size).items()},
                  "test_reconstruction_mse": reconstruction_mse(model, guide, test, batch_size)}
        report["test_kl_per_dim"] = kl_per_dimension(model, guide, test, batch_size)
        sigma = getattr(getattr(model, "likelihood", None), "sigma", None)
        if isinstance(sigma, torch.Tensor):  # gaussian-learned: the σ², i.e. the c, that training chose
            report["learned_c"] = float(sigma.detach()) ** 2
        if num_samples:
            estimate = log_likelihood(model, guide, test, num_samples=num_samples)
            report.update(is_samples=num_samples, test_log_likelihood=estimate["log_likelihood"],
                          test_log_likelihood_stderr=estimate["log_likelihood_stderr"],
                          test_bits_per_dim=estimate["bits_per_dim"])
        return {**report, **quality}

    def figures(self, folder: str | Path | None = None) -> list[Path]:
        """Reconstructions, prior samples, ELBO curves, latent codes and (2-D latent) the decoded manifold."""
        from pyro_vae import plots

        return plots.all_figures(self.model, self.guide, self.dataset(), self.metrics,
                                 Path(folder) if folder is not None else self.path / "figures")


class AutoencoderRun(ImageRun):
    """An autoencoder run (config ``"model": "autoencoder"``): encode, decode and reconstruct as a VAE run;
    no prior to sample from, so ``sample``/``generate`` say they do not apply."""

    kind = "autoencoder"

    @staticmethod
    def build(config: dict) -> tuple[nn.Module, nn.Module]:
        return build_autoencoder(config)

    def generate(self, num_samples: int = 64, seed: int = 0) -> torch.Tensor:
        """Not for an autoencoder: its codes follow no distribution to draw from."""
        raise self.not_applicable("sample", "an autoencoder has no prior p(z) to draw codes from; decode codes of "
                                            "real examples instead: run.decode(run.encode(x))")

    sample = generate

    def evaluate(self, batch_size: int = settings.TrainingSettings.eval_batch_size, seed: int = 0, num_samples: int | None = None,
                 device: str | torch.device = "cpu", samples: int | None = None) -> dict:
        """Test-set reconstruction term E log p(x | z = e(x)) per example (the ELBO, as the prior is masked
        out) and the reconstruction error ‖x − d(e(x))‖²; no importance sampling (q is a point mass), no
        prior draws to measure (``samples``)."""
        from pyro_vae.evaluate import elbo_parts, reconstruction_mse

        if samples:
            self.sample_quality(samples)  # says, in one line, why an autoencoder has no draws to measure
        if num_samples:
            raise self.not_applicable("--is-samples", "its guide is a point mass, not a proposal for log p(x)")
        test = self.dataset(device).test
        model, guide = self.model.to(device), self.guide.to(device)
        torch.manual_seed(seed)
        return {"test_examples": test.shape[0],
                "test_reconstruction": elbo_parts(model, guide, test, batch_size)["reconstruction"],
                "test_reconstruction_mse": reconstruction_mse(model, guide, test, batch_size)}

    def figures(self, folder: str | Path | None = None) -> list[Path]:
        """Reconstructions, the training curve and the latent codes (no prior samples, no manifold)."""
        from pyro_vae import plots

        folder = Path(folder) if folder is not None else self.path / "figures"
        dataset, model, guide = self.dataset(), self.model.cpu().eval(), self.guide.cpu().eval()
        x, labels = dataset.test[:2000], None if dataset.test_labels is None else dataset.test_labels[:2000]
        plots.reconstructions(model, guide, x, dataset.shape, folder / "reconstructions.png")
        plots.elbo_curves(self.metrics, folder / "elbo.png")
        plots.latent(guide, x, labels, folder / "latent.png")
        return [folder / "reconstructions.png", folder / "elbo.png", folder / "latent.png"]


class ProgramRun(ImageRun):
    """A user's own Pyro program (``pyro-vae train --program FILE.py:NAME``), rebuilt from its file.

    Every measure is computed from traces, so nothing here depends on how the program is written or what
    its sites are called (``evaluate.Sites``). ``encode``, ``reconstruct``, ``decode`` and ``generate`` apply
    to a program with one per-example latent site in the guide and one observed site holding the data rows,
    whatever their names (Pyro's VAE example: ``latent``, ``obs``); other programs get a one-line UserError
    saying what they have instead.
    """

    kind = "program"

    @staticmethod
    def build(config: dict, dataset: Dataset | None = None) -> tuple[Program, Program]:
        """The (model, guide) that the config's ``FILE.py:NAME`` names, given the data set."""
        return programs.load(config["program"], load_data(config) if dataset is None else dataset)

    @classmethod
    def rebuild(cls, config: dict) -> tuple[Program, Program]:
        """The program, with an empty param store and one call so its lazily made parameters exist."""
        dataset = load_data(config)
        pyro.clear_param_store()  # the run's pyro.param values come from its checkpoint, none from earlier programs
        model, guide = cls.build(config, dataset)
        # lazily made parameters appear on a first call, shaped by its rows (an autoguide's; a pyro.param made
        # from x.shape[0]): the first call is made on as many rows as training's first batch had
        cls.initialize(model, guide, config, dataset, torch.device("cpu"),
                       config.get("batch_size", settings.TrainingSettings.batch_size))
        return model, guide

    @staticmethod
    def initialize(model: Program, guide: Program, config: dict, dataset: Dataset, device: torch.device,
                   rows: int) -> Layout:
        """``parameters.initialize`` on the first ``rows`` training rows, or on all of them for a program that fails
        on fewer (a plate or parameters per training row): lazily made parameters appear; returns the Layout."""
        n = dataset.train.shape[0]
        for size in dict.fromkeys((min(rows, n), n)):
            batch = tuple(t[:size] for t in dataset.train_rows)
            try:
                return parameters.initialize(model, guide, (*batch, row_index(batch[0])) if config.get("index") else
                                             batch, device, n, config.get("plate", "data"))[2]
            except UserError:
                if size == n:
                    raise

    @property
    def plate(self) -> str:
        """The name of the program's data plate (``--plate``)."""
        return self.config.get("plate", "data")

    def rows(self, dataset: Dataset, split: str) -> tuple[torch.Tensor, ...]:
        """What the programs are called with for the ``split`` ("train", "test") rows of ``dataset``: the rows and
        the further arrays (``--arrays``), and with ``--index`` each row's position (training rows only)."""
        rows = dataset.train_rows if split == "train" else dataset.test_rows
        return (*rows, row_index(rows[0])) if self.config.get("index") else rows

    @cached_property
    def _examples(self) -> torch.Tensor:
        """Ten rows to find the sites with and to draw: test rows, or training rows in a run without them (CPU)."""
        dataset = self.dataset()
        return (dataset.test if dataset.test.shape[0] else dataset.train)[:10]

    def vae_sites(self, action: str) -> tuple[str, str]:
        """(latent, observed) site names for ``action`` (encode, decode, ...), or its one-line UserError."""
        from pyro_vae.evaluate import program_sites

        if self.config.get("index"):
            raise self.not_applicable(action, "its programs take each row's index (--index), which new rows lack")
        if len(self.config.get("arrays") or ()) > 1:
            raise self.not_applicable(action, f"its programs take further arrays (--arrays "
                                              f"{','.join(self.config['arrays'])}), which {action} does not pass")
        try:
            return program_sites(self.model, self.guide, self._examples[:2], plate=self.plate).vae()
        except UserError as why:
            raise self.not_applicable(action, str(why)) from None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of q(z|x) at the program's per-example latent site, for rows x."""
        from pyro_vae.evaluate import encode

        return encode(self.guide, x, self.vae_sites("encode")[0])

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x | z = mean of q(z|x)] at the program's latent and observed sites."""
        from pyro_vae.evaluate import reconstruct

        return reconstruct(self.model, self.guide, x, *self.vae_sites("reconstruct"))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] for codes z: the model run with its latent site held at z."""
        from pyro import poutine

        latent, observed = self.vae_sites("decode")
        x_like = z.new_zeros(z.shape[0], *self._examples.shape[1:])
        with torch.no_grad():
            trace = poutine.trace(poutine.condition(self.model, data={latent: z})).get_trace(x_like)
        return trace.nodes[observed]["fn"].mean

    def generate(self, num_samples: int = 64, seed: int = 0) -> torch.Tensor:
        """E[x|z] for ``num_samples`` draws z ~ p(z): the model run without its guide."""
        from pyro_vae.evaluate import generate

        observed = self.vae_sites("sample")[1]
        pyro.set_rng_seed(seed)
        return generate(self.model, self._examples.new_zeros(num_samples, *self._examples.shape[1:]), observed)

    sample = generate

    def evaluate(self, batch_size: int = settings.TrainingSettings.eval_batch_size, seed: int = 0, num_samples: int | None = None,
                 device: str | torch.device = "cpu", samples: int | None = None) -> dict:
        """Test-set measures of what applies to the program (on the training rows for a program with parameters per
        training row, ``--index`` or on which the test rows fail: the keys say ``train_``), found by site role:

        - ``elbo``, ``reconstruction``, ``kl`` and ``kl/<site>`` per example (``evaluate.elbo_parts``; only
          ``elbo``, the enumerated one, for a program with enumerated sites);
        - ``reconstruction_mse`` and ``kl_per_dim`` for a program with one per-example latent and one observed
          site holding the rows;
        - with ``num_samples`` K, log p(x) ≈ log (1/K) Σ_k p(x, z_k)/q(z_k|x) and bits/dim, for a program whose
          latents are all per example and drawn by the guide (else a one-line UserError says why not);
        - with ``samples`` N, the ``sample_quality`` of N prior draws, for a program that can generate.
        """
        quality = {"sample_quality": self.sample_quality(samples, seed, device)} if samples else {}
        from pyro_vae import evaluate as measures

        dataset = self.dataset(device)
        model, guide = parameters.to_device(self.model, self.guide, device)
        pyro.set_rng_seed(seed)
        split, rows, found = self._evaluable(model, guide, dataset, batch_size)
        if num_samples and found.why_no_proposal():
            raise self.not_applicable("--is-samples", found.why_no_proposal())
        pyro.set_rng_seed(seed)
        parts = measures.elbo_parts(model, guide, rows, batch_size, self.plate)
        report = {f"{split}_examples": rows[0].shape[0], **{f"{split}_{k}": v for k, v in parts.items()}}
        try:  # new rows alone: not training rows (parameters per row), nor rows with further arrays
            latent, observed = found.vae() if split == "test" and len(rows) == 1 else (None, None)
        except UserError:
            latent = observed = None  # nothing to reconstruct the rows with: the report has what applies
        if latent is not None:
            report[f"{split}_reconstruction_mse"] = measures.reconstruction_mse(model, guide, rows[0], batch_size,
                                                                                 latent, observed)
            report[f"{split}_kl_per_dim"] = measures.kl_per_dimension(model, guide, rows, batch_size, latent,
                                                                      self.plate)
        if num_samples:
            estimate = measures.log_likelihood(model, guide, rows, num_samples=num_samples, plate=self.plate)
            report.update({"is_samples": num_samples, f"{split}_log_likelihood": estimate["log_likelihood"],
                           f"{split}_log_likelihood_stderr": estimate["log_likelihood_stderr"],
                           f"{split}_bits_per_dim": estimate["bits_per_dim"]})
        return {**report, **quality}

    def _evaluable(self, model, guide, dataset, batch_size: int) -> tuple[str, tuple, "Sites"]:
        """(split, rows, sites) to evaluate: the test rows, or the training rows for programs that have parameters
        per training row (``--index``, a ``pyro.param`` of the training set's size, or a plate on which the test
        rows fail), first on one batch and else on all rows at once."""
        from pyro_vae.evaluate import program_sites

        layout = self.initialize(model, guide, self.config, dataset, torch.device(dataset.train.device), batch_size)
        own_rows = self.config.get("index") or layout.per_row and not layout.subsampled
        first = None
        for split in ("train",) if own_rows or not dataset.test.shape[0] else ("test", "train"):
            rows = self.rows(dataset, split)
            for size in dict.fromkeys((min(batch_size, rows[0].shape[0]), rows[0].shape[0])):
                try:
                    return split, rows, program_sites(model, guide, *(t[:size] for t in rows), plate=self.plate)
                except UserError as why:
                    first = first or why
        raise first

    def figures(self, folder: str | Path | None = None) -> list[Path]:
        """The ELBO curves; reconstructions and prior samples too where they apply (``vae_sites``)."""
        from pyro_vae import plots

        folder = Path(folder) if folder is not None else self.path / "figures"
        plots.elbo_curves(self.metrics, folder / "elbo.png")
        paths = [folder / "elbo.png"]
        parameters.to_device(self.model, self.guide, torch.device("cpu"))
        try:
            found = self.vae_sites("plot")
        except UserError:
            return paths  # no decoder of rows: the curves are what there is to draw
        shape = tuple(self.config.get("shape") or self._examples.shape[1:])
        plots.reconstructions(self.model, self.guide, self._examples, shape, folder / "reconstructions.png", sites=found)
        paths.append(folder / "reconstructions.png")
        paths.append(plots.write_samples(self.generate(64), shape, folder / "samples.png", "decoded draws z ~ p(z)"))
        return paths
