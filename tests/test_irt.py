"""The exam-analysis companion: data, the exact quadrature reference, SVI fits against it, the CLI.

Every statistical check is seeded and compares with something exact or independent:
- the reference with adaptive quadrature (scipy.integrate.quad) and published MML estimates for LSAT;
- SVI with point-estimated items with the reference's MML on LSAT: 2PL difficulties within 0.2,
  discriminations within 0.1, log-likelihood within 0.3 nats (measured: 0.12, 0.03, 0.06);
  1PL difficulties within 0.03, log-likelihood within 0.05 nats (measured: 0.006, 0.006);
- recovery on synthetic 2PL data (1,000 students × 20 items, 20% missing): correlation with the
  truth ≥ 0.98 for difficulties, ≥ 0.85 for discriminations, and for abilities within 0.01 of the
  correlation that the exact posterior mean at the true items reaches (measured: 0.990, 0.937, 0.874 vs 0.877);
- the amortized encoder against the mean-field guide and, for new students, the exact posterior.
"""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO
from scipy.integrate import quad
from scipy.special import expit

from pyro_vae.irt import exams
from pyro_vae.irt import reference
from pyro_vae.cli import main
from pyro_vae.irt import fitting, report
from pyro_vae.irt.settings import KINDS
from pyro_vae.models.irt import IRT
from pyro_vae.train import ScaledLoss

LSAT_PROPORTIONS = [0.924, 0.709, 0.553, 0.763, 0.870]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with fitting.one_thread():
        yield


def random_params(kind, num_items, rng):
    if kind == "lecture":
        return {"beta": rng.lognormal(0, 0.5, num_items), "mu": 0.7}
    params = {"difficulty": rng.normal(size=num_items)}
    if kind == "2pl":
        params["discrimination"] = rng.lognormal(0, 0.4, num_items)
    return params


# --- data -------------------------------------------------------------------------------------------

def test_lsat_is_1000_examinees_with_the_published_proportions():
    data = exams.lsat()
    assert data.shape == (1000, 5) and bool(data.mask.all())
    np.testing.assert_allclose(data.proportions().numpy(), LSAT_PROPORTIONS, atol=1e-6)
    assert len(np.unique(data.answers.numpy(), axis=0)) == 30  # 32 patterns, two of them with count 0


def test_user_csv_and_pyirt_jsonl_read_alike(tmp_path):
    (tmp_path / "a.csv").write_text("subject_id,q1,q2,q3\nann,1,,0\nbob,0,1,1\n")
    (tmp_path / "a.jsonl").write_text('{"subject_id": "ann", "responses": {"q1": 1, "q3": 0}}\n'
                                      '{"subject_id": "bob", "responses": {"q1": 0, "q2": 1, "q3": 1}}\n')
    from_csv, from_jsonl = exams.load(str(tmp_path / "a.csv")), exams.load(str(tmp_path / "a.jsonl"))
    for data in (from_csv, from_jsonl):
        assert data.students == ["ann", "bob"]
        assert sorted(data.items) == ["q1", "q2", "q3"]
    order = [from_jsonl.items.index(item) for item in from_csv.items]
    assert torch.equal(from_csv.mask, from_jsonl.mask[:, order])
    assert torch.equal(from_csv.answers, from_jsonl.answers[:, order])
    assert from_csv.mask.tolist() == [[True, False, True], [True, True, True]]
    headless = tmp_path / "b.csv"
    headless.write_text("1,0\n,1\n")
    assert exams.load(str(headless)).mask.tolist() == [[True, True], [False, True]]


def test_synthetic_data_has_the_asked_missing_fraction():
    data = exams.synthetic("2pl", 2000, 30, missing=0.2, seed=3)
    assert abs(1 - data.mask.float().mean().item() - 0.2) < 0.01
    assert float(data.answers[~data.mask].abs().sum()) == 0  # missing answers hold 0, and are masked


# --- the exact reference -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_quadrature_probabilities_sum_to_one_and_match_adaptive_quadrature(kind):
    params = random_params(kind, 6, np.random.default_rng(0))
    patterns, probabilities = reference.pattern_probabilities(kind, params, 6)
    assert len(patterns) == 64
    assert abs(probabilities.sum() - 1) < 1e-12
    pattern = patterns[45]
    mean = params.get("mu", 0.0)

    def integrand(theta):
        p = expit(reference.logits(kind, params, np.array([theta - mean]))[0])
        return np.prod(np.where(pattern == 1, p, 1 - p)) * np.exp(-(theta - mean) ** 2 / 2) / np.sqrt(2 * np.pi)

    exact, _ = quad(integrand, -np.inf, np.inf, epsabs=1e-14, epsrel=1e-12)
    assert abs(probabilities[45] - exact) < 1e-11 * exact


def test_lecture_model_with_zero_mean_ability_solves_every_item_half_the_time():
    params = random_params("lecture", 5, np.random.default_rng(1))
    patterns, probabilities = reference.pattern_probabilities("lecture", {**params, "mu": 0.0}, 5)
    np.testing.assert_allclose(probabilities @ patterns, 0.5, atol=1e-12)  # the catch in models/irt.py
    patterns, probabilities = reference.pattern_probabilities("lecture", {**params, "mu": 1.0}, 5)
    assert (probabilities @ patterns > 0.6).all()


