"""Any Pyro program trains: every idiom of docs/programs.md, run as written there.

Each worked example of docs/programs.md is extracted into a file and loaded the way ``--program``
loads it. For every idiom: it learns what an exact or independent answer says (a conjugate
posterior, scikit-learn's least squares, the mixture's true locations), it resumes exactly after an
interruption in the middle of an epoch, a NaN stops it with one line, and two data-parallel ranks
agree. Autoguides get the same treatment with the regression model, and the command line trains,
evaluates, plots and resumes a program from a file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import pyro
from pyro.infer import TraceEnum_ELBO, TraceMeanField_ELBO
from pyro.infer import autoguide

from pyro_vae import checkpoint as ckpt
from pyro_vae import cli, parameters, program, runs
from pyro_vae.callbacks import Callback
from pyro_vae.data import Dataset
from pyro_vae.errors import UserError
from pyro_vae.train import fit

DOC = Path(__file__).resolve().parents[1] / "docs" / "programs.md"


def doc_programs() -> dict[str, str]:
    """File name → code of every ```python block of docs/programs.md that starts with ``# NAME.py``."""
    return dict(re.findall(r"```python\n# (\w+\.py)\n(.*?)```", DOC.read_text(), re.S))


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("programs")
    for name, code in doc_programs().items():
        (folder / name).write_text(code)
    return folder


