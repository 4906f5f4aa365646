"""The bad-input catalogue (docs/bad-input.md), one CLI test per row.

Every case must end with exit code 2, exactly one line on stderr and no traceback, and leave no
partial run folder (a folder that existed before is left byte for byte as it was). The message must
be the one the catalogue shows; ``…`` in the catalogue stands for any text (a list that grows, a
reason from a library). Print the table from the real messages with::

    .venv/bin/python tests/test_bad_input.py
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_vae import cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"
TRAIN = ["train", "--hidden", "4", "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--quiet",
         "--no-figures"]
CASES = {}  # row name → builder(dir, trained run) → (argv, path whose state must be unchanged or absent)


def case(name):
    def register(builder):
        CASES[name] = builder
        return builder
    return register


def small_npy(folder: Path, values=None, name="x.npy") -> str:
    values = np.random.default_rng(0).uniform(0, 1, (40, 6)).astype(np.float32) if values is None else values
    np.save(folder / name, values)
    return str(folder / name)


def copy_run(run: Path, folder: Path) -> Path:
    shutil.copytree(run, folder / "run")
    return folder / "run"


@case("unknown dataset name")
def _(d, run):
    return TRAIN + ["--dataset", "mnistt", "--out", f"{d}/run"], d / "run"


@case("unknown likelihood (any misspelt choice)")
def _(d, run):
    return TRAIN + ["--dataset", "digits", "--likelihood", "poisson", "--out", f"{d}/run"], d / "run"


@case("unknown model name in a run's config.json")
def _(d, run):
    run = copy_run(run, d)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "model": "vea"}))
    return ["evaluate", str(run), "--device", "cpu"], run


@case("evaluate a run that fit() wrote without config=")
def _(d, run):
    run = copy_run(run, d)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "model": None}))
    return ["evaluate", str(run), "--device", "cpu"], run


@case("missing data path")
def _(d, run):
    return TRAIN + ["--dataset", f"{d}/missing.npy", "--out", f"{d}/run"], d / "run"


@case("array of the wrong rank (1-D)")
def _(d, run):
    return TRAIN + ["--dataset", small_npy(d, np.ones(40)), "--out", f"{d}/run"], d / "run"


@case("NaN in the data")
def _(d, run):
    x = np.random.default_rng(0).uniform(0, 1, (40, 6))
    x[3, 2] = np.nan
    return TRAIN + ["--dataset", small_npy(d, x), "--out", f"{d}/run"], d / "run"


@case("values outside [0, 1] with --likelihood bernoulli")
def _(d, run):
    x = np.random.default_rng(0).uniform(-0.5, 1.5, (40, 6))
    return TRAIN + ["--dataset", small_npy(d, x), "--likelihood", "bernoulli", "--out", f"{d}/run"], d / "run"


@case("empty dataset")
def _(d, run):
    return TRAIN + ["--dataset", small_npy(d, np.zeros((0, 6))), "--out", f"{d}/run"], d / "run"


for flag, value in [("--c", "0"), ("--lr", "-0.001"), ("--epochs", "0"), ("--batch-size", "0")]:
    case(f"{flag} {value}")(lambda d, run, flag=flag, value=value:
                            (TRAIN + ["--dataset", "digits", flag, value, "--out", f"{d}/run"], d / "run"))


@case("batch larger than the data")
def _(d, run):
    return TRAIN + ["--dataset", small_npy(d), "--batch-size", "100", "--out", f"{d}/run"], d / "run"


def irt_run(folder: Path) -> Path:
    """A 2-epoch IRT run on lsat: a run folder of a kind without a decoder (its printed table discarded)."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["irt", "--epochs", "2", "--device", "cpu", "--quiet", "--no-figures", "--out",
                         str(folder / "irt")]) == 0
    return folder / "irt"


@case("sample on a run without a decoder (IRT, topics)")
def _(d, run):
    return ["sample", str(irt_run(d)), "--out", f"{d}/s.png"], d / "s.png"


