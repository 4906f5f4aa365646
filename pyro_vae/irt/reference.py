"""The exact reference for the IRT models (numpy and scipy only, independent of Pyro and torch).

Integrating the ability out of a student's answers is a 1-D integral against a Normal density,
which Gauss–Hermite quadrature with K nodes z_k and weights w_k (Σ w_k = 1) computes to machine
precision for these smooth integrands:

    p(x_s) = ∫ Π_{t answered} σ(η_t(θ))^{x_st} (1 − σ(η_t(θ)))^{1 − x_st} N(θ; m, 1) dθ
           = Σ_k w_k Π_{t answered} ...(θ = m + z_k)                  (m = μ for lecture, else 0)

Maximum marginal likelihood (MML; Bock & Aitkin 1981) maximizes Σ_s log p(x_s) over the item
parameters with L-BFGS on the exact gradient. With ``prior`` it maximizes log p(x) + log p(items)
instead: the exact MAP under the priors of ``models/irt.py``.

Parameters are dicts of numpy arrays: lecture {beta, mu}; 1pl {difficulty}; 2pl {difficulty, discrimination}.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.optimize import minimize
from scipy.special import expit, log_expit, logsumexp, softmax

NUM_NODES = 121  # 61 nodes already agree with adaptive quadrature to ~1e-10 relative for a ≤ 1.7


def quadrature(num_nodes: int = NUM_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights with Σ_k w_k f(z_k) ≈ E f(z), z ~ N(0, 1)."""
    z, w = hermegauss(num_nodes)
    return z, w / w.sum()


def logits(kind: str, params: dict, z: np.ndarray) -> np.ndarray:
    """η (K, J) at abilities θ = m + z_k."""
    if kind == "lecture":
        return (params["mu"] + z)[:, None] * params["beta"]
    discrimination = params.get("discrimination", 1.0) if kind == "2pl" else 1.0
    return discrimination * (z[:, None] - params["difficulty"])


def _log_likelihood_at_nodes(kind, params, answers, mask, z):
    """log p(x_s | θ = m + z_k), (N, K): answered items only."""
    eta = logits(kind, params, z)
    right, wrong = answers * mask, (1 - answers) * mask
    return right @ log_expit(eta).T + wrong @ log_expit(-eta).T


def marginal_log_likelihood(kind: str, params: dict, answers: np.ndarray, mask: np.ndarray | None = None, num_nodes: int = NUM_NODES) -> np.ndarray:
    """log p(x_s) for every student s (missing answers integrate to 1, so they drop out)."""
    answers, mask = _arrays(answers, mask)
    z, w = quadrature(num_nodes)
    return logsumexp(_log_likelihood_at_nodes(kind, params, answers, mask, z) + np.log(w), axis=1)