def test_reference_mml_reproduces_published_lsat_estimates():
    """ltm (Rizopoulos 2006) on LSAT, 2PL: ltm(LSAT ~ z1); 1PL with a = 1: rasch(LSAT, constraint=...)."""
    answers = exams.lsat().answers.numpy()
    fit = reference.fit_mml("2pl", answers)
    np.testing.assert_allclose(fit["difficulty"], [-3.3597, -1.3696, -0.2799, -1.8659, -3.1236], atol=0.01)
    np.testing.assert_allclose(fit["discrimination"], [0.8254, 0.7231, 0.8899, 0.6886, 0.6575], atol=0.01)
    np.testing.assert_allclose(fit["standard_errors"]["difficulty"][[0, 2]], [0.8669, 0.0998], atol=0.01)
    assert abs(fit["log_likelihood"] - (-2466.653)) < 0.01
    fit = reference.fit_mml("1pl", answers)
    np.testing.assert_allclose(fit["difficulty"], [-2.8720, -1.0630, -0.2576, -1.3881, -2.2188], atol=0.005)
    assert abs(fit["log_likelihood"] - (-2473.054)) < 0.01


# --- the model ---------------------------------------------------------------------------------------

def test_missing_answers_do_not_enter_the_likelihood():
    data = exams.synthetic("2pl", 30, 8, missing=0.3, seed=2)
    model = IRT(8, "2pl")
    values = {"difficulty": torch.linspace(-1, 1, 8), "discrimination": torch.ones(8),
              "ability": torch.linspace(-2, 2, 30).unsqueeze(-1)}

    def log_likelihood(answers):
        trace = poutine.trace(poutine.condition(model, values)).get_trace(answers, data.mask)
        trace.compute_log_prob()
        return trace.nodes["answers"]["log_prob_sum"]

    flipped_missing = torch.where(data.mask, data.answers, 1 - data.answers)
    flipped_given = torch.where(data.mask, 1 - data.answers, data.answers)
    assert torch.equal(log_likelihood(flipped_missing), log_likelihood(data.answers))
    assert not torch.allclose(log_likelihood(flipped_given), log_likelihood(data.answers))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("guide", ["amortized", "meanfield"])
def test_model_and_guide_run_on_the_meta_device(kind, guide):
    data = exams.synthetic("2pl", 40, 6, 0.2)
    model, q = fitting.build({"kind": kind, "guide": guide, "items": "latent", "num_items": 6, "num_students": 40})
    batch = data.tensors(with_index=True)
    objective = TraceMeanField_ELBO(num_particles=2, vectorize_particles=True, max_plate_nesting=2)
    with torch.device("meta"):
        loss = ScaledLoss(objective(model, q), 400)(*batch)
        loss.backward()
    assert loss.device.type == "cpu" and torch.isfinite(loss)


# --- SVI against the reference --------------------------------------------------------------------

@pytest.mark.parametrize("kind, tolerance", [("2pl", {"difficulty": 0.2, "discrimination": 0.1, "ll": 0.3}),
                                             ("1pl", {"difficulty": 0.03, "ll": 0.05})])
def test_svi_with_point_items_lands_on_the_mml_reference_on_lsat(kind, tolerance):
    data = exams.lsat()
    model, guide, _ = fitting.train(data, kind, "amortized", "point", epochs=300, quiet=True, device="cpu")
    estimates = report.item_estimates(model, guide)
    mml = reference.fit_mml(kind, data.answers.numpy())
    for name in model.item_sites:
        assert np.abs(estimates[name] - mml[name]).max() < tolerance[name], name
    log_likelihood = reference.marginal_log_likelihood(kind, estimates, data.answers.numpy()).sum()
    assert mml["log_likelihood"] - tolerance["ll"] < log_likelihood <= mml["log_likelihood"] + 1e-6


@pytest.fixture(scope="module")
def synthetic_fits():
    full = exams.synthetic("2pl", 1200, 20, missing=0.2, seed=1)
    train = replace(full, answers=full.answers[:1000], mask=full.mask[:1000], students=full.students[:1000])
    fits = {guide: fitting.train(train, "2pl", guide, "latent", epochs=300, quiet=True, device="cpu")[:2]
            for guide in ("amortized", "meanfield")}
    return full, train, fits


def test_parameter_recovery_with_20_percent_missing(synthetic_fits):
    full, train, fits = synthetic_fits
    estimates = report.item_estimates(*fits["amortized"])
    assert np.corrcoef(estimates["difficulty"], full.truth["difficulty"])[0, 1] >= 0.98
    assert np.corrcoef(estimates["discrimination"], full.truth["discrimination"])[0, 1] >= 0.85
    truth = {k: full.truth[k].numpy() for k in ("difficulty", "discrimination")}
    best, _ = reference.posterior_ability("2pl", truth, train.answers.numpy(), train.mask.numpy())
    ability = full.truth["ability"][:1000].numpy()
    means, _ = report.abilities(fits["amortized"][1], train)
    assert np.corrcoef(means, ability)[0, 1] >= np.corrcoef(best, ability)[0, 1] - 0.01


