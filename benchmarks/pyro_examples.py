"""Pyro's own examples as the acceptance suite: each program through ``fit``, the CLI, ``evaluate``,
``pyro_vae.load`` and ``--resume``, against Pyro's own ``SVI`` loop on the same data, steps and seed.

    python benchmarks/pyro_examples.py [--programs coin,gmm] [--scale 0.1] [--json FILE] [--markdown]

The programs are in benchmarks/pyro_examples/ (one file each: the model and guide, ``data()``,
``make(rows)``, ``reference(rows, steps, seed)`` running Pyro's loop, and where one exists the exact
answer). For each program the columns of the table are

    fit       ``pyro_vae.fit`` with the program's own ``pyro.optim`` optimizer and ELBO: its −ELBO per
              example within the program's tolerance of Pyro's loop (and the fitted quantity within its
              tolerance of the exact answer, where there is one)
    CLI       ``pyro-vae train --program FILE.py:NAME`` on the rows saved as .npy/.npz (all of them, in order:
              ``--test-fraction 0``) exits 0, and the mean training loss of its last 10% of steps is
              within the tolerance of the same mean of Pyro's loop
    evaluate  ``pyro-vae evaluate RUN`` exits 0, and its ELBO is the loaded run's own estimate on the rows
              (within the tolerance)
    load      ``pyro_vae.load(RUN)``'s model and guide give Pyro's −ELBO on the training rows
    resume    half the epochs, then ``--resume`` to all of them: the same metrics as the straight run
    loss vs Pyro  the two −ELBO per example, and their difference
    time vs Pyro  wall time of ``fit`` / wall time of Pyro's loop, run side by side in this process; for the
              programs marked TIMED (the issue's 2,000-step full-batch tutorials, coin and regression) with
              ``--rounds N``: the median ratio of N more pairs, the order swapped every round, and its interval

A −ELBO per example is estimated afresh on the final parameters with ``PARTICLES`` draws (the same
seed for both; more where a program says so), so that the comparison does not rest on the noisy last
step. A program's tolerance (nats per example) is stated in its file; ``--seeds`` also prints how far
Pyro's loop moves between two seeds, i.e. how much the answer depends on where it starts (with the
same seed both start alike). ``--scale`` shrinks every program's steps (the test suite runs the same
checks with few steps). ``--json`` writes every number after each program (docs/programs.md shows them;
tests/test_pyro_examples.py ties the page to the file).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import math
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import pyro

FOLDER = Path(__file__).resolve().parent / "pyro_examples"
ROOT = FOLDER.parents[1]
JSON = ROOT / "docs" / "figures" / "pyro_examples.json"
PARTICLES = 20  # per-example noise of an amortized program's −ELBO over hundreds of rows: ~0.01 nat
ARRAYS = ("x", "y", "z", "u", "v", "w")  # the names of a .npz's arrays, in the order model(x, y, ...) takes them


@dataclass(frozen=True)
class Case:
    """One row of the table: a program file, the NAME ``--program`` is given, and its data set's options."""

    row: str
    file: str
    name: str | None = None  # default: the file's PROGRAM
    data: dict = field(default_factory=dict)

    @property
    def module(self):
        if str(FOLDER) not in sys.path:
            sys.path.insert(0, str(FOLDER))  # as `python FILE.py` would: the programs import their helpers
        return importlib.import_module(self.file)

    @property
    def program(self) -> str:
        return f"{FOLDER / (self.file + '.py')}:{self.name or self.module.PROGRAM}"

    def rows(self) -> tuple[torch.Tensor, ...]:
        return self.module.data(**self.data)


CASES = [Case("VAE (examples/vae/vae.py)", "vae"),
         Case("semi-supervised VAE, unlabelled (ss_vae_M2.py)", "ss_vae"),
         Case("semi-supervised VAE, labelled (ss_vae_M2.py)", "ss_vae", "labelled", {"labels": True}),
         Case("coin (SVI part I)", "coin"),
         Case("Bayesian regression, AutoDiagonalNormal", "regression"),
         Case("Gaussian mixture, AutoDelta + enumeration", "gmm"),
         Case("ProdLDA", "prodlda"),
         Case("sparse gamma DEF, per-row guide (sparse_gamma_def.py)", "sparse_gamma"),
         Case("HMM model_1, pyro.markov (hmm.py)", "hmm")]