def synthetic(name: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if name == "mean":  # x_i ~ N((1, -2), I)
        return torch.tensor([1.0, -2.0]) + torch.randn(400, 2, generator=g)
    if name == "regression":  # y = X (1, -2, 0.5) + 0.3 + N(0, 0.5²); the last column is y
        features = torch.randn(400, 3, generator=g)
        y = features @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 + 0.5 * torch.randn(400, generator=g)
        return torch.cat([features, y[:, None]], 1)
    if name == "mixture":  # half N(-3, 1), half N(3, 1)
        return torch.cat([torch.randn(200, 1, generator=g) - 3, torch.randn(200, 1, generator=g) + 3])
    if name == "local":  # x_i = z_i + N(0, 0.5²), z_i ~ N(2, 1)
        return 2 + torch.randn(200, 1, generator=g) + 0.5 * torch.randn(200, 1, generator=g)
    raise KeyError(name)


def as_dataset(x: torch.Tensor) -> Dataset:
    return Dataset("synthetic", x, x[:100], None, None, (x.shape[1],))


# idiom → (program, data, objective, training options)
IDIOMS = {
    "module methods + pyro.module": ("vae_methods.py:build", "digits", None, dict(lr=3e-3)),
    "functions + pyro.param": ("global_mean.py:pair", "mean", TraceMeanField_ELBO, dict(lr=0.05)),
    "PyroModule + AutoNormal": ("regression.py:build", "regression", None, dict(lr=0.05)),
    "enumeration + AutoDelta": ("mixture.py:build", "mixture", lambda: TraceEnum_ELBO(max_plate_nesting=1),
                                dict(lr=0.1)),
    "local parameters, subsampled plate": ("local.py:build", "local", TraceMeanField_ELBO, dict(lr=0.1)),
}


def problem(idiom: str, programs: Path, digits=None):
    """A fresh (model, guide, data, objective, options) for ``idiom``, as a new process would build it."""
    spec, data_name, objective, options = IDIOMS[idiom]
    pyro.clear_param_store()
    torch.manual_seed(0)
    x = digits.train[:512] if data_name == "digits" else synthetic(data_name)
    model, guide = program.load(str(programs / spec), digits if data_name == "digits" else as_dataset(x))
    data = (x, torch.arange(x.shape[0])) if data_name == "local" else x
    return model, guide, data, objective() if objective else None, options


def train(idiom, programs, digits, **kwargs):
    model, guide, data, objective, options = problem(idiom, programs, digits)
    options = {**dict(batch_size=50, device="cpu", evaluator=None, quiet=True, seed=1), **options, **kwargs}
    history = fit(model, guide, data, objective=objective, **options)
    return model, guide, history


# --- each idiom learns what an exact or independent answer says --------------------------------

def test_functions_with_pyro_param_find_the_conjugate_posterior(programs):
    """x_i ~ N(μ, I), μ ~ N(0, 10² I): q(μ) → N(Σx / (N + 10⁻²), 1 / (N + 10⁻²)) exactly."""
    x = synthetic("mean")
    train("functions + pyro.param", programs, None, epochs=40, lr=0.05)
    precision = x.shape[0] + 1e-2
    store = pyro.get_param_store()
    torch.testing.assert_close(store["mu_loc"].detach(), x.sum(0) / precision, atol=0.03, rtol=0)
    torch.testing.assert_close(store["mu_scale"].detach(), torch.full((2,), precision ** -0.5), atol=0.02, rtol=0)


def test_pyromodule_with_an_autoguide_agrees_with_least_squares(programs):
    """Weak priors, 400 rows: the posterior median of the weights is scikit-learn's least-squares fit."""
    from sklearn.linear_model import LinearRegression

    x = synthetic("regression")
    _, guide, _ = train("PyroModule + AutoNormal", programs, None, epochs=25)
    reference = LinearRegression().fit(x[:, :-1].numpy(), x[:, -1].numpy())
    median = guide.median()
    torch.testing.assert_close(median["linear.weight"][0], torch.tensor(reference.coef_), atol=0.1, rtol=0)
    assert abs(float(median["linear.bias"][0]) - reference.intercept_) < 0.1
    assert abs(float(median["sigma"]) - 0.5) < 0.1


def test_enumerated_mixture_recovers_the_two_locations(programs):
    _, guide, _ = train("enumeration + AutoDelta", programs, None, epochs=10)
    locs = guide.median()["locs"].sort().values
    torch.testing.assert_close(locs, torch.tensor([-3.0, 3.0]), atol=0.3, rtol=0)


def test_local_parameters_find_each_rows_posterior_mean(programs):
    """x_i = z_i + N(0, ¼), z_i ~ N(μ, 1): E[z_i | x, μ] = (4 x_i + μ) / 5, and μ ≈ the mean of x."""
    x = synthetic("local")
    train("local parameters, subsampled plate", programs, None, epochs=150, batch_size=200)
    store = pyro.get_param_store()
    mu = store["mu_loc"].detach()
    assert abs(float(mu) - float(x.mean())) < 0.15
    error = (store["z_loc"].detach() - (4 * x + mu) / 5).abs()
    assert float(error.mean()) < 0.1, float(error.mean())


def test_pyros_vae_example_idiom_raises_its_elbo(programs, digits):
    from pyro_vae.evaluate import elbo_parts

    model, guide, data, _, _ = problem("module methods + pyro.module", programs, digits)
    before = elbo_parts(model, guide, digits.test)["elbo"]
    _, _, history = train("module methods + pyro.module", programs, digits, epochs=5, evaluator=elbo_parts,
                          test_data=digits.test)
    assert history[-1]["test_elbo"] > before + 10, (before, history[-1])


# --- for every idiom: exact resume, NaN guard, device, data parallel ----------------------------

class Interrupt(Callback):
    """Stops the run after step ``at``, as a kill would: nothing after the last checkpoint is saved."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, trainer):
        if trainer.step == self.at:
            raise KeyboardInterrupt


def program_state(run: Path) -> dict:
    state = ckpt.load(run / "checkpoint.pt")
    flat = {f"param_store.{k}": v for k, v in state["param_store"].items()}
    for part in ("model", "guide"):
        flat.update({f"{part}.{k}": v for k, v in (state[part] or {}).items()})
    return flat


@pytest.mark.parametrize("idiom", list(IDIOMS))
def test_each_idiom_resumes_exactly_after_an_interruption_mid_epoch(idiom, programs, digits, tmp_path):
    # checkpoints every 3 steps; stopped in epoch 2, one or two steps after its last checkpoint
    common = dict(epochs=2, batch_size=64 if idiom.startswith("module") else 50, checkpoint_every="3steps",
                  evaluator=None)
    train(idiom, programs, digits, out=tmp_path / "straight", **common)
    steps_per_epoch = ckpt.load(tmp_path / "straight" / "checkpoint.pt")["step"] // 2
    stop = steps_per_epoch + 3
    with pytest.raises(KeyboardInterrupt):
        train(idiom, programs, digits, out=tmp_path / "halted", callbacks=[Interrupt(stop)], **common)
    saved = ckpt.load(tmp_path / "halted" / "checkpoint.pt")
    assert saved["epoch"] == 1 and saved["partial"] is not None and stop - 3 < saved["step"] < stop
    train(idiom, programs, digits, out=tmp_path / "halted", resume=True, **common)  # fresh program, fresh store
    want, got = program_state(tmp_path / "straight"), program_state(tmp_path / "halted")
    assert want.keys() == got.keys() and want
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=1e-6, msg=name)
    assert all(v.device.type == "cpu" for v in got.values())
    rows = [json.loads(line) for line in (tmp_path / "halted" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


@pytest.mark.parametrize("idiom", list(IDIOMS))
def test_each_idiom_stops_on_a_nan_loss_with_the_step(idiom, programs, digits, tmp_path):
    steps = [0]

    def poison(batch):  # rows turn NaN from the fourth step on
        steps[0] += 1
        return (batch[0] * float("nan"), *batch[1:]) if steps[0] >= 4 else batch

    with pytest.raises(UserError, match=r"NaN/inf at step 4\. .*last good checkpoint"):
        train(idiom, programs, digits, epochs=2, batch_size=64 if idiom.startswith("module") else 50,
              transform=poison, out=tmp_path / "run", checkpoint_every="2steps")
    assert ckpt.load(tmp_path / "run" / "checkpoint.pt")["step"] == 2  # the good one, left as it was


def _ranks_train(rank, idiom, programs, out):
    from pyro_vae.data import load

    digits = load("digits") if idiom.startswith("module") else None
    model, guide, history = train(idiom, programs, digits, epochs=1, batch_size=100, out=Path(out) / f"rank{rank}",
                                  evaluator=None)
    names = [n for n, _ in pyro.get_param_store().named_parameters()]
    params = {**{f"store.{n}": v.detach() for n, v in pyro.get_param_store().named_parameters()},
              **{f"module.{n}": v.detach() for m in parameters.owners(model, guide) for n, v in m.named_parameters()}}
    torch.save({"losses": [h["train_loss"] for h in history], "params": params, "names": names},
               Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
@pytest.mark.parametrize("idiom", list(IDIOMS))
def test_each_idiom_trains_data_parallel_with_every_parameter_averaged(idiom, programs, tmp_path):
    """Two gloo ranks, each on its shard: pyro.param values, module and autoguide parameters all stay
    identical across ranks (their gradients are averaged), and the run ends where rank 0 wrote it."""
    from test_distributed import run_ranks

    run_ranks(_ranks_train, idiom, programs, str(tmp_path))
    assert (tmp_path / "rank0" / "checkpoint.pt").is_file() and not (tmp_path / "rank1").exists()  # rank 0 writes
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert ranks[0]["losses"] == ranks[1]["losses"]  # the reported loss is the global one
    assert ranks[0]["params"] and ranks[0]["params"].keys() == ranks[1]["params"].keys()
    for name, value in ranks[0]["params"].items():  # each rank saw other rows, yet took the same steps
        torch.testing.assert_close(ranks[1]["params"][name], value, rtol=0, atol=1e-6, msg=name)


def _ranks_params(rank, programs, out):
    model, guide, _ = train("enumeration + AutoDelta", programs, None, epochs=2, batch_size=100)
    torch.save({k: v.detach() for k, v in guide.median().items()}, Path(out) / f"median{rank}.pt")


@pytest.mark.slow
def test_two_ranks_take_the_one_process_steps_of_a_deterministic_program(programs, tmp_path):
    """AutoDelta + enumeration draw no noise, so 2 ranks on shards of each batch = 1 process on the batch."""
    from test_distributed import run_ranks

    _, guide, _ = train("enumeration + AutoDelta", programs, None, epochs=2, batch_size=100)
    single = {k: v.detach() for k, v in guide.median().items()}
    run_ranks(_ranks_params, programs, str(tmp_path))
    for rank in range(2):
        got = torch.load(tmp_path / f"median{rank}.pt")
        for name, value in single.items():
            torch.testing.assert_close(got[name], value, rtol=0, atol=1e-5, msg=f"rank {rank} {name}")


# --- every autoguide ----------------------------------------------------------------------------

AUTOGUIDES = [autoguide.AutoNormal, autoguide.AutoDiagonalNormal, autoguide.AutoMultivariateNormal,
              autoguide.AutoLowRankMultivariateNormal, autoguide.AutoDelta, autoguide.AutoIAFNormal]


def regression_pair(programs, guide_class):
    pyro.clear_param_store()
    torch.manual_seed(0)
    x = synthetic("regression")
    model, _ = program.load(str(programs / "regression.py:build"), as_dataset(x))
    kwargs = {"hidden_dim": [8]} if guide_class is autoguide.AutoIAFNormal else {}
    return model, guide_class(model, **kwargs), x


@pytest.mark.parametrize("guide_class", AUTOGUIDES, ids=lambda c: c.__name__)
def test_every_autoguide_trains_checkpoints_and_resumes_exactly(guide_class, programs, tmp_path):
    common = dict(epochs=2, batch_size=50, lr=0.02, device="cpu", evaluator=None, quiet=True)
    model, guide, x = regression_pair(programs, guide_class)
    history = fit(model, guide, x, out=tmp_path / "straight", **common)
    assert history[-1]["train_loss"] < history[0]["train_loss"] or guide_class is autoguide.AutoIAFNormal
    model, guide, x = regression_pair(programs, guide_class)
    fit(model, guide, x, out=tmp_path / "halted", **{**common, "epochs": 1})
    model, guide, x = regression_pair(programs, guide_class)
    fit(model, guide, x, out=tmp_path / "halted", resume=True, **common)
    want, got = program_state(tmp_path / "straight"), program_state(tmp_path / "halted")
    assert want.keys() == got.keys() and want
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=1e-6, msg=name)


# --- the command line ---------------------------------------------------------------------------

COMMON = ["--epochs", "2", "--batch-size", "64", "--lr", "3e-3", "--device", "cpu", "--quiet"]


def test_a_program_from_a_file_trains_evaluates_plots_and_resumes(programs, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--program", str(programs / "vae_methods.py:build"), "--dataset", "digits", *COMMON,
            "--out", str(out)]
    assert cli.main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "program" and config["program"].endswith("vae_methods.py:build")
    assert (out / "figures" / "elbo.png").is_file()
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test_elbo"] == pytest.approx(report["test_reconstruction"] - report["test_kl"])
    loaded = runs.load(out)  # rebuilt from config.json + checkpoint.pt
    assert loaded.metrics[-1]["epoch"] == 2
    x = loaded.dataset().test[:5]
    assert loaded.encode(x).shape == (5, 2) and loaded.reconstruct(x).shape == x.shape
    assert cli.main(["sample", str(out), "-n", "9", "--out", str(tmp_path / "s.npy")]) == 0
    import numpy as np

    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (9, 64) and ((samples >= 0) & (samples <= 1)).all()  # Bernoulli means
    assert cli.main(["plot", str(out)]) == 0
    assert {p.name for p in (out / "figures").iterdir()} == {"elbo.png", "reconstructions.png", "samples.png"}
    assert cli.main(["train", "--resume", "--epochs", "3", "--out", str(out), "--device", "cpu", "--quiet",
                     "--no-figures"]) == 0
    assert [json.loads(r)["epoch"] for r in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_a_program_with_enumeration_and_an_index_from_the_command_line(programs, tmp_path):
    import numpy as np

    np.save(tmp_path / "points.npy", synthetic("mixture").numpy())
    np.save(tmp_path / "rows.npy", synthetic("local").numpy())
    assert cli.main(["train", "--program", str(programs / "mixture.py:build"), "--elbo", "enum", "--dataset",
                     str(tmp_path / "points.npy"), *COMMON, "--out", str(tmp_path / "mixture"), "--no-figures"]) == 0
    assert cli.main(["train", "--program", str(programs / "local.py:build"), "--index", "--dataset",
                     str(tmp_path / "rows.npy"), *COMMON, "--out", str(tmp_path / "local"), "--no-figures"]) == 0
    state = ckpt.load(tmp_path / "local" / "checkpoint.pt")
    assert state["param_store"]["z_loc"].shape == (160, 1)  # one local parameter per training row


def test_tensorboard_writes_event_files(programs, tmp_path):
    logs = tmp_path / "tb"
    train("functions + pyro.param", programs, None, epochs=2, tensorboard=str(logs))
    events = list(logs.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logs))
    accumulator.Reload()
    assert [e.step for e in accumulator.Scalars("train/loss")] == [1, 2]


def test_sigkill_mid_epoch_then_resume_of_a_program_equals_the_uninterrupted_run(programs, tmp_path):
    """A real SIGKILL (forked process) two steps after a mid-epoch checkpoint, then --resume in this process."""
    import numpy as np
    from test_resume import _kill_at_step_17, run_until_killed

    np.save(tmp_path / "rows.npy", synthetic("mean").numpy())
    argv = ["train", "--program", str(programs / "global_mean.py:pair"), "--dataset", str(tmp_path / "rows.npy"),
            "--epochs", "3", "--batch-size", "40", "--lr", "0.05", "--seed", "2", "--device", "cpu", "--quiet",
            "--no-figures"]  # 320 training rows: 8 steps an epoch
    assert cli.main(argv + ["--out", str(tmp_path / "straight")]) == 0
    run_until_killed(argv + ["--out", str(tmp_path / "killed"), "--checkpoint-every", "5steps"], _kill_at_step_17)
    saved = ckpt.load(tmp_path / "killed" / "checkpoint.pt")
    assert (saved["epoch"], saved["step"]) == (1, 15) and saved["partial"] is not None
    assert cli.main(["train", "--resume", "--out", str(tmp_path / "killed"), "--device", "cpu", "--quiet",
                     "--no-figures"]) == 0
    want, got = program_state(tmp_path / "straight"), program_state(tmp_path / "killed")
    assert set(want) == {"param_store.mu_loc", "param_store.mu_scale"} == set(got)
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=1e-6, msg=name)
    metrics = [[json.loads(r) for r in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
               for run in ("straight", "killed")]
    for a, b in zip(*metrics, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
            pytest.approx({k: v for k, v in b.items() if k != "seconds"}, rel=1e-6)


def test_a_fit_without_config_says_why_its_run_folder_cannot_be_reopened(programs, tmp_path, capsys):
    train("functions + pyro.param", programs, None, epochs=1, out=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"] is None
    assert cli.main(["evaluate", str(tmp_path / "run")]) == 2
    assert "no config=" in capsys.readouterr().err