@case("--resume of an irt or topics run with a setting that differs from the run's")
def _(d, run):
    return ["irt", "--resume", "--out", str(irt_run(d)), "--model", "1pl", "--quiet"], d / "irt"


@case("--resume of an irt or topics run on a folder that is not a run")
def _(d, run):
    (d / "notes").mkdir()
    return ["topics", "--resume", "--out", f"{d}/notes", "--quiet"], d / "notes"


@case("--resume on a folder that is not a run")
def _(d, run):
    (d / "notes").mkdir()
    (d / "notes" / "todo.txt").write_text("not a run\n")
    return ["train", "--resume", "--out", f"{d}/notes", "--quiet"], d / "notes"


@case("--resume on a run with a corrupt or truncated checkpoint")
def _(d, run):
    run = copy_run(run, d)
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    return ["train", "--resume", "--out", str(run), "--device", "cpu", "--quiet", "--no-figures"], run


@case("evaluate a run whose checkpoint is not a checkpoint")
def _(d, run):
    run = copy_run(run, d)
    (run / "checkpoint.pt").write_text("hello")
    return ["evaluate", str(run), "--device", "cpu"], run


@case("checkpoint from a different model configuration")
def _(d, run):
    run = copy_run(run, d)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "hidden": [5]}))
    return ["train", "--resume", "--out", str(run), "--device", "cpu", "--quiet", "--no-figures"], run


@case("--resume with a model flag that differs from the run's")
def _(d, run):
    run = copy_run(run, d)
    return ["train", "--resume", "--out", str(run), "--latent-dim", "3", "--quiet"], run


@case("--resume on a run with a damaged config.json")
def _(d, run):
    run = copy_run(run, d)
    (run / "config.json").write_text('{"model": "vae", "hidden": [4')
    return ["train", "--resume", "--out", str(run), "--quiet"], run


@case("--out already holds a run (no --resume or --overwrite)")
def _(d, run):
    run = copy_run(run, d)
    return TRAIN + ["--dataset", small_npy(d), "--out", str(run)], run


@case("--out is a file")
def _(d, run):
    (d / "run").write_text("a file\n")
    return TRAIN + ["--dataset", small_npy(d), "--out", f"{d}/run"], d / "run"


@case("--checkpoint-every in unknown units")
def _(d, run):
    return TRAIN + ["--dataset", "digits", "--checkpoint-every", "10weeks", "--out", f"{d}/run"], d / "run"


@case("--device cuda on a machine without a GPU")
def _(d, run):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    return TRAIN + ["--dataset", "digits", "--device", "cuda", "--out", f"{d}/run"], d / "run"


@case("unknown --device")
def _(d, run):
    return TRAIN + ["--dataset", "digits", "--device", "gpu0", "--out", f"{d}/run"], d / "run"


@case("training diverges (loss NaN/inf), e.g. --lr 1e30")
def _(d, run):
    argv = TRAIN + ["--dataset", small_npy(d), "--lr", "1e30", "--epochs", "3", "--out", f"{d}/run"]
    return argv, d / "run"


@case("IRT answer matrix with a value other than 0, 1 or empty")
def _(d, run):
    (d / "answers.csv").write_text("q1,q2,q3\n1,0,1\n0,2,1\n1,,0\n")
    return ["irt", "--data", f"{d}/answers.csv", "--epochs", "1", "--device", "cpu", "--quiet", "--no-figures",
            "--out", f"{d}/run"], d / "run"


PROGRAM_HEADER = "import pyro\nimport pyro.distributions as dist\nimport torch\n\n"


def program_file(d: Path, body: str) -> str:
    (d / "prog.py").write_text(PROGRAM_HEADER + body)
    return str(d / "prog.py")


def train_program(d, spec):
    return TRAIN + ["--dataset", small_npy(d), "--program", spec, "--out", f"{d}/run"], d / "run"


@case("--program file that does not exist")
def _(d, run):
    return train_program(d, f"{d}/missing.py:build")