def posterior_ability(kind: str, params: dict, answers: np.ndarray, mask: np.ndarray | None = None,
                      num_nodes: int = NUM_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Exact posterior mean and sd of each student's ability given the item parameters."""
    answers, mask = _arrays(answers, mask)
    z, w = quadrature(num_nodes)
    post = softmax(_log_likelihood_at_nodes(kind, params, answers, mask, z) + np.log(w), axis=1)
    theta = params.get("mu", 0.0) + z
    mean = post @ theta
    return mean, np.sqrt(np.maximum(post @ theta**2 - mean**2, 0.0))


def pattern_probabilities(kind: str, params: dict, num_items: int,
                          num_nodes: int = NUM_NODES) -> tuple[np.ndarray, np.ndarray]:
    """All 2^J answer patterns and their marginal probabilities."""
    patterns = np.array(list(itertools.product((0.0, 1.0), repeat=num_items)))
    return patterns, np.exp(marginal_log_likelihood(kind, params, patterns, None, num_nodes))


def fit_mml(kind: str, answers: np.ndarray, mask: np.ndarray | None = None, prior: dict | None = None, num_nodes: int = NUM_NODES) -> dict:
    """MML (or, with ``prior`` = {"difficulty_scale", "log_scale"}, MAP) item parameters.

    Returns the parameters, ``log_likelihood`` (Σ_s log p(x_s) at them) and ``standard_errors`` (a dict
    like the parameters: from the inverse Hessian of the objective, the delta method for a = e^u, β = e^u).
    """
    answers, mask = _arrays(answers, mask)
    rows, counts = np.unique(np.concatenate([answers * mask, mask], axis=1), axis=0, return_counts=True)
    answers, mask, counts = rows[:, :answers.shape[1]], rows[:, answers.shape[1]:], counts.astype(float)
    num_items = answers.shape[1]
    z, w = quadrature(num_nodes)

    def objective(v):
        params, dparams = _unpack(kind, v, num_items)
        ll = _log_likelihood_at_nodes(kind, params, answers, mask, z) + np.log(w)
        weights = counts[:, None] * softmax(ll, axis=1)  # c_r p(θ_k | x_r), (R, K)
        eta = logits(kind, params, z)
        d_eta = weights.T @ (answers * mask) - (weights.T @ mask) * expit(eta)  # ∂ log p(x) / ∂η_kt
        value, grad = counts @ logsumexp(ll, axis=1), dparams(d_eta, z)
        if prior is not None:
            log_prior, d_prior = _log_prior(kind, v, num_items, prior)
            value, grad = value + log_prior, grad + d_prior
        return -value, -grad

    result = minimize(objective, _start(kind, num_items), jac=True, method="L-BFGS-B",
                      options={"maxiter": 5000, "gtol": 1e-9, "ftol": 1e-15})
    params, _ = _unpack(kind, result.x, num_items)
    params["standard_errors"] = _standard_errors(kind, objective, result.x, num_items)
    params["log_likelihood"] = float(counts @ logsumexp(
        _log_likelihood_at_nodes(kind, params, answers, mask, z) + np.log(w), axis=1))
    params["converged"] = bool(result.success)
    return params


def _standard_errors(kind, objective, v, num_items, step=1e-5):
    """sd of each parameter from the inverse of the Hessian, by central differences of the exact gradient."""
    hessian = np.array([(objective(v + step * e)[1] - objective(v - step * e)[1]) / (2 * step)
                        for e in np.eye(len(v))])
    sd_v = np.sqrt(np.diag(np.linalg.inv((hessian + hessian.T) / 2)))
    params, _ = _unpack(kind, v, num_items)
    if kind == "lecture":
        return {"beta": params["beta"] * sd_v[:num_items], "mu": sd_v[num_items]}
    if kind == "1pl":
        return {"difficulty": sd_v}
    return {"difficulty": sd_v[:num_items], "discrimination": params["discrimination"] * sd_v[num_items:]}


def _arrays(answers, mask):
    answers = np.asarray(answers, dtype=float)
    mask = np.ones_like(answers) if mask is None else np.asarray(mask, dtype=float)
    return answers, mask


def _start(kind, num_items):
    return np.zeros(num_items + 1 if kind == "lecture" else num_items * (2 if kind == "2pl" else 1))


def _unpack(kind, v, num_items):
    """Unconstrained vector → parameters, and the chain rule from ∂/∂η (K, J) back to ∂/∂v."""
    if kind == "lecture":
        beta, mu = np.exp(v[:num_items]), v[num_items]
        return {"beta": beta, "mu": mu}, lambda g, z: np.concatenate(
            [beta * ((mu + z) @ g), [np.sum(g @ beta)]])
    if kind == "1pl":
        return {"difficulty": v.copy()}, lambda g, z: -g.sum(0)
    b, a = v[:num_items], np.exp(v[num_items:])
    return {"difficulty": b, "discrimination": a}, lambda g, z: np.concatenate(
        [-a * g.sum(0), a * ((z[:, None] - b) * g).sum(0)])


def _log_prior(kind, v, num_items, prior):
    """log p(items) of models/irt.py in the unconstrained v (Normal b; LogNormal a, β), and its gradient.

    The MAP of the model is taken in the constrained parameters, as a Delta guide does, so a LogNormal
    density keeps its 1/a factor: log p(a) = log N(log a; 0, s²) − log a.
    """
    s_b, s_log = prior["difficulty_scale"], prior["log_scale"]
    positive = np.zeros_like(v, dtype=bool)
    if kind == "lecture":
        positive[:num_items] = True
    elif kind == "2pl":
        positive[num_items:] = True
    real = ~positive
    if kind == "lecture":
        real[num_items] = False  # μ is a plain parameter, no prior
    value = -0.5 * np.sum((v[real] / s_b) ** 2) - np.sum(0.5 * (v[positive] / s_log) ** 2 + v[positive])
    grad = np.zeros_like(v)
    grad[real] = -v[real] / s_b**2
    grad[positive] = -v[positive] / s_log**2 - 1.0
    return value, grad
