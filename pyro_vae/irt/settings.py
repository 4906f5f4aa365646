"""The settings of an IRT run, each declared once: ``pyro-vae irt``'s flags, checks, help and the run's
config.json come from :class:`IRTSettings`. No torch here, so ``pyro-vae irt --help`` stays quick."""

from __future__ import annotations

from dataclasses import dataclass

from pyro_vae.settings import Settings, option

KINDS = ("lecture", "1pl", "2pl")  # the item response functions of ``pyro_vae.models.irt``
GUIDES = ("amortized", "meanfield")  # q(ability): an encoder of the answers, or free numbers per student
ITEMS = ("latent", "point")  # q(item parameters): a Normal per item, or a point estimate (MAP)
MAX_BATCH = 1000  # students per step when no batch size is given: all of them, up to this many


@dataclass(frozen=True)
class IRTSettings(Settings):
    """An item response model, its guide, the exam it is fitted to and how.

    config.json keeps ``source`` (where the answers were read from) beside ``data`` (the exam's name);
    ``kind``'s flag is ``--model``, as config.json's ``model`` names the run's kind (``irt``).
    """

    source: str = option("lsat", "lsat (shipped: 1,000 examinees × 5 items), a .csv answer matrix (0/1/empty, "
                                 "optional header) or a py-irt .jsonlines/.jsonl file, one "
                                 '{"subject_id": ..., "responses": {"item": 0 or 1, ...}} per line', metavar="DATA",
                         flag="data")
    kind: str = option("2pl", "the item response function", choices=KINDS, flag="model")
    guide: str = option("amortized", "q(ability): an encoder of the answers and their mask (scores new students), "
                                     "or free parameters per student", choices=GUIDES)
    items: str = option("latent", "item parameters: a Normal posterior per item (with sd), or a point estimate "
                                  "(MAP)", choices=ITEMS)
    epochs: int = option(500, "passes over the students", "positive", free=True)
    batch_size: int | None = option(None, "students per SVI step", "positive", shown=f"all, at most {MAX_BATCH}")
    lr: float = option(0.2, "Adam learning rate, decayed over the last third of the epochs", "positive")
    num_particles: int = option(1, "ability draws per student and step in the ELBO estimate", "positive")
    seed: int = option(0, "random seed")

    @staticmethod
    def saved(config: dict) -> dict:
        """A run's config.json with ``source`` filled in: a run made before it was kept was read from its ``data``."""
        return {"source": config["data"], **config} if "data" in config else config

    @classmethod
    def resolve(cls, given: dict, saved: dict, fixed: bool = True) -> "IRTSettings":
        """As :meth:`Settings.resolve`, on :meth:`saved` (a flag that contradicts an old run's data is an error too)."""
        return super().resolve(given, cls.saved(saved), fixed)