CASE = {c.file if c.name is None else f"{c.file}:{c.name}": c for c in CASES}


# ---- one program, trained by Pyro's loop and by fit ------------------------------------------------------

def batches_per_epoch(module, n: int) -> int:
    return math.ceil(n / (module.BATCH_SIZE or n))


def epochs(module, n: int, scale: float = 1.0) -> int:
    """Whole epochs closest to the program's STEPS × ``scale`` (the trainer counts epochs, Pyro's loop steps)."""
    return max(1, round(module.STEPS * scale / batches_per_epoch(module, n)))


def neg_elbo_draws(module, model, guide, rows, seed: int = 0) -> np.ndarray:
    """−ELBO per example, one value per draw from the guide, with the program's own ELBO on all ``rows``:
    the program's ``PARTICLES`` draws (1 where the ELBO has no noise: a point-mass guide, discrete sites
    summed out), else ours."""
    particles = getattr(module, "PARTICLES", PARTICLES)
    pyro.set_rng_seed(seed)
    objective = module.loss()
    with torch.no_grad():
        return np.array([objective.loss(model, guide, *rows) for _ in range(particles)]) / rows[0].shape[0]


def neg_elbo(module, model, guide, rows, seed: int = 0) -> float:
    """The mean of :func:`neg_elbo_draws`: −ELBO per example, estimated with many draws."""
    return float(neg_elbo_draws(module, model, guide, rows, seed).mean())


def pyro_loop(module, rows, steps: int, seed: int = 0) -> dict:
    """Pyro's own SVI loop (the program's ``reference``): its time, losses, final −ELBO and fitted quantity."""
    started = time.perf_counter()
    model, guide, losses = module.reference(rows, steps, seed)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "losses": losses, "neg_elbo": neg_elbo(module, model, guide, rows),
            **({"fitted": module.fitted(model, guide)} if hasattr(module, "fitted") else {})}


def fit_program(module, rows, steps: int, seed: int = 0) -> dict:
    """``pyro_vae.fit`` on the same rows, steps and seed, with the program's ``pyro.optim`` optimizer and ELBO."""
    started = time.perf_counter()
    model, guide, history = train_with_fit(module, rows, steps, seed)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "epochs": len(history), "neg_elbo": neg_elbo(module, model, guide, rows),
            **({"fitted": module.fitted(model, guide)} if hasattr(module, "fitted") else {})}


def train_with_fit(module, rows, steps: int, seed: int = 0):
    """(model, guide, history): a fresh program trained by ``fit`` as a user calls it (defaults otherwise)."""
    from pyro_vae import fit

    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    model, guide = module.make(rows)
    n = rows[0].shape[0]
    history = fit(model, guide, rows, objective=module.loss(), optimizer=module.optimizer(),
                  epochs=steps // batches_per_epoch(module, n), batch_size=module.BATCH_SIZE or n, seed=seed,
                  plate=module.PLATE, device="cpu", quiet=True,
                  callbacks=module.callbacks() if hasattr(module, "callbacks") else ())
    return model, guide, history


def time_ratio(module, rows, steps: int, rounds: int, seed: int = 0) -> dict:
    """Wall time of ``fit`` / Pyro's loop in ``rounds`` pairs, each pair side by side and the order swapped
    every round (benchmarks/_common.py: ``paired``); the median ratio and its interval."""
    from _common import Timer, interval_text, paired

    variants = {"pyro": lambda: module.reference(rows, steps, seed),
                "fit": lambda: train_with_fit(module, rows, steps, seed)}
    timer = paired(variants, "pyro", rounds, Timer())
    return {"time_ratio": timer.ratio("fit", "pyro"), "time_rounds": rounds,
            "time_interval": interval_text(timer.interval("fit"))}


