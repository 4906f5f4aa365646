"""What a program's traces say about it: which sites are enumerated, how deep its plates nest.

The trainer, the objectives and the evaluator read a model by its sites, never by their names:
observed or latent, in which plates, summed out by enumeration or sampled from the guide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pyro
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from pyro_vae.errors import UserError

# a Pyro model or guide: an nn.Module (forward is the program), a bound method or a plain function of the batch
Program = Callable[..., Any]


def sample_sites(*traces: poutine.Trace) -> list[dict]:
    """The sample sites of ``traces``, without the plates' own subsample sites."""
    return [site for trace in traces for site in trace.nodes.values()
            if site["type"] == "sample" and not site_is_subsample(site)]


def enumerated(model_trace: poutine.Trace, guide_trace: poutine.Trace) -> list[str]:
    """Names of the sites marked for enumeration (``config_enumerate``, ``infer={"enumerate": ...}``),
    in the model or in the guide; such sites are summed out by ``TraceEnum_ELBO``, not sampled."""
    return list(dict.fromkeys(site["name"] for site in sample_sites(model_trace, guide_trace)
                              if site["infer"].get("enumerate") is not None))


def max_plate_nesting(model_trace: poutine.Trace, guide_trace: poutine.Trace) -> int:
    """How many batch dims the programs' plates use: −(the leftmost plate dim) over every sample site.

    ``TraceEnum_ELBO`` puts enumeration dims to the left of these. Pyro guesses the number by running
    model and guide once on the first step, which draws random numbers; given here from traces the
    trainer made anyway (with its RNG state put back), a resumed run draws exactly what it would have.
    """
    dims = [frame.dim for site in sample_sites(model_trace, guide_trace)
            for frame in site["cond_indep_stack"] if frame.vectorized]
    return -min(dims) if dims else 0


def in_plate(site: dict, plate: str) -> bool:
    """Whether ``site`` lies in the plate named ``plate``."""
    return any(frame.name == plate for frame in site["cond_indep_stack"])


def subsampled(site: dict, plate: str) -> bool:
    """Whether ``site``'s plate ``plate`` subsamples (``pyro.plate(plate, N, subsample=index)`` with fewer rows
    than N): its rows are chosen by an index, so per-row parameters indexed by it stay with their rows."""
    return any(frame.name == plate and (frame.full_size or 0) > frame.size > 0 for frame in site["cond_indep_stack"])


@dataclass(frozen=True)
class Layout:
    """Where a program keeps its data, read from one trace of model and guide on a first batch.

    ``outside``: observed sites not in the data plate (a site per observation in a Python loop, or a
    distribution expanded without a plate); ``per_row``: parameters with one row per example (a
    ``pyro.param`` of leading size N, or an autoguide's local latents), which stay with their rows
    only if the plate subsamples by the rows' index (``subsampled``).
    """

    plate: str
    enumerated: tuple[str, ...]
    max_plate_nesting: int
    outside: tuple[str, ...]
    per_row: tuple[str, ...]
    subsampled: bool
    plates: tuple[str, ...]

    def check_minibatches(self, rows: int, num_data: int) -> None:
        """Refuses, in one line, what a minibatch of ``rows`` of ``num_data`` rows would get silently wrong."""
        if rows >= num_data:
            return
        full = f"or train on the full data (--batch-size {num_data}, as Pyro's loop does)"
        if self.outside:
            where = "" if self.plate in self.plates else f" (the program's plates: {', '.join(self.plates)})" \
                if self.plates else " (the program has no plates)"
            raise UserError(
                f"the model's observed site {self.outside[0]!r}{_more(self.outside)} lies outside "
                f"pyro.plate({self.plate!r}, ...){where}: a minibatch of {rows} of {num_data} rows can't be scaled "
                f"to the whole data set there; put per-example observations in pyro.plate({self.plate!r}, ...) "
                f"(or name your plate with --plate NAME), {full}")
        if self.per_row and not self.subsampled:
            raise UserError(
                f"{self.per_row[0]}{_more(self.per_row)} has one row per example: under minibatches of {rows} of "
                f"{num_data} rows, a batch's rows would meet other rows' parameters; index them with the batch's rows "
                f"in pyro.plate({self.plate!r}, {num_data}, subsample=index) and model(x, index) (--index), {full}")


def _more(names) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""


def layout(model_trace: poutine.Trace, guide_trace: poutine.Trace, guide: Program, plate: str, num_data: int, rows: int,
           module_params: set[int]) -> Layout:
    """The :class:`Layout` of model and guide from their traces on a first batch of ``rows`` rows; ``module_params``:
    ids of the modules' parameters (network weights, which are never per row). A ``pyro.param`` of leading size N,
    or of the first batch's size when that is smaller (``torch.zeros(x.shape[0])`` made on a minibatch), is taken
    for one value per row."""
    from pyro.infer.autoguide import AutoGuide

    sites = sample_sites(model_trace, guide_trace)
    outside = tuple(s["name"] for s in sample_sites(model_trace)
                    if s["is_observed"] and not s["infer"].get("is_auxiliary") and not in_plate(s, plate))
    store = pyro.get_param_store()
    per_row = [f"pyro.param {name!r}" for trace in (model_trace, guide_trace) for name, s in trace.nodes.items()
               if s["type"] == "param" and "$$$" not in name and name in store
               and id(store.get_param(name).unconstrained()) not in module_params
               and s["value"].dim() > 0 and s["value"].shape[0] in {num_data, rows} and num_data > 1]
    if isinstance(guide, AutoGuide):  # its local latents' parameters have one row per row of the first batch
        per_row += [f"the autoguide's latent site {s['name']!r}" for s in sample_sites(guide_trace)
                    if not s["is_observed"] and not s["infer"].get("is_auxiliary") and in_plate(s, plate)]
    plates = tuple(dict.fromkeys(f.name for s in sites for f in s["cond_indep_stack"]))
    return Layout(plate, tuple(enumerated(model_trace, guide_trace)), max_plate_nesting(model_trace, guide_trace),
                  outside, tuple(dict.fromkeys(per_row)), any(subsampled(s, plate) for s in sites), plates)
