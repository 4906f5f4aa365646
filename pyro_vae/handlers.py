"""Effect handlers shared by the trainer, the objectives and the evaluator."""

from pyro.poutine.messenger import Messenger
from pyro.poutine.replay_messenger import ReplayMessenger
from pyro.poutine.trace_messenger import TraceMessenger
from pyro.poutine.util import site_is_subsample


def lean_traces(model, guide, *args, **kwargs):
    """(model trace, guide trace): z ~ guide, then the model replayed at it; nothing scored, nothing copied.

    The messengers are used as context managers: ``poutine.trace(fn)`` would also build a handler
    object (with ``functools.wraps``) per program per call, and record inputs and return values.
    The traces keep the plates' subsample sites (``site_is_subsample``): no part of p or q, so skip them.
    """
    with TraceMessenger() as guide_tracer:
        guide(*args, **kwargs)
    with TraceMessenger() as model_tracer, ReplayMessenger(trace=guide_tracer.trace):
        model(*args, **kwargs)
    return model_tracer.trace, guide_tracer.trace


class DataScale(Messenger):
    """Scales every site in the ``plate`` plate so that the rows it scores stand for ``num_data`` rows.

    The factor is num_data / (the rows the plate holds), never num_data / (the size it declares):
    ``pyro.plate("data")`` without a size (Pyro's size −1) holds the ``rows`` passed to the program; a
    plate that subsamples (``pyro.plate("data", N, subsample=index)``, or one that draws its own
    ``subsample_size`` rows) holds that many, and Pyro's own factor full size / subsample size is
    divided out. Either way the loss is an unbiased estimate of the full data set's −ELBO, and
    sites outside the plate (global latents) count once.
    """

    def __init__(self, num_data: float, rows: int | None = None, plate: str = "data"):
        super().__init__()
        self.num_data, self.rows, self.plate = num_data, rows, plate

    def _process_message(self, msg):
        for frame in msg["cond_indep_stack"]:
            if frame.name != self.plate:
                continue
            held = frame.size if frame.size > 0 or self.rows is None else self.rows
            pyros_own = frame.full_size / frame.size if frame.full_size and frame.size > 0 else 1.0
            factor = self.num_data / held / pyros_own
            if factor != 1.0:
                msg["scale"] = msg["scale"] * factor
            return


class SiteScale(Messenger):
    """Scales the log-density of latent sites (default) or observed sites by ``scale`` ≥ 0.

    Around model *and* guide, ``SiteScale(β)`` turns the ELBO into reconstruction − β·KL (β-VAE):
    Pyro's ELBOs weight every site's log p or log q by its scale, so the latent terms of both
    programs are scaled alike. Unlike ``poutine.scale``, β = 0 is allowed ("reconstruction only");
    ``SiteScale(0, observed=True)`` leaves the KL only. Enumerated sites are summed out, not scored,
    and are left alone. The factor is also kept in the site's ``"site_scale"`` entry, so a bound that
    is not linear in the log-densities (the IWAE) can tell it from the data-subsampling scale. (Not in
    ``msg["infer"]``: ``poutine.replay`` hands the guide's infer dict to the model's site.)
    """

    def __init__(self, scale: float, observed: bool = False):
        super().__init__()
        if not scale >= 0:
            raise ValueError(f"SiteScale needs a scale >= 0, got {scale}")
        self.scale, self.observed = scale, observed

    def _process_message(self, msg):
        if msg["type"] != "sample" or bool(msg["is_observed"]) != self.observed:
            return
        if msg["infer"].get("enumerate") == "parallel" or site_is_subsample(msg):
            return
        msg["scale"] = msg["scale"] * self.scale
        msg["site_scale"] = msg.get("site_scale", 1.0) * self.scale
