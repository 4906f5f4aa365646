"""``model_1`` of Pyro's examples/hmm.py, small: an HMM whose hidden state is summed out over time.

    probs_x ~ Dirichlet(0.9·I + 0.1) per row (transitions), probs_y ~ Beta(0.1, 0.9) (emissions);
    for each sequence i in pyro.plate("sequences"), x_t ~ Categorical(probs_x[x_{t−1}]) enumerated in
    pyro.markov, y_t ~ Bernoulli(probs_y[x_t]) for each tone in plate "tones".

As in the example: sequences are iterated in a sequential ``pyro.plate("sequences", N)`` (``--plate
sequences``), the guide is ``AutoDelta`` on the model blocked to the ``probs_*`` sites,
TraceEnum_ELBO(max_plate_nesting=1), Adam(lr 0.05), full batch. Here every sequence has the same
length, so a row is one (T, tones) array.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.infer.autoguide import AutoDelta

PROGRAM, STEPS, BATCH_SIZE, PLATE, TOLERANCE = "build", 40, None, "sequences", 0.05
CLI = ["--optimizer", "adam", "--lr", "0.05", "--elbo", "enum"]
HIDDEN = 3
PARTICLES = 1  # a point-mass guide and the discrete sites summed out: the ELBO is exact


def model_1(sequences, include_prior=True):
    num_sequences, max_length, data_dim = sequences.shape
    eye = torch.eye(HIDDEN, device=sequences.device)
    with poutine.mask(mask=include_prior):
        probs_x = pyro.sample("probs_x", dist.Dirichlet(0.9 * eye + 0.1).to_event(1))
        probs_y = pyro.sample("probs_y", dist.Beta(sequences.new_tensor(0.1), 0.9).expand([HIDDEN, data_dim])
                              .to_event(2))
    tones_plate = pyro.plate("tones", data_dim, dim=-1)
    for i in pyro.plate("sequences", len(sequences)):
        sequence = sequences[i]
        x = 0
        for t in pyro.markov(range(max_length)):
            x = pyro.sample(f"x_{i}_{t}", dist.Categorical(probs_x[x]), infer={"enumerate": "parallel"})
            with tones_plate:
                pyro.sample(f"y_{i}_{t}", dist.Bernoulli(probs_y[x.squeeze(-1)]), obs=sequence[t])


def make(rows):
    return model_1, AutoDelta(poutine.block(model_1, expose_fn=lambda msg: msg["name"].startswith("probs_")))


def build(dataset):
    return make((dataset.train,))


def data(n=4, seed=0, length=5, tones=3):
    """``n`` sequences of ``length`` steps, ``tones`` binary tones each, from a sticky 3-state HMM."""
    g = torch.Generator().manual_seed(seed)
    transition = 0.8 * torch.eye(HIDDEN) + 0.2 / HIDDEN
    emission = (torch.rand(HIDDEN, tones, generator=g) < 0.5).float() * 0.8 + 0.1
    state = torch.zeros(n, dtype=torch.long)
    steps = []
    for _ in range(length):
        state = torch.multinomial(transition[state], 1, generator=g).squeeze(-1)
        steps.append(torch.bernoulli(emission[state], generator=g))
    return (torch.stack(steps, 1),)


def optimizer():
    return pyro.optim.Adam({"lr": 0.05})


def loss():
    return TraceEnum_ELBO(max_plate_nesting=1)


def reference(rows, steps=STEPS, seed=0):
    from suite import svi_loop

    return svi_loop(lambda: make(rows), rows, optimizer(), loss(), steps, seed)
