"""`pyro-vae` end to end in temp folders: train, then evaluate, sample and plot; help; one-line errors."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pyro_vae
from pyro_vae import cli, runs
from pyro_vae import data as datasets

from conftest import TINY_TRAIN

FIGURES = {"reconstructions.png", "samples.png", "elbo.png", "latent.png", "manifold.png"}


def fails_with_one_line(capsys, argv, match: str) -> str:
    """The CLI exits 2 with exactly one line on stderr, ``pyro-vae: error: ...``, and no traceback."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pyro-vae: error: ") and "Traceback" not in err
    assert match in err, err
    return err


def assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 50


def test_train_writes_config_metrics_checkpoint_and_figures(tiny_run):
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["dataset"] == "digits" and config["latent_dim"] == 2 and config["hidden"] == [16]
    assert config["likelihood"] == "gaussian" and config["c"] == 0.1 and config["shape"] == [1, 8, 8]
    metrics = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m in metrics:
        for split in ("train", "test"):
            assert m[f"{split}_elbo"] == pytest.approx(m[f"{split}_reconstruction"] - m[f"{split}_kl"])
        assert m["seconds"] > 0
    state = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and {"model", "guide", "optimizer", "rng"} <= set(state)
    assert {p.name for p in (tiny_run / "figures").iterdir()} == FIGURES  # and no temp files
    for name in FIGURES:
        assert_png(tiny_run / "figures" / name)
    assert not [p for p in tiny_run.rglob(".*")], "a temp file was left behind"


def test_evaluate_prints_the_test_elbo_and_reconstruction_error_as_json(tiny_run, capsys):
    assert cli.main(["evaluate", str(tiny_run), "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test_examples"] == 359
    assert report["test_elbo"] == pytest.approx(report["test_reconstruction"] - report["test_kl"])
    # the trainer measured the same test ELBO after its last epoch, with another single draw of z
    last = json.loads((tiny_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert report["test_elbo"] == pytest.approx(last["test_elbo"], abs=1.0)
    # ‖x − f(μ(x))‖² per example, computed here from the networks directly
    run, test = runs.load(tiny_run), datasets.load("digits").test
    with torch.no_grad():
        mse = (run.model.decoder(run.guide.encoder(test)[0]) - test).pow(2).sum(1).mean()
    assert report["test_reconstruction_mse"] == pytest.approx(float(mse), rel=1e-5)
    assert cli.main(["evaluate", str(tiny_run), "--device", "cpu"]) == 0  # the same seed, the same numbers
    assert json.loads(capsys.readouterr().out) == report


def test_sample_writes_an_npy_array_and_a_png_grid(tiny_run, tmp_path, capsys):
    for seed in ("0", "0", "1"):
        assert cli.main(["sample", str(tiny_run), "-n", "10", "--seed", seed, "--out", str(tmp_path / f"s{seed}.npy")]) == 0
        first = np.load(tmp_path / "s0.npy")
        if seed == "0":
            assert first.shape == (10, 64) and np.isfinite(first).all()
            assert len({row.tobytes() for row in first}) == 10  # ten different draws z ~ p(z)
    assert not np.array_equal(np.load(tmp_path / "s1.npy"), first)
    assert cli.main(["sample", str(tiny_run), "-n", "16", "--out", str(tmp_path / "grid.png")]) == 0
    assert_png(tmp_path / "grid.png")
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1]) == {"out": str(tmp_path / "grid.png"), "num_samples": 16}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "s0.npy", "s1.npy"]  # no temp files


def test_plot_redraws_the_figures_from_the_checkpoint(tiny_run, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "figures")
    assert cli.main(["plot", str(run)]) == 0
    listed = json.loads(capsys.readouterr().out)["figures"]
    assert {Path(p).name for p in listed} == FIGURES
    for name in FIGURES:
        assert_png(run / "figures" / name)


def train_args(out, epochs, *extra):
    args = list(TINY_TRAIN)
    args[args.index("--epochs") + 1] = str(epochs)
    return ["train", *args, "--out", str(out), "--no-figures", *extra]


def test_resume_continues_a_run_and_keeps_its_model_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(train_args(out, 1)) == 0
    fails_with_one_line(capsys, train_args(out, 2), "already holds a run")
    fails_with_one_line(capsys, train_args(out, 2, "--resume", "--latent-dim", "3"), "latent_dim=2")
    assert cli.main(train_args(out, 2, "--resume")) == 0
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 2


