"""An IRT run from its settings: config → (model, guide), and SVI with ``pyro_vae.fit``.

``config`` is the run's config.json: ``"model": "irt"``, ``kind`` (lecture, 1pl, 2pl), ``guide``
(amortized, meanfield), ``items`` (latent, point), ``num_items``, ``num_students``, ``item_names``,
the data's name and the training settings. It alone rebuilds model and guide.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

from pyro_vae.errors import UserError
from pyro_vae.guides.irt import AbilityEncoder, IRTGuide, ItemGuide, MeanFieldAbilities
from pyro_vae.irt.defaults import DEFAULTS, MAX_BATCH
from pyro_vae.irt.exams import ExamData
from pyro_vae.models.irt import IRT
from pyro_vae.train import fit


def build(config: dict) -> tuple[IRT, IRTGuide]:
    """config → (model, guide): the run folder's config.json alone rebuilds both."""
    model = IRT(config["num_items"], config["kind"])
    abilities = AbilityEncoder(config["num_items"]) if config["guide"] == "amortized" \
        else MeanFieldAbilities(config["num_students"])
    return model, IRTGuide(ItemGuide(model.item_sites, config["num_items"], config["items"] == "point"), abilities)


def decay(epochs: int) -> Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]:
    """The learning rate: constant for two thirds of the epochs, then linearly down to 1%."""
    return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: min(1.0, 3 * (1 - e / epochs) + 0.01))


def make_config(data: ExamData, kind: str = DEFAULTS["kind"], guide: str = DEFAULTS["guide"],
                items: str = DEFAULTS["items"], epochs: int = DEFAULTS["epochs"],
                batch_size: int | None = DEFAULTS["batch_size"], lr: float = DEFAULTS["lr"],
                num_particles: int = DEFAULTS["num_particles"], seed: int = DEFAULTS["seed"],
                source: str | None = None) -> dict:
    """The run's config.json for ``data`` (read from ``source``: lsat or a file's path, default its name);
    a batch larger than the students is a UserError."""
    if batch_size is not None and batch_size > data.shape[0]:
        raise UserError(f"--batch-size {batch_size} is larger than the {data.shape[0]} students: "
                        f"use --batch-size {min(data.shape[0], MAX_BATCH)} or less")
    return {"model": "irt", "kind": kind, "guide": guide, "items": items, "num_items": data.shape[1],
            "num_students": data.shape[0], "item_names": list(data.items), "data": data.name,
            "source": source or data.name, "epochs": epochs,
            "lr": lr, "seed": seed, "num_particles": num_particles,
            "batch_size": batch_size or min(data.shape[0], MAX_BATCH)}


def train(data: ExamData, kind: str = DEFAULTS["kind"], guide: str = DEFAULTS["guide"],
          items: str = DEFAULTS["items"], epochs: int = DEFAULTS["epochs"],
          batch_size: int | None = DEFAULTS["batch_size"], lr: float = DEFAULTS["lr"],
          num_particles: int = DEFAULTS["num_particles"], seed: int = DEFAULTS["seed"], source: str | None = None,
          **fit_options) -> tuple[IRT, IRTGuide, list[dict]]:
    """Builds and fits model and guide on ``data`` by SVI; returns (model, guide, per-epoch metrics) on the CPU.

    Maximizes ELBO = E_q[log p(answers | ability, items)] − KL(q(ability) ‖ p(ability)) − KL(q(items) ‖ p(items))
    with TraceMeanField_ELBO (the KLs in closed form), missing answers masked out. ``fit_options`` go to
    ``pyro_vae.fit`` (``out``, ``resume``, ``overwrite``, ``device``, ``quiet``, ...); ``source`` is where
    ``data`` was read from (``exams.load``'s name), kept in config.json so the run can read it again.
    """
    config = make_config(data, kind, guide, items, epochs, batch_size, lr, num_particles, seed, source)
    pyro.set_rng_seed(seed)
    model, q = build(config)
    objective = TraceMeanField_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1,
                                    max_plate_nesting=2)
    # ten checkpoints per run: an interrupted fit resumes from the last one
    history = fit(model, q, data.tensors(with_index=guide == "meanfield"), objective=objective,
                  epochs=epochs, batch_size=config["batch_size"], lr=lr, scheduler=decay(epochs), seed=seed,
                  config=config, checkpoint_every=max(1, epochs // 10), evaluator=None, **fit_options)
    return model.cpu().eval(), q.cpu().eval(), history


@contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op CPU thread: an IRT step works on batches of at most 1,000 × items numbers, too small
    for threads to pay, and on a busy machine their spin-waits made fits ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
