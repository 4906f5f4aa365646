"""Effect handlers shared by the trainer, the objectives and the evaluator."""

from pyro.poutine.messenger import Messenger


class DataScale(Messenger):
    """Scales every site in the ``"data"`` plate by num_data / plate size.

    A batch of B rows then stands for all N rows: the loss is an unbiased estimate of the full
    data set's −ELBO, and sites outside the plate (global latents) count once. A plate that already
    subsamples (``pyro.plate("data", N, subsample=...)``) has size N and is left as it is.
    """

    def __init__(self, num_data: int, plate: str = "data"):
        super().__init__()
        self.num_data, self.plate = num_data, plate

    def _process_message(self, msg):
        for frame in msg["cond_indep_stack"]:
            if frame.name == self.plate and frame.size != self.num_data:
                msg["scale"] = msg["scale"] * (self.num_data / frame.size)
