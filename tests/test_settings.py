"""One settings system: every command's flags, checks, help and config.json come from the dataclasses of
``pyro_vae.settings`` (training, the VAE, the objective) and of the companions (``TopicSettings``,
``IRTSettings``); a resumed run's settings are merged by ``Settings.resolve`` alone."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

import pytest

from pyro_vae import cli, settings
from pyro_vae.errors import UserError
from pyro_vae.irt.settings import IRTSettings
from pyro_vae.topics.settings import LEARNING_RATES, TopicSettings

COMMANDS = {"train": (settings.VAESettings, settings.ObjectiveSettings, settings.TrainingSettings), "topics": (TopicSettings,),
            "irt": (IRTSettings,)}


def subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_settings_field_is_one_flag_whose_help_shows_its_default(name):
    actions = {a.dest: a for a in subparser(name)._actions}
    for cls in COMMANDS[name]:
        for f in fields(cls):
            action = actions[f.name]  # parsed into the field's own name, whatever the flag
            assert action.default is None  # a flag not given: on --resume the run's saved value stands
            shown = f.metadata["shown"] or (",".join(map(str, f.default)) if isinstance(f.default, tuple)
                                            else f.default)
            assert action.help.endswith(f"(default: {shown})"), (f.name, action.help)
    # the flags every run-writing command shares, defined once (commands.options)
    for dest in ("device", "out", "resume", "overwrite", "quiet", "no_figures"):
        assert dest in actions, (name, dest)
    assert sum("--device" in a.option_strings for a in subparser(name)._actions) == 1


def test_a_flag_may_differ_from_its_field_and_config_key():
    """IRT's config.json says "model": "irt" (the run's kind), so the item response function is ``kind``,
    given as --model; the answers' path is ``source``, given as --data."""
    args = cli.build_parser().parse_args(["irt", "--model", "1pl", "--data", "answers.csv"])
    assert (args.kind, args.source) == ("1pl", "answers.csv")
    with pytest.raises(UserError, match=r"^--model 'rasch' is not one of: lecture, 1pl, 2pl$"):
        IRTSettings(kind="rasch")


@pytest.mark.parametrize("argv,message", [
    (["topics", "--dropout", "1"], "argument --dropout: must be in [0, 1), got 1"),
    (["topics", "--min-df", "two"], "argument --min-df: expected a number of documents or a fraction, got 'two'"),
    (["irt", "--batch-size", "0"], "argument --batch-size: must be positive, got 0"),
    (["irt", "--lr", "nan"], "argument --lr: must be a positive finite number, got nan"),
    (["evaluate", "RUN", "--batch-size", "-1"], "argument --batch-size: must be positive, got -1"),
])
def test_companion_flags_are_checked_by_the_one_argument_type(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and message in err, err


def test_resolve_keeps_fixed_settings_and_lets_free_ones_change():
    saved = {"model": "lda", "topics": 7, "alpha": 1 / 7, "epochs": 2, "lr": 0.05, "vocab_size": 90}
    resumed = TopicSettings.resolve({"epochs": 5, "lr": 0.01, "topics": None}, saved, fixed=True)
    assert (resumed.topics, resumed.alpha, resumed.epochs, resumed.lr, resumed.model) == (7, 1 / 7, 5, 0.01, "lda")
    with pytest.raises(UserError, match=r"^--resume: the run was trained with topics=7, not 8; drop the flag"):
        TopicSettings.resolve({"topics": 8}, saved, fixed=True)
    # a new run: given values over the defaults; α and lr follow the model until given
    fresh = TopicSettings.resolve({"model": "lda", "topics": 4}, {}, fixed=True).complete()
    assert (fresh.alpha, fresh.lr, fresh.epochs) == (0.25, LEARNING_RATES["lda"], TopicSettings.epochs)
    assert TopicSettings(alpha=2.0, lr=0.5).complete().replace(model="lda").complete().alpha == 2.0


def test_an_irt_run_resumes_with_more_epochs_and_from_a_config_older_than_source(tmp_path, capsys):
    out = tmp_path / "irt"
    base = ["irt", "--device", "cpu", "--quiet", "--no-figures", "--out", str(out)]
    assert cli.main([*base, "--epochs", "2", "--guide", "meanfield"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert {k: config[k] for k in ("model", "kind", "guide", "data", "source", "epochs", "batch_size")} == \
        {"model": "irt", "kind": "2pl", "guide": "meanfield", "data": "lsat", "source": "lsat", "epochs": 2,
         "batch_size": 1000}
    del config["source"]  # runs made before config.json kept where the answers came from
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert cli.main([*base, "--resume", "--epochs", "3"]) == 0  # the guide is the run's own: not given again
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    config = json.loads((out / "config.json").read_text())
    assert (config["epochs"], config["guide"], config["source"]) == (3, "meanfield", "lsat")


def test_a_companion_batch_larger_than_its_data_is_refused_by_fit(tmp_path, capsys):
    assert cli.main(["irt", "--batch-size", "1001", "--epochs", "1", "--device", "cpu", "--quiet",
                     "--out", str(tmp_path / "irt")]) == 2
    err = capsys.readouterr().err
    assert err == "pyro-vae: error: --batch-size 1001 is larger than the 1000 training examples: " \
                  "use --batch-size 1000 or less\n"
    assert not (tmp_path / "irt").exists()


def test_the_evaluation_batch_size_has_one_default():
    import inspect

    from pyro_vae import evaluate, runs
    from pyro_vae.topics import metrics

    default = settings.TrainingSettings.eval_batch_size
    for function in (evaluate.elbo_parts, evaluate.reconstruction_mse, evaluate.kl_per_dimension,
                     metrics.document_elbo, metrics.evaluator, runs.ImageRun.evaluate):
        assert inspect.signature(function).parameters["batch_size"].default == default
    assert subparser("evaluate")._option_string_actions["--batch-size"].default == default


def test_a_companion_run_that_fails_after_training_is_kept_and_finished_by_resume(tmp_path, capsys, monkeypatch):
    """The one rule for a new run folder (``fit``'s): removed if the run fails before its first checkpoint,
    kept for --resume after it; the report a companion writes after training follows the same rule."""
    from pyro_vae.topics import report

    out = tmp_path / "run"
    argv = ["topics", "--topics", "3", "--epochs", "1", "--hidden", "8", "--device", "cpu", "--quiet", "--no-figures",
            "--out", str(out)]
    write_outputs = report.write_outputs

    def full_disk(*args, **kwargs):
        raise UserError("no space left on the device")

    monkeypatch.setattr(report, "write_outputs", full_disk)
    assert cli.main(argv) == 2 and "no space left" in capsys.readouterr().err
    assert (out / "checkpoint.pt").is_file() and not (out / "topics.json").exists()
    monkeypatch.setattr(report, "write_outputs", write_outputs)
    assert cli.main([*argv, "--resume"]) == 0
    assert (out / "topics.json").is_file()
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1]