def test_amortized_guide_agrees_with_the_meanfield_guide(synthetic_fits):
    _, train, fits = synthetic_fits
    amortized, meanfield = (report.item_estimates(*fits[g]) for g in ("amortized", "meanfield"))
    assert np.abs(amortized["difficulty"] - meanfield["difficulty"]).max() < 0.3
    assert np.abs(amortized["discrimination"] - meanfield["discrimination"]).max() < 0.25
    (mean_a, sd_a), (mean_m, sd_m) = (report.abilities(fits[g][1], train) for g in ("amortized", "meanfield"))
    assert np.corrcoef(mean_a, mean_m)[0, 1] > 0.99
    assert np.abs(mean_a - mean_m).mean() < 0.1 and np.abs(sd_a - sd_m).mean() < 0.1
    items = {k: amortized[k] for k in ("difficulty", "discrimination")}
    exact, exact_sd = reference.posterior_ability("2pl", items, train.answers.numpy(), train.mask.numpy())
    assert np.abs(mean_a - exact).mean() < 0.03 and np.abs(sd_a - exact_sd).mean() < 0.02


def test_amortized_guide_scores_new_students_on_any_subset_without_refitting(synthetic_fits):
    full, _, fits = synthetic_fits
    model, guide = fits["amortized"]
    estimates = report.item_estimates(model, guide)
    items = {k: estimates[k] for k in ("difficulty", "discrimination")}
    answers, given = full.answers[1000:], full.mask[1000:]
    three = torch.zeros_like(given).scatter_(1, torch.randperm(20, generator=torch.Generator().manual_seed(0))[:3]
                                             .expand(200, 3).contiguous(), True)
    for mask in (given, given & three, torch.zeros_like(given)):
        with torch.no_grad():
            mean, sd = guide.abilities(answers * mask, mask)
        exact, exact_sd = reference.posterior_ability("2pl", items, (answers * mask).numpy(), mask.numpy())
        assert np.abs(mean[:, 0].numpy() - exact).max() < 0.15
        assert np.abs(sd[:, 0].numpy() - exact_sd).max() < 0.05


# --- the command -----------------------------------------------------------------------------------

def test_cli_end_to_end_on_lsat(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["irt", "--data", "lsat", "--out", str(out), "--epochs", "300", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "marginal log-likelihood" in printed and "item5" in printed
    summary = json.loads((out / "irt.json").read_text())
    assert [row["proportion_correct"] for row in summary["item_table"]] == LSAT_PROPORTIONS
    assert all(row["difficulty_sd"] > 0 and row["discrimination"] > 0 for row in summary["item_table"])
    mml = reference.fit_mml("2pl", exams.lsat().answers.numpy())["log_likelihood"]
    assert mml - 1.5 < summary["marginal_log_likelihood"] <= mml + 1e-6
    assert summary["elbo"] < summary["marginal_log_likelihood"]
    assert len((out / "abilities.csv").read_text().splitlines()) == 1001
    assert (out / "figures" / "icc.png").stat().st_size > 0 and (out / "config.json").exists()


def test_cli_on_a_user_csv_with_the_meanfield_guide_and_the_lecture_model(tmp_path, capsys):
    data = exams.synthetic("lecture", 60, 4, missing=0.25, seed=5)
    rows = [",".join("" if not m else str(int(a)) for a, m in zip(r, k)) for r, k in zip(data.answers, data.mask)]
    (tmp_path / "exam.csv").write_text("q1,q2,q3,q4\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["irt", "--data", str(tmp_path / "exam.csv"), "--model", "lecture", "--guide", "meanfield",
                 "--items", "point", "--epochs", "30", "--out", str(out), "--quiet", "--no-figures"]) == 0
    summary = json.loads((out / "irt.json").read_text())
    assert [row["item"] for row in summary["item_table"]] == ["q1", "q2", "q3", "q4"]
    assert "mu" in summary and all("beta" in row and "beta_sd" not in row for row in summary["item_table"])


@pytest.mark.parametrize("name, text", [("bad.csv", "q1,q2\n1,0\n2,1\n"),
                                        ("bad.jsonl", '{"subject_id": "a", "responses": {"q1": 0.5}}\n'),
                                        ("short.csv", "1,0,1\n1,0\n")])
def test_bad_answer_values_exit_2_with_one_line(tmp_path, capsys, name, text):
    (tmp_path / name).write_text(text)
    out = tmp_path / "run"
    assert main(["irt", "--data", str(tmp_path / name), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pyro-vae: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_unknown_data_name_exits_2(tmp_path, capsys):
    assert main(["irt", "--data", "nonesuch", "--out", str(tmp_path / "run")]) == 2
    assert "lsat" in capsys.readouterr().err
