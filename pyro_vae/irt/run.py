"""A reopened IRT run (``pyro-vae irt``): its item estimates, and abilities of new students without a refit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from pyro_vae.errors import UserError
from pyro_vae.guides.irt import MeanFieldAbilities
from pyro_vae.irt import fitting, reference, report
from pyro_vae.irt.exams import ExamData
from pyro_vae.irt.settings import IRTSettings
from pyro_vae.runs import Run
from pyro_vae.settings import TrainingSettings


class IRTRun(Run):
    """An IRT run: ``items()`` (the item estimates), ``score(answers)`` (abilities of any students),
    ``evaluate()`` and ``figures()`` on the data it was trained on."""

    kind = "irt"

    @staticmethod
    def build(config: dict) -> tuple[nn.Module, nn.Module]:
        return fitting.build(config)

    @property
    def data(self) -> dict:
        return {"data": self.config.get("data"), "students": self.config.get("num_students"),
                "items": self.config.get("item_names") or self.config.get("num_items")}

    @property
    def item_names(self) -> list[str]:
        """The items in the order of the answer matrix's columns."""
        return self.config.get("item_names") or [f"item{j + 1}" for j in range(self.config["num_items"])]

    def items(self) -> dict:
        """Posterior mean (and sd for latent items) of every item parameter, as numpy arrays."""
        return report.item_estimates(self.model, self.guide)

    def score(self, answers: np.ndarray | torch.Tensor | list, mask: np.ndarray | torch.Tensor | None = None,
              exact: bool | None = None) -> dict:
        """Abilities of students from their answers, the item parameters kept as trained (no refit).

        ``answers``: a (students, items) array of 0/1 with NaN (or ``mask`` False) where an item was not
        answered, or a list of py-irt response dicts ``{"item name": 0 or 1, ...}``. With ``exact`` (the
        default for a mean-field run, whose q knows only its training students) the posterior
        p(ability | answers) ∝ p(ability) Π_t p(answer_t | ability, items at their posterior mean) is
        integrated by Gauss–Hermite quadrature; otherwise the run's amortized encoder gives q(ability).
        Returns ``{"ability": means, "ability_sd": sds}`` (numpy arrays).
        """
        answers, mask = self._answer_matrix(answers, mask)
        if exact is None:
            exact = isinstance(self.guide.abilities, MeanFieldAbilities)
        if exact:
            mean, sd = reference.posterior_ability(self.config["kind"], report.item_parameters(self.model, self.guide),
                                                   answers.numpy(), mask.numpy())
            return {"ability": mean, "ability_sd": sd}
        if isinstance(self.guide.abilities, MeanFieldAbilities):
            raise UserError("a mean-field run has no encoder for new students: score them with exact=True")
        with torch.no_grad():
            loc, scale = self.guide.abilities(answers, mask.float(), None)
        return {"ability": loc[:, 0].numpy(), "ability_sd": scale[:, 0].numpy()}

    def _answer_matrix(self, answers: np.ndarray | torch.Tensor | list, mask: np.ndarray | torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(answers 0/1 with 0 where missing, mask bool) from an array or py-irt response dicts."""
        names = self.item_names
        if isinstance(answers, (list, tuple)) and answers and isinstance(answers[0], dict):
            unknown = sorted({k for row in answers for k in row} - set(names))
            if unknown:
                raise UserError(f"item(s) {', '.join(map(repr, unknown[:5]))} were not in the run's exam; its items "
                                f"are {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
            answers = [[row.get(name, np.nan) for name in names] for row in answers]
        values = np.asarray(answers, dtype=np.float32)
        if values.ndim == 1:
            values = values[None]
        if values.ndim != 2 or values.shape[1] != len(names):
            raise UserError(f"answers have shape {values.shape}: give one row per student and one column per item "
                            f"({len(names)} items)")
        given = ~np.isnan(values) if mask is None else np.asarray(mask, dtype=bool) & ~np.isnan(values)
        if np.any(given & (values != 0) & (values != 1)):
            raise UserError("answers must be 0 (wrong), 1 (right) or NaN (not answered)")
        return torch.as_tensor(np.where(given, values, 0.0)), torch.as_tensor(given)

    def exam(self) -> ExamData:
        """The exam data the run was trained on (``irt.exams.ExamData``), read again by name."""
        from pyro_vae.irt import exams

        return exams.load(IRTSettings.saved(self.config)["source"])

    def evaluate(self, batch_size: int = TrainingSettings.eval_batch_size, seed: int = 0, num_samples: int | None = None,
                 device: str | torch.device = "cpu") -> dict:
        """On the training students (IRT has no held-out split): the ELBO and the exact marginal
        log-likelihood Σ_s log ∫ p(x_s | θ, items) p(θ) dθ at the item estimates (quadrature)."""
        summary = report.summarize(self.model, self.guide, self.exam(), seed)
        return {key: summary[key] for key in ("data", "students", "items", "missing_fraction", "model",
                                              "marginal_log_likelihood", "elbo")}

    def figures(self, folder: str | Path | None = None) -> list[Path]:
        """icc.png: the item characteristic curves over the training students' abilities."""
        from pyro_vae.irt.figures import item_curves

        data = self.exam()
        means, _ = report.abilities(self.guide, data)
        path = (Path(folder) if folder is not None else self.path / "figures") / "icc.png"
        item_curves(self.model, self.guide, data.items, means, path)
        return [path]
