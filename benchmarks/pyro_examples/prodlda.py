"""ProdLDA of Pyro's tutorial (prodlda.ipynb), small: documents as integer word counts.

    logtheta_d ~ N(0, I) over the topics, theta_d = softmax(logtheta_d),
    obs_d ~ Multinomial(total_count, decoder(theta_d)) over the vocabulary, in plate "documents";
    guide: logtheta_d ~ N(encoder(obs_d)).

As in the tutorial: networks registered with ``pyro.module``, ``total_count = int(docs.sum(-1).max())``
(every synthetic document here has the same length, so Pyro's support check holds), TraceMeanField_ELBO,
Adam(lr 1e-2), minibatches of 32 documents. The plate is "documents" (``--plate documents``) and the
counts are passed as they are, not scaled to [0, 1]. The tutorial's dropout and batch norm are left out,
so that training and evaluation see one network.
"""

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

PROGRAM, STEPS, BATCH_SIZE, PLATE, TOLERANCE = "build", 96, 32, "documents", 1.0
CLI = ["--optimizer", "adam", "--lr", "0.01", "--elbo", "meanfield"]
VOCAB, TOPICS, WORDS = 30, 3, 60


class Encoder(nn.Module):
    def __init__(self, vocab_size, num_topics, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(vocab_size, hidden), nn.Linear(hidden, hidden)
        self.fcmu, self.fclv = nn.Linear(hidden, num_topics), nn.Linear(hidden, num_topics)

    def forward(self, inputs):
        h = F.softplus(self.fc2(F.softplus(self.fc1(inputs))))
        return self.fcmu(h), (0.5 * self.fclv(h)).exp()


class Decoder(nn.Module):
    def __init__(self, vocab_size, num_topics):
        super().__init__()
        self.beta = nn.Linear(num_topics, vocab_size, bias=False)

    def forward(self, inputs):
        return F.softmax(self.beta(inputs), dim=-1)


class ProdLDA(nn.Module):
    def __init__(self, vocab_size, num_topics, hidden=32):
        super().__init__()
        self.vocab_size, self.num_topics = vocab_size, num_topics
        self.encoder, self.decoder = Encoder(vocab_size, num_topics, hidden), Decoder(vocab_size, num_topics)

    def model(self, docs):
        pyro.module("decoder", self.decoder)
        with pyro.plate("documents", docs.shape[0]):
            logtheta_loc = docs.new_zeros((docs.shape[0], self.num_topics))
            logtheta_scale = docs.new_ones((docs.shape[0], self.num_topics))
            logtheta = pyro.sample("logtheta", dist.Normal(logtheta_loc, logtheta_scale).to_event(1))
            theta = F.softmax(logtheta, -1)
            count_param = self.decoder(theta)
            total_count = int(docs.sum(-1).max())
            pyro.sample("obs", dist.Multinomial(total_count, count_param), obs=docs)

    def guide(self, docs):
        pyro.module("encoder", self.encoder)
        with pyro.plate("documents", docs.shape[0]):
            logtheta_loc, logtheta_scale = self.encoder(docs)
            pyro.sample("logtheta", dist.Normal(logtheta_loc, logtheta_scale).to_event(1))


def make(rows):
    prodlda = ProdLDA(rows[0].shape[-1], TOPICS)
    return prodlda.model, prodlda.guide


def build(dataset):
    return ProdLDA(dataset.train.shape[-1], TOPICS)


def data(n=256, seed=0):
    """``n`` documents of ``WORDS`` words each from ``TOPICS`` sparse topics: (n, VOCAB) integer counts."""
    g = torch.Generator().manual_seed(seed)
    topics = torch.softmax(5 * torch.randn(TOPICS, VOCAB, generator=g), -1)
    theta = torch.softmax(2 * torch.randn(n, TOPICS, generator=g), -1)
    words = torch.multinomial(theta @ topics, WORDS, replacement=True, generator=g)
    return (F.one_hot(words, VOCAB).sum(1).float(),)


def optimizer():
    return pyro.optim.Adam({"lr": 1e-2})


def loss():
    return pyro.infer.TraceMeanField_ELBO()


def reference(rows, steps=STEPS, seed=0):
    from suite import svi_loop

    return svi_loop(lambda: make(rows), rows, optimizer(), loss(), steps, seed, batch_size=BATCH_SIZE)
