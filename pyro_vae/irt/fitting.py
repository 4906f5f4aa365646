"""An IRT run from its settings: config → (model, guide), and SVI with ``pyro_vae.fit``.

``config`` is the run's config.json: ``"model": "irt"``, ``kind`` (lecture, 1pl, 2pl), ``guide``
(amortized, meanfield), ``items`` (latent, point), ``num_items``, ``num_students``, ``item_names``,
the data's name and the training settings. It alone rebuilds model and guide.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import fields
from typing import Callable, Iterator

import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

from pyro_vae.guides.irt import AbilityEncoder, IRTGuide, ItemGuide, MeanFieldAbilities
from pyro_vae.irt.settings import MAX_BATCH, IRTSettings
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


def make_config(data: ExamData, settings: IRTSettings) -> dict:
    """The run's config.json for ``data``: the ``settings`` (no batch size: all students, at most
    ``MAX_BATCH``), the exam's name, its item names and size."""
    return {"model": "irt", **settings.to_dict(), "batch_size": settings.batch_size or min(data.shape[0], MAX_BATCH),
            "data": data.name, "num_items": data.shape[1], "num_students": data.shape[0],
            "item_names": list(data.items)}


def train(data: ExamData, kind: str = IRTSettings.kind, guide: str = IRTSettings.guide,
          items: str = IRTSettings.items, **options) -> tuple[IRT, IRTGuide, list[dict]]:
    """Builds and fits model and guide on ``data`` by SVI; returns (model, guide, per-epoch metrics) on the CPU.

    Maximizes ELBO = E_q[log p(answers | ability, items)] − KL(q(ability) ‖ p(ability)) − KL(q(items) ‖ p(items))
    with TraceMeanField_ELBO (the KLs in closed form), missing answers masked out. ``options``: the other
    fields of :class:`~pyro_vae.irt.settings.IRTSettings` (``epochs``, ``batch_size``, ``lr``, ``num_particles``,
    ``seed``; ``source``, where ``data`` was read from, default its name, kept in config.json so the run can
    read it again), and ``pyro_vae.fit``'s (``out``, ``resume``, ``overwrite``, ``device``, ``quiet``, ...).
    """
    names = {f.name for f in fields(IRTSettings)}
    settings = IRTSettings(kind=kind, guide=guide, items=items,
                           **{"source": data.name, **{k: v for k, v in options.items() if k in names}})
    fit_options = {k: v for k, v in options.items() if k not in names}
    config = make_config(data, settings)
    pyro.set_rng_seed(settings.seed)
    model, q = build(config)
    objective = TraceMeanField_ELBO(num_particles=settings.num_particles,
                                    vectorize_particles=settings.num_particles > 1, max_plate_nesting=2)
    # ten checkpoints per run: an interrupted fit resumes from the last one
    history = fit(model, q, data.tensors(with_index=guide == "meanfield"), objective=objective,
                  epochs=settings.epochs, batch_size=config["batch_size"], lr=settings.lr,
                  scheduler=decay(settings.epochs), seed=settings.seed, config=config,
                  checkpoint_every=max(1, settings.epochs // 10), evaluator=None, **fit_options)
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