@case("--program without :NAME")
def _(d, run):
    return train_program(d, program_file(d, "pair = None\n"))


@case("--program NAME the file does not define")
def _(d, run):
    return train_program(d, program_file(d, "def model(x):\n    pass\n") + ":build")


@case("--program NAME that is no model/guide pair")
def _(d, run):
    return train_program(d, program_file(d, "build = 42\n") + ":build")


def train_pair(d, model: str, guide: str):
    """--program DIR/prog.py:pair for a model and a guide given as the bodies of ``def model(x)`` / ``guide(x)``."""
    body = f"def model(x):\n{model}\n\ndef guide(x):\n{guide}\n\npair = (model, guide)\n"
    return train_program(d, program_file(d, body) + ":pair")


@case("--program with no parameters")
def _(d, run):
    return train_pair(d, "    with pyro.plate('data', x.shape[0]):\n"
                         "        pyro.sample('x', dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1), obs=x)",
                      "    pass")


@case("--program guide lacking a latent site of the model")
def _(d, run):
    return train_pair(d, "    mu = pyro.sample('mu', dist.Normal(x.new_zeros(x.shape[1]), 1.0).to_event(1))\n"
                         "    with pyro.plate('data', x.shape[0]):\n"
                         "        pyro.sample('x', dist.Normal(mu, 1.0).to_event(1), obs=x)",
                      "    pyro.param('unused', torch.zeros(1))")


@case("--program with per-example sites outside the data plate")
def _(d, run):
    return train_pair(d, "    loc = pyro.param('loc', torch.zeros(x.shape[1]))\n"
                         "    pyro.sample('x', dist.Normal(loc.expand(x.shape), 1.0).to_event(2), obs=x)",
                      "    pass")


@case("--program with a site per observation in a loop, under minibatches")
def _(d, run):
    return train_pair(d, "    mu = pyro.sample('mu', dist.Normal(0.0, 1.0))\n"
                         "    for i in range(len(x)):\n"
                         "        pyro.sample(f'obs_{i}', dist.Normal(mu, 1.0).expand([x.shape[1]]).to_event(1), obs=x[i])",
                      "    pyro.sample('mu', dist.Normal(pyro.param('m', torch.tensor(0.0)), 1.0))")


@case("--program with a pyro.param per example, under minibatches")
def _(d, run):
    return train_pair(d, "    with pyro.plate('data', x.shape[0]):\n"
                         "        z = pyro.sample('z', dist.Normal(x.new_zeros(x.shape[0]), 1.0))\n"
                         "        pyro.sample('x', dist.Normal(z[:, None], 1.0).to_event(1), obs=x)",
                      "    loc = pyro.param('loc', torch.zeros(x.shape[0]))\n"
                      "    with pyro.plate('data', x.shape[0]):\n"
                      "        pyro.sample('z', dist.Normal(loc, 1.0))")


@case("--program with enumerated sites under an objective that can't sum them out")
def _(d, run):
    argv, path = train_pair(d, "    p = pyro.param('p', torch.tensor(0.5), constraint=dist.constraints.unit_interval)\n"
                               "    with pyro.plate('data', x.shape[0]):\n"
                               "        c = pyro.sample('c', dist.Bernoulli(p), infer={'enumerate': 'parallel'})\n"
                               "        pyro.sample('x', dist.Normal(c[..., None], 1.0).to_event(1), obs=x)",
                            "    pass")
    return argv + ["--elbo", "trace"], path


@case("--arrays without --program")
def _(d, run):
    return TRAIN + ["--dataset", "digits", "--arrays", "x,y", "--out", f"{d}/run"], d / "run"


@case("--arrays naming an array the .npz lacks")
def _(d, run):
    np.savez(d / "data.npz", x=np.zeros((40, 6), dtype=np.float32))
    argv, path = train_pair(d, "    pass", "    pass")
    return [a if a != argv[argv.index("--dataset") + 1] else str(d / "data.npz") for a in argv] + \
        ["--arrays", "x,y"], path