def test_help_of_every_subcommand(capsys):
    def help_text(*argv) -> str:
        with pytest.raises(SystemExit) as info:
            cli.main([*argv, "--help"])
        assert info.value.code == 0
        return " ".join(capsys.readouterr().out.split())  # argparse wraps lines

    assert all(name in help_text() for name in cli.COMMANDS)
    for name in cli.COMMANDS:
        text = help_text(name)
        assert text.startswith(f"usage: pyro-vae {name}") and "-h, --help" in text
        assert name not in ("evaluate", "sample", "plot") or "RUN" in text
    text = help_text("train")
    for words in ("--latent-dim", "default: 2", "observation variance c", "KL", "--likelihood", "--resume",
                  "--hidden", "--epochs", "--batch-size", "--lr", "--seed", "--out", "mnist-5k"):
        assert words in text, words
    assert "ELBO" in help_text("evaluate") and "N(0, I)" in help_text("sample")


# --- bad input: one line, exit 2, no traceback, no half-made run folder -------------------------------

def test_missing_data_file_leaves_no_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    fails_with_one_line(capsys, ["train", "--dataset", str(tmp_path / "missing.npy"), "--out", str(out)],
                        "does not exist")
    assert not out.exists()


def test_bernoulli_on_values_outside_the_unit_range(tmp_path, capsys):
    np.save(tmp_path / "wide.npy", np.random.default_rng(0).uniform(0, 3, (40, 6)))
    out = tmp_path / "run"
    fails_with_one_line(capsys, ["train", "--dataset", str(tmp_path / "wide.npy"), "--likelihood", "bernoulli",
                                 "--out", str(out), "--quiet"], "needs values in [0, 1]")
    assert not out.exists()


def test_evaluate_sample_and_plot_need_a_run_folder(tmp_path, capsys, tiny_run):
    for command in (["evaluate", str(tmp_path)], ["plot", str(tmp_path)],
                    ["sample", str(tmp_path), "--out", str(tmp_path / "s.npy")]):
        fails_with_one_line(capsys, command, "not a run folder")
    fails_with_one_line(capsys, ["sample", str(tiny_run), "--out", str(tmp_path / "s.jpg")], ".png image grid or a .npy")
    fails_with_one_line(capsys, ["sample", str(tiny_run), "--out", str(tmp_path / "no" / "s.npy")], "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_are_one_line(capsys):
    for argv in (["train", "--epochs", "0"], ["train", "--c", "-1"], ["train", "--hidden", "a,b"], ["nope"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--help" in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without a GPU")
def test_asking_for_cuda_without_a_gpu(tmp_path, capsys):
    fails_with_one_line(capsys, ["train", "--dataset", "digits", "--device", "cuda", "--out", str(tmp_path / "r")],
                        "--device cpu")
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # a fresh process imports torch: several seconds on a loaded machine
def test_console_script_exits_2_with_one_line(tmp_path):
    """The installed `pyro-vae` entry point, in a fresh process: exit status and stderr as a user sees them."""
    script = Path(sys.executable).with_name("pyro-vae")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pyro_vae.cli"]
    done = subprocess.run([*command, "evaluate", str(tmp_path / "nothing")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("pyro-vae: error: ") and done.stderr.count("\n") == 1, done.stderr


# --- the face of the command: quick help, --version, every default shown ------------------------------
NO_TORCH_HELP = """
import argparse, contextlib, io, sys
from pyro_vae.commands import {names}
parser = argparse.ArgumentParser(prog="pyro-vae")
sub = parser.add_subparsers()
for command in ({names},):
    command.add_parser(sub)
with contextlib.redirect_stdout(io.StringIO()):
    parser.print_help()
    for choice in sub.choices.values():
        choice.print_help()
print("torch" in sys.modules, "matplotlib" in sys.modules)
"""


def test_help_of_the_subcommands_imports_no_torch():
    """Building the parser and printing every help imports neither torch nor matplotlib (a fresh process)."""
    code = NO_TORCH_HELP.format(names=", ".join(cli.COMMANDS))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_pyro_vae_help_imports_no_torch():
    code = "import sys\nfrom pyro_vae import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n" \
           "print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"pyro-vae {pyro_vae.__version__}"


def test_top_level_help_names_the_data_folder_and_has_no_restructuredtext(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "PYRO_VAE_DATA" in text and "~/.cache/pyro-vae" in text


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_default_is_shown_in_help(name):
    """An option with a default says so in its help; the ones whose default is computed say how."""
    parser = cli.build_parser()
    command = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    for action in command._actions:
        if action.option_strings and action.help not in (None, argparse.SUPPRESS) and action.nargs != 0:
            shown = "default" in action.help or action.required
            assert shown or action.option_strings in (["--is-samples"], ["--program"]), (name, action.help)


@pytest.mark.parametrize("name", ["topics", "train"])
def test_data_dir_help_shows_its_default(name):
    parser = cli.build_parser()
    command = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    (action,) = [a for a in command._actions if "--data-dir" in a.option_strings]
    assert "default" in action.help and (name == "topics" or "PYRO_VAE_DATA" in action.help)