def mean_and_error(values: list[float]) -> tuple[float, float]:
    """(mean, its standard error); the error is 0 for a single value."""
    values = np.asarray(values, dtype=float)
    error = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return float(values.mean()), error


def close(a: float, b: float, tolerance: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tolerance


def tails_agree(cli_epochs: list[float], pyro_steps: list[float], steps_per_epoch: int, tolerance: float) -> tuple:
    """(CLI's mean, Pyro's mean, whether they agree): the training loss per example over the last 10% of the
    epochs (at least 10, or all there are), from the CLI's metrics and from Pyro's loop over the same steps.

    Both are means of one-draw losses, so the tolerance grows by three standard errors of their difference."""
    k = min(len(cli_epochs), max(10, len(cli_epochs) // 10))
    pyro_epochs = [float(np.mean(pyro_steps[i:i + steps_per_epoch]))
                   for i in range(0, len(pyro_steps), steps_per_epoch)]
    (ours, ours_error), (theirs, theirs_error) = mean_and_error(cli_epochs[-k:]), mean_and_error(pyro_epochs[-k:])
    return ours, theirs, close(ours, theirs, tolerance + 3 * math.hypot(ours_error, theirs_error))


def answer_ok(module, rows, fitted: dict | None) -> bool | None:
    """The fitted quantity against the exact answer on ``rows``; None where the program has none."""
    if not hasattr(module, "answer") or fitted is None:
        return None
    exact = module.answer(rows)
    return all(abs(fitted[k] - exact[k]) <= module.ANSWER_TOLERANCE[k] for k in exact)


# ---- the command line ---------------------------------------------------------------------------------

def write_data(rows: tuple[torch.Tensor, ...], folder: Path) -> Path:
    """One array: a .npy; several: a .npz with them in order (x, y, ...). Counts are saved as integers."""
    arrays = [t.numpy().astype(np.int64) if bool((t == t.round()).all() and t.max() > 1) else t.numpy()
              for t in rows]
    if len(arrays) == 1:
        path = folder / "rows.npy"
        np.save(path, arrays[0])
    else:
        path = folder / "rows.npz"
        np.savez(path, **dict(zip(ARRAYS, arrays)))
    return path


@dataclass
class Done:
    """What a command did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def cli(*args: str) -> Done:
    """``pyro-vae ARGS``, through ``pyro_vae.cli.main`` in this process (the entry point the command runs,
    without the second or two of starting Python and torch for each of the ~40 commands)."""
    from pyro_vae import cli as command

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = command.main(list(args))
        except SystemExit as exit_:  # argparse: a flag it does not know
            code = exit_.code
        except Exception:  # noqa: BLE001 (a traceback is a failure the table shows in one line)
            traceback.print_exc()
            code = 1
    return Done(code, out.getvalue(), err.getvalue())


def train_command(case: Case, data: Path, out: Path, epochs_: int, seed: int = 0, resume: bool = False) -> list[str]:
    module, rows = case.module, case.rows()
    arrays = ["--arrays", ",".join(ARRAYS[:len(rows)])] if data.suffix == ".npz" else []
    return ["train", "--program", case.program, "--dataset", str(data), "--test-fraction", "0",
            "--epochs", str(epochs_), "--batch-size", str(module.BATCH_SIZE or rows[0].shape[0]), "--seed", str(seed),
            "--plate", module.PLATE, "--out", str(out), "--quiet", "--no-figures", *module.CLI, *arrays,
            *(["--resume"] if resume else [])]


def error_line(done: Done, folder: Path) -> str:
    """The last line a failed command printed, with the temporary folder's path left out."""
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1].replace(f"{folder}{os.sep}", "") if lines else f"exit {done.returncode}"


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def cli_checks(case: Case, reference: dict, scale: float = 1.0, seed: int = 0, folder: Path | None = None) -> dict:
    """train, evaluate, load and resume from the command line on the program's rows, all of them in order
    (``--test-fraction 0``), each against ``reference``: Pyro's loop on those rows, steps and seed."""
    from pyro_vae import runs

    module, rows = case.module, case.rows()
    own = tempfile.TemporaryDirectory() if folder is None else None
    folder = Path(own.name) if own else folder
    try:
        path = write_data(rows, folder)
        n = rows[0].shape[0]
        epochs_ = epochs(module, n, scale)
        out = folder / "run"
        done = cli(*train_command(case, path, out, epochs_, seed))
        if done.returncode != 0:
            return {"cli": False, "cli_error": error_line(done, folder)}
        history = metrics(out)
        ours, theirs, agree = tails_agree([m["train_loss"] for m in history], reference["losses"],
                                          batches_per_epoch(module, n), module.TOLERANCE)
        result: dict = {"cli_last_losses": ours, "pyro_last_losses": theirs, "cli": agree}

        try:
            run = runs.load(out)
            result["load_neg_elbo"] = neg_elbo(module, run.model, run.guide, rows)
            result["load"] = close(result["load_neg_elbo"], reference["neg_elbo"], module.TOLERANCE)
        except Exception as error:  # noqa: BLE001 (the table says what went wrong)
            run = None
            result.update(load=False, load_error=f"{type(error).__name__}: {error}".replace(f"{folder}{os.sep}", ""))

        done = cli("evaluate", str(out))
        if done.returncode != 0:
            result.update(evaluate=False, evaluate_error=error_line(done, folder))
        else:
            report = json.loads(done.stdout)
            result["evaluate_report"] = {k: v for k, v in report.items() if isinstance(v, (int, float))}
            result["evaluate"] = _evaluate_agrees(module, run, report)

        half = folder / "half"
        first = cli(*train_command(case, path, half, max(1, epochs_ // 2), seed))
        second = cli(*train_command(case, path, half, epochs_, seed, resume=True)) if first.returncode == 0 else first
        if second.returncode != 0:
            result.update(resume=False, resume_error=error_line(second, folder))
        else:
            straight, resumed = [m["train_loss"] for m in history], [m["train_loss"] for m in metrics(half)]
            result["resume"] = len(straight) == len(resumed) and np.allclose(straight, resumed, rtol=1e-5, atol=1e-6)
            if not result["resume"]:
                differ = [i for i, (a, b) in enumerate(zip(straight, resumed), 1) if not np.isclose(a, b, 1e-5, 1e-6)]
                result["resume_error"] = (
                    f"{len(resumed)} epochs after --resume, {len(straight)} straight" if not differ else
                    f"the training loss differs from the straight run's from epoch {differ[0]} on "
                    f"(resumed at {max(1, epochs_ // 2)})")
        return result
    finally:
        if own:
            own.cleanup()


def _evaluate_agrees(module, run, report: dict) -> bool:
    """The ELBO per example that ``pyro-vae evaluate`` reports is −(the loaded run's own −ELBO estimate on the
    rows it says it measured: its test rows, or its training rows where it reports those). ``evaluate``
    draws once from the guide, so the tolerance grows by three standard deviations of one draw."""
    key = "test_elbo" if "test_elbo" in report else "train_elbo"
    if run is None or not isinstance(report.get(key), (int, float)):
        return False
    dataset = run.dataset()
    rows = dataset.test_rows if key == "test_elbo" else dataset.train_rows
    draws = neg_elbo_draws(module, run.model, run.guide, rows)
    return close(-report[key], float(draws.mean()), module.TOLERANCE + 3 * float(draws.std()))


# ---- the table ------------------------------------------------------------------------------------------

def measure(case: Case, scale: float = 1.0, seed: int = 0, seeds: bool = False, with_cli: bool = True,
            rounds: int = 1) -> dict:
    """Every column of ``case``'s row."""
    module = case.module
    rows = case.rows()
    n = rows[0].shape[0]
    steps = epochs(module, n, scale) * batches_per_epoch(module, n)
    for warm_up in (pyro_loop, fit_program):  # the first run in a process pays for imports and caches
        warm_up(module, rows, min(steps, batches_per_epoch(module, n)), seed)
    theirs = pyro_loop(module, rows, steps, seed)
    ours = fit_program(module, rows, steps, seed)
    result = {"steps": steps, "rows": n, "tolerance": module.TOLERANCE,
              "fit_neg_elbo": ours["neg_elbo"], "pyro_neg_elbo": theirs["neg_elbo"],
              "difference": ours["neg_elbo"] - theirs["neg_elbo"],
              "fit_seconds": ours["seconds"], "pyro_seconds": theirs["seconds"],
              "time_ratio": ours["seconds"] / theirs["seconds"]}
    result["loss"] = close(ours["neg_elbo"], theirs["neg_elbo"], module.TOLERANCE)
    exact = answer_ok(module, rows, ours.get("fitted"))
    if exact is not None:
        result.update(answer=module.answer(rows), fit_answer=ours["fitted"], pyro_answer=theirs["fitted"],
                      answer_ok=exact, pyro_answer_ok=answer_ok(module, rows, theirs["fitted"]))
    result["fit"] = result["loss"] and exact is not False
    if rounds > 1 and getattr(module, "TIMED", False):
        result.update(time_ratio(module, rows, steps, rounds, seed))
    if seeds:
        result["pyro_seed_spread"] = abs(pyro_loop(module, rows, steps, seed + 1)["neg_elbo"] - theirs["neg_elbo"])
    if with_cli:
        result.update(cli_checks(case, theirs, scale, seed))
    return result


def mark(value) -> str:
    return "✓" if value else "✗" if value is not None else "–"


def table(results: dict) -> str:
    from _common import table as markdown

    rows = []
    for case in CASES:
        r = results.get(case.row)
        if r is None:
            continue
        rows.append([case.row, r["steps"], mark(r.get("fit")), mark(r.get("cli")), mark(r.get("evaluate")),
                     mark(r.get("load")), mark(r.get("resume")),
                     f"{r['fit_neg_elbo']:.3f} / {r['pyro_neg_elbo']:.3f} (±{r['tolerance']}"
                     + (f"; seeds {r['pyro_seed_spread']:.3f})" if "pyro_seed_spread" in r else ")"),
                     f"{r['time_ratio']:.2f}×" + (f" ({r['time_interval']})" if r.get("time_interval") else "")])
    return markdown(["program", "steps", "fit", "CLI", "evaluate", "load", "resume",
                     "−ELBO/example: fit / Pyro (tolerance; Pyro's change with the seed)", "time vs Pyro"], rows)


def notes(results: dict) -> str:
    """One line per ✗ of the table: the program, the check, and the one line the check failed with."""
    lines = []
    for case in CASES:
        r = results.get(case.row, {})
        for check in ("fit", "cli", "evaluate", "load", "resume"):
            if check in r and not r[check]:
                why = r.get(f"{check}_error") or r.get("cli_error") or "ran, but outside the tolerance"
                lines.append(f"- {case.row}, {check}: {why.replace('|', '/')}")
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import log, set_threads

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", default=",".join(CASE), help=f"comma-separated, of: {', '.join(CASE)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every program's steps by this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", action="store_true", help="also run Pyro's loop with seed + 1 (the spread)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="time the TIMED programs against Pyro's loop in this many more pairs (an even number)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a busy shared machine)")
    parser.add_argument("--json", help=f"write the numbers here (the docs' are in {JSON.relative_to(ROOT)})")
    args = parser.parse_args()
    set_threads(args.threads)
    saved = json.loads(Path(args.json).read_text())["results"] if args.json and Path(args.json).exists() else {}
    command = " ".join(["python", Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    results = {}
    for key in args.programs.split(","):
        case = CASE[key]
        log(f"{case.row} ...")
        results[case.row] = {**measure(case, args.scale, args.seed, args.seeds, rounds=args.rounds), "command": command}
        log(json.dumps(results[case.row], default=str))
        if args.json:  # after each program; rows measured now replace their saved ones, the others stay
            saved.update(results)
            ordered = {c.row: saved[c.row] for c in CASES if c.row in saved}
            Path(args.json).write_text(json.dumps({"results": ordered}, indent=1, default=float) + "\n")
    print(table(results))
    print(notes(results))


if __name__ == "__main__":
    main()