@case("--program whose model fails on the data")
def _(d, run):
    return train_pair(d, "    with pyro.plate('data', x.shape[0]):\n"
                         "        pyro.sample('x', dist.Normal(x.new_zeros(3), 1.0).to_event(1), obs=x)",
                      "    pyro.param('unused', torch.zeros(1))")


def snapshot(path: Path):
    """Everything under ``path`` (names and bytes), or None when it does not exist."""
    if not path.exists():
        return None
    if path.is_file():
        return path.read_bytes()
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None for p in sorted(path.rglob("*"))}


def run_case(name: str, folder: Path, trained: Path, capsys):
    argv, watched = CASES[name](folder, trained)
    before = snapshot(watched)
    try:
        code = cli.main(argv)
    except SystemExit as error:  # argparse's usage errors
        code = error.code
    captured = capsys.readouterr()
    return code, captured.err, captured.out, before, snapshot(watched)


def documented() -> dict[str, str]:
    """Row name → message, from the catalogue's table."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) == 3 and cells[2].startswith("`pyro-vae"):  # 4 columns: a row tested elsewhere
            rows[cells[0].replace("\\|", "|")] = cells[2].strip("`")
    return rows


def matches(doc: str, message: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in doc.split("…"))
    return re.fullmatch(pattern, message) is not None


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny real run (1 epoch on a 40 × 6 array) that the resume and checkpoint cases copy and damage."""
    folder = tmp_path_factory.mktemp("trained")
    assert cli.main(TRAIN + ["--dataset", small_npy(folder), "--out", str(folder / "run")]) == 0
    return folder / "run"


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_no_run_folder(name, tmp_path, trained, capsys):
    code, err, out, before, after = run_case(name, tmp_path, trained, capsys)
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    assert re.match(r"pyro-vae( \w+)?: error: ", err), err
    assert out == ""
    assert after == before, "the run folder was created or changed"
    message = err.strip().replace(str(tmp_path), "DIR")
    doc = documented().get(name)
    assert doc is not None, f"add a row for {name!r} to docs/bad-input.md: | {name} | … | `{message}` |"
    assert matches(doc, message), f"docs/bad-input.md says\n  {doc}\nbut the message is\n  {message}"


def test_every_catalogue_row_has_a_test():
    assert set(documented()) == set(CASES)


@pytest.mark.slow  # a fresh process imports torch: several seconds on a loaded machine
def test_console_script_on_a_truncated_checkpoint(tmp_path, trained):
    """The installed entry point in a fresh process, failing deep inside the trainer (resume → load)."""
    run = copy_run(trained, tmp_path)
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[:100])
    script = Path(sys.executable).with_name("pyro-vae")
    done = subprocess.run([str(script), "train", "--resume", "--out", str(run), "--device", "cpu", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "is corrupt or truncated" in done.stderr, done.stderr


if __name__ == "__main__":  # prints the catalogue's rows from the real messages
    class Capture:
        def readouterr(self):
            out, err = sys.stdout.getvalue(), sys.stderr.getvalue()
            sys.stdout.seek(0), sys.stdout.truncate(), sys.stderr.seek(0), sys.stderr.truncate()
            return type("Captured", (), {"out": out, "err": err})

    torch.set_num_threads(1)
    real_out = sys.stdout
    with tempfile.TemporaryDirectory() as home:
        base = Path(home) / "trained"
        base.mkdir()
        cli.main(TRAIN + ["--dataset", small_npy(base), "--out", str(base / "run")])
        for name in CASES:
            folder = Path(home) / str(len(name)) / re.sub(r"\W+", "-", name)
            folder.mkdir(parents=True)
            sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
            try:
                _, err, _, _, _ = run_case(name, folder, base / "run", Capture())
            except BaseException as error:  # a pytest.skip
                err = f"(skipped: {error})"
            sys.stdout, sys.stderr = real_out, sys.__stderr__
            print(f"| {name} | `{err.strip().replace(str(folder), 'DIR')}` |")
