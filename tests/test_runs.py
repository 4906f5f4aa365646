"""Every run folder the project writes reopens with ``pyro_vae.load``; evaluate, sample and plot work on every
kind where they mean something and say so in one line where they don't; irt and topics runs resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import pyro_vae
from pyro_vae import cli
from pyro_vae.irt import exams
from pyro_vae.irt.run import IRTRun
from pyro_vae.runs import ImageRun
from pyro_vae.topics.run import TopicRun

WORDS = {"pets": "cats dogs purr bark leash kitten puppy", "sky": "birds clouds wings flying nest feathers sky",
         "food": "bread cheese butter soup pasta dinner kitchen"}
TOPICS = ["topics", "--min-df", "1", "--max-df", "1.0", "--topics", "3", "--hidden", "8", "--batch-size", "8",
          "--device", "cpu", "--quiet", "--no-figures"]
IRT = ["irt", "--data", "lsat", "--device", "cpu", "--quiet", "--no-figures"]


def one_line_error(capsys, argv, match: str) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pyro-vae: error: ") and "Traceback" not in err, err
    assert match in err, err
    return err


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """40 short documents, each from one of three word lists: three topics to find."""
    rng = np.random.default_rng(0)
    lists = [words.split() for words in WORDS.values()]
    documents = [" ".join(rng.choice(lists[d % 3], 8)) for d in range(40)]
    path = tmp_path_factory.mktemp("corpus") / "docs.txt"
    path.write_text("\n".join(documents) + "\n")
    return path


@pytest.fixture(scope="module")
def topic_run(tmp_path_factory, corpus_file):
    out = tmp_path_factory.mktemp("runs") / "topics"
    assert cli.main([*TOPICS, "--corpus", str(corpus_file), "--epochs", "3", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def irt_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "irt"
    assert cli.main([*IRT, "--epochs", "40", "--out", str(out)]) == 0
    return out


def test_a_vae_run_reopens_with_encode_decode_generate_and_reconstruct(tiny_run, digits):
    run = pyro_vae.load(tiny_run)
    assert isinstance(run, ImageRun) and run.config["model"] == "vae" and len(run.metrics) == 2
    assert run.data["dataset"] == "digits" and run.data["shape"] == [1, 8, 8]
    x = digits.test[:5]
    codes = run.encode(x)
    assert codes.shape == (5, 2)
    assert torch.allclose(run.decode(codes), run.reconstruct(x))
    assert run.generate(7, seed=1).shape == (7, 64) and torch.equal(run.generate(3, seed=1), run.sample(3, seed=1))
    assert set(run.evaluate(seed=0)) >= {"test_elbo", "test_reconstruction_mse", "test_kl_per_dim"}


def test_a_topic_run_keeps_its_vocabulary_and_scores_new_documents(topic_run):
    run = pyro_vae.load(topic_run)
    assert isinstance(run, TopicRun) and run.config["model"] == "prodlda"
    assert (topic_run / "vocab.txt").read_text().split() == run.vocab and len(run.vocab) == 21
    assert all(len(words) == 5 and set(words) <= set(run.vocab) for words in run.topics(5))
    theta = run.proportions(["cats dogs purr", "soup pasta bread unknownword"])
    assert theta.shape == (2, 3) and torch.allclose(theta.sum(-1), torch.ones(2))
    score = run.score(["cats dogs purr kitten", "zebra", "bread cheese"])
    assert score["documents"] == 2 and score["words"] == 6 and score["elbo"] < 0
    assert 1 < score["perplexity"] < 10 * len(run.vocab)


def test_an_irt_run_scores_new_students_without_refitting(irt_run):
    run = pyro_vae.load(irt_run)
    assert isinstance(run, IRTRun) and run.config["kind"] == "2pl" and run.item_names == [f"item{j}" for j in
                                                                                           range(1, 6)]
    before = {k: v.clone() for k, v in run.guide.state_dict().items()}
    answers = np.array([[1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, np.nan, np.nan, np.nan, np.nan]])
    amortized, exact = run.score(answers), run.score(answers, exact=True)
    for scores in (amortized, exact):
        assert scores["ability"].shape == (3,) and np.all(scores["ability_sd"] > 0)
        assert scores["ability"][0] > scores["ability"][2] > scores["ability"][1]  # more right, more able
    assert np.allclose(amortized["ability"], exact["ability"], atol=0.5)  # q(ability) is an approximation
    as_dicts = run.score([{"item1": 1, "item2": 1, "item3": 1, "item4": 1, "item5": 1}, {"item1": 1}], exact=True)
    assert np.allclose(as_dicts["ability"], exact["ability"][[0, 2]])
    assert all(torch.equal(before[k], v) for k, v in run.guide.state_dict().items())  # nothing refitted


def test_a_meanfield_irt_run_scores_new_students_exactly(tmp_path):
    out = tmp_path / "run"
    assert cli.main([*IRT, "--guide", "meanfield", "--epochs", "20", "--out", str(out)]) == 0
    run = pyro_vae.load(out)
    scores = run.score([[1, 0, 1, 1, 1]])
    assert scores["ability"].shape == (1,)
    with pytest.raises(pyro_vae.UserError, match="no encoder for new students"):
        run.score([[1, 0, 1, 1, 1]], exact=False)


@pytest.mark.parametrize("kind", ["topics", "irt"])
def test_evaluate_and_plot_work_on_every_kind_and_sample_says_it_does_not_apply(kind, topic_run, irt_run, tmp_path,
                                                                                 capsys):
    run = topic_run if kind == "topics" else irt_run
    assert cli.main(["evaluate", str(run), "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    if kind == "topics":
        assert report["test_elbo"] < 0 and 1 < report["test_perplexity"] < 100
    else:
        assert report["elbo"] < report["marginal_log_likelihood"] < 0 and report["students"] == 1000
    assert cli.main(["plot", str(run)]) == 0
    figures = json.loads(capsys.readouterr().out)["figures"]
    assert figures and all((run / "figures").joinpath(p.split("/")[-1]).stat().st_size > 0 for p in figures)
    one_line_error(capsys, ["sample", str(run), "--out", str(tmp_path / "s.png")], "sample does not apply to this")
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("kind", ["topics", "irt"])
def test_irt_and_topic_runs_resume_and_keep_their_settings(kind, corpus_file, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [*TOPICS, "--corpus", str(corpus_file)] if kind == "topics" else [*IRT, "--lr", "0.1"]
    assert cli.main([*argv, "--epochs", "2", "--out", str(out)]) == 0
    one_line_error(capsys, [*argv, "--epochs", "3", "--out", str(out)], "already holds a run")
    other = ["--topics", "4"] if kind == "topics" else ["--model", "1pl"]
    one_line_error(capsys, [*argv, *other, "--epochs", "3", "--resume", "--out", str(out)], "--resume: the run was")
    assert cli.main([*argv, "--epochs", "3", "--resume", "--out", str(out)]) == 0
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3] and torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 3
    assert json.loads((out / "config.json").read_text())["epochs"] == 3


def test_pyirt_jsonlines_is_read_as_json_lines(tmp_path):
    lines = ['{"subject_id": "ann", "responses": {"q1": 1, "q2": 0}}', '{"subject_id": "bob", "responses": {"q2": 1}}']
    (tmp_path / "exam.jsonlines").write_text("\n".join(lines) + "\n")
    data = exams.load(str(tmp_path / "exam.jsonlines"))
    assert data.items == ["q1", "q2"] and data.students == ["ann", "bob"]
    assert data.answers.tolist() == [[1, 0], [0, 1]] and data.mask.tolist() == [[True, True], [False, True]]


def test_checkpoints_are_as_readable_as_the_umask_allows(tmp_path):
    """A run folder is shared: checkpoint.pt gets 0666 less the umask, like config.json, not mkstemp's 0600."""
    import os

    from pyro_vae import checkpoint

    old = os.umask(0o022)
    try:
        checkpoint.save({"model": {}}, tmp_path / "a.pt")
        os.umask(0o077)
        checkpoint.save({"model": {}}, tmp_path / "b.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "a.pt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.pt").stat().st_mode & 0o777 == 0o600


def test_bad_input_to_a_reopened_run_is_one_line(topic_run, irt_run, tiny_run, tmp_path):
    """The rows of docs/bad-input.md for the Python side of reopened runs."""
    topics, irt = pyro_vae.load(topic_run), pyro_vae.load(irt_run)
    cases = [(lambda: topics.score("just one string"), "give the documents as a list of strings"),
             (lambda: topics.score(["zebra giraffe"]), "none of the documents contains a word of the run's vocabulary"),
             (lambda: irt.score([[1, 0, 1]]), "answers have shape (1, 3): give one row per student and one column"),
             (lambda: irt.score([[1, 2, 1, 0, 1]]), "answers must be 0 (wrong), 1 (right) or NaN"),
             (lambda: irt.score([{"item9": 1}]), "item(s) 'item9' were not in the run's exam"),
             (lambda: pyro_vae.load(tmp_path), "is not a run folder (no config.json)")]
    for call, message in cases:
        with pytest.raises(pyro_vae.UserError) as error:
            call()
        assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_an_autoencoder_run_reopens_encodes_and_says_it_cannot_sample(digits, tmp_path, capsys):
    config = {"model": "autoencoder", "dataset": "digits", "shape": list(digits.shape), "latent_dim": 2,
              "hidden": [16], "likelihood": "gaussian", "c": 0.1}
    model, guide = pyro_vae.build(config)
    pyro_vae.fit(model, guide, digits.train, epochs=1, batch_size=64, device="cpu", out=tmp_path / "ae",
                 config=config, quiet=True)
    run = pyro_vae.load(tmp_path / "ae")
    x = digits.test[:4]
    assert torch.equal(run.encode(x), run.guide.encoder(x)) and run.reconstruct(x).shape == (4, 64)
    with pytest.raises(pyro_vae.UserError, match="no prior p"):
        run.generate(4)
    assert cli.main(["evaluate", str(tmp_path / "ae"), "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test_reconstruction_mse"] > 0 and report["test_reconstruction"] < 0
    assert cli.main(["plot", str(tmp_path / "ae")]) == 0
    assert len(json.loads(capsys.readouterr().out)["figures"]) == 3
    one_line_error(capsys, ["sample", str(tmp_path / "ae"), "--out", str(tmp_path / "s.png")],
                   "sample does not apply to this autoencoder run")
