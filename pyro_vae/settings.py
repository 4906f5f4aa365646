"""Every default, defined once: the settings of training, of the lecture's VAE and of its objective.

The library (``fit``, ``runs.build``, ``builders.objective``) and the command line (``pyro-vae train``) read
the same dataclasses: a flag's name, type, check, help text and default all come from one field here.
This module imports neither torch nor Pyro, so ``pyro-vae --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Callable, NamedTuple

from pyro_vae.errors import UserError

# name → (test, the requirement in words); a value failing its test is a one-line error
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "positive": (lambda v: v > 0 and math.isfinite(v), "a positive finite number"),
    "nonnegative": (lambda v: v >= 0 and math.isfinite(v), "a finite number >= 0"),
    "fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
}


class Interval(NamedTuple):
    """How often: every ``n`` ``unit`` ("epochs", "steps" or "seconds"), or ``auto`` (n = 0)."""

    n: int
    unit: str

    def __str__(self):
        return "auto" if self.unit == "auto" else f"{self.n}{self.unit}"

    def in_epochs(self, epochs: int) -> "Interval":
        """``auto`` made concrete for a run of ``epochs`` epochs: every epoch, at most about 100 times a run
        (a full-batch fit of thousands of one-step epochs, as in Pyro's tutorials, then pays for about 100
        evaluations and checkpoints, not thousands); other intervals as they are."""
        return Interval(-(-epochs // 100), "epochs") if self.unit == "auto" else self


UNITS = {"": "epochs", "epoch": "epochs", "epochs": "epochs", "step": "steps", "steps": "steps", "s": "seconds",
         "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds", "min": "minutes",
         "mins": "minutes", "minute": "minutes", "minutes": "minutes"}


def interval(value: int | str, name: str = "checkpoint_every") -> Interval:
    """``2``, ``"2"`` or ``"2epochs"`` → every 2 epochs; ``"500steps"`` → every 500 optimizer steps;
    ``"30s"``/``"30seconds"``/``"5min"`` → at the first epoch end 30 s (5 min) after the last time; ``"auto"``."""
    if str(value).strip() == "auto":
        return Interval(0, "auto")
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", str(value))
    unit = UNITS.get(match[2]) if match else None
    if isinstance(value, bool) or not match or int(match[1]) <= 0 or unit is None:
        raise UserError(f"--{flag(name)} takes N, Nepochs, Nsteps, Nseconds (Ns, Nmin) with N > 0, or auto "
                        f"(e.g. 2epochs, 500steps or 30s), got {value!r}")
    n = int(match[1]) * (60 if unit == "minutes" else 1)
    return Interval(n, "seconds" if unit == "minutes" else unit)


def option(default: Any, help: str, check: str | None = None, choices: tuple | None = None,
           metavar: str | None = None, *, flag: str | None = None, shown: str | None = None,
           free: bool = False) -> Any:
    """A settings field: its default, its ``--help`` text, and the check every value must pass.

    ``flag``: the command-line name when it is not the field's (``--model`` for IRT's ``kind``, whose
    config key ``model`` names the run's kind); ``shown``: the default in words when it is computed
    (``None`` in the field); ``free``: a field of settings a run is tied to that ``--resume`` may still
    change (e.g. ``epochs``, to train longer).
    """
    return field(default=default, metadata={"help": help, "check": check, "choices": choices, "metavar": metavar,
                                            "flag": flag, "shown": shown, "free": free})


class Settings:
    """Shared behaviour: validation on construction, ``replace``, and a plain dict for config.json."""

    def __post_init__(self):
        for f in fields(self):
            if f.metadata.get("check") == "interval":
                interval(getattr(self, f.name), f.name)
                continue
            value, check, choices = getattr(self, f.name), f.metadata.get("check"), f.metadata.get("choices")
            if value is None and f.default is None:
                continue
            if choices is not None and value not in choices:
                raise UserError(f"--{_flag(f)} {value!r} is not one of: {', '.join(map(str, choices))}")
            if check is not None:
                test, requirement = CHECKS[check]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not test(value):
                    raise UserError(f"--{_flag(f)} must be {requirement}, got {value!r}")

    def replace(self, **changes) -> "Settings":
        """A copy with ``changes``; an unknown name is a TypeError, as for a function's keywords."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown {type(self).__name__} setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """The settings as JSON values, for config.json."""
        return {k: list(v) if isinstance(v, tuple) else v if isinstance(v, (int, float, str, type(None))) else str(v)
                for k, v in asdict(self).items()}  # JSON: a torch.device given as device= is written as its name

    @classmethod
    def resolve(cls, given: dict, saved: dict, fixed: bool) -> "Settings":
        """Each field: the ``given`` value (a flag; None: not given), else the ``saved`` one (a resumed run's
        config), else the default. With ``fixed`` (model and objective settings, which a run is tied to),
        a given value that contradicts the saved one is an error, not a silent change; fields declared
        ``free`` may change all the same."""
        values = {}
        for name, f in cls.__dataclass_fields__.items():
            value = given.get(name)
            value = list(value) if isinstance(value, tuple) else value
            if fixed and not f.metadata.get("free") and value is not None and name in saved and saved[name] != value:
                raise UserError(f"--resume: the run was trained with {name}={saved[name]!r}, not {value!r}; "
                                "drop the flag or start a new --out")
            if value is not None:
                values[name] = value
            elif name in saved:
                values[name] = saved[name]
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict) -> "Settings":
        """The settings among ``values`` (e.g. a run's config.json); other keys are ignored, missing ones default."""
        names = {f.name: f for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(names[k].default, tuple) else v
                      for k, v in values.items() if k in names})


@dataclass(frozen=True)
class TrainingSettings(Settings):
    """How ``fit`` trains: the same for every model, ours or a user's."""

    epochs: int = option(20, "passes over the training data", "positive")
    batch_size: int = option(128, "examples per SVI step; under torchrun, the global batch over all processes",
                             "positive")
    lr: float = option(1e-3, "Adam learning rate", "positive")
    clip_norm: float | None = option(None, "clip the global gradient norm to this value (a NaN/inf norm stops "
                                           "the run); with clipped-adam, each parameter's", "positive")
    seed: int = option(0, "random seed; the same seed gives the same metrics on a CPU")
    device: str = option("auto", "auto (a GPU when there is one), cpu, cuda or cuda:N")
    optimizer: str = option("adam", "adam (torch's, fused); clipped-adam (Pyro's ClippedAdam: each parameter's "
                                    "gradient clipped to --clip-norm, default 10); adagrad-rmsprop (Pyro's, step "
                                    "size --lr); sgd", choices=("adam", "clipped-adam", "adagrad-rmsprop", "sgd"))
    eval_every: str = option("auto", "measure the ELBO parts on test and training rows every N epochs (N or Nepochs), "
                                     "Nsteps or Nseconds (Ns, Nmin: at the first epoch end after that long); auto: every "
                                     "epoch, at most ~100 times a run; the last epoch always", "interval")
    checkpoint_every: str = option("auto", "checkpoint every N epochs (N or Nepochs); Nsteps: every N optimizer steps, "
                                           "also mid-epoch; Nseconds (Ns, Nmin); auto: every epoch, at most ~100 times a "
                                           "run; the last epoch is always saved", "interval")
    keep_last: int = option(1, "also keep the last N checkpoints under checkpoints/ (1: only checkpoint.pt)",
                            "positive")
    eval_batch_size: int = option(1000, "examples per batch when the ELBO parts are measured after each epoch",
                                  "positive")
    plate: str = option("data", "name of the plate that holds the per-example sites; a minibatch's sites in it "
                                "are scaled by N / batch size", metavar="NAME")
    tensorboard: str | None = option(None, "also write TensorBoard event files to this folder (pip install "
                                           "'pyro-vae[tensorboard]')", metavar="DIR")


LIKELIHOODS = ("gaussian", "gaussian-learned", "bernoulli", "continuous-bernoulli")


@dataclass(frozen=True)
class VAESettings(Settings):
    """The lecture's VAE: p(z) = N(0, I), p(x|z) = N(f(z), cI), q_x(z) = N(μ(x), σ(x)²)."""

    dataset: str = option("mnist-5k", "mnist-5k (offline: 5,000 real MNIST digits), digits (sklearn 8x8), mnist, "
                                      "fashion-mnist, or a path to .npy/.npz or a folder of PNGs")
    test_fraction: float = option(0.2, "share of a .npy/.npz/PNG data set's rows held out as test rows, or a count "
                                       "≥ 1 (0: train on every row, in order, as Pyro's tutorials do)", "nonnegative")
    stream: str = option("auto", "read a .npy data set from its file batch by batch instead of into memory: auto "
                                 "(when the file is over 1 GiB), always or never", choices=("auto", "always", "never"))
    latent_dim: int = option(2, "dimension of z (2, so codes and the decoded manifold can be drawn)", "positive")
    likelihood: str = option("gaussian", "p(x|z): gaussian N(f(z), cI) as in the lecture; gaussian-learned "
                                         "N(f(z), σ²I) with one learned σ (σ-VAE; --c is its start); bernoulli on "
                                         "logits; continuous-bernoulli, a density on [0, 1]", choices=LIKELIHOODS)
    c: float = option(0.1, "observation variance c of the Gaussian likelihood; a larger c weights the KL "
                           "regularizer more against reconstruction", "positive")
    hidden: tuple = option((512,), "hidden widths of encoder and (mirrored) decoder, e.g. 512,256", metavar="W,W")
    network: str = option("mlp", "mlp, or conv for 28x28 images", choices=("mlp", "conv"))


ELBOS = ("auto", "trace", "meanfield", "iwae", "enum")


@dataclass(frozen=True)
class ObjectiveSettings(Settings):
    """What is maximized: the ELBO, or a variant of it; acts on any model's sites."""

    elbo: str = option("auto", "auto: enum if the program has sites marked for enumeration, else trace; trace: "
                               "Trace_ELBO, Monte Carlo KL (the lecture); meanfield: TraceMeanField_ELBO, analytic KL; "
                               "iwae: importance-weighted bound over --particles samples; enum: TraceEnum_ELBO, discrete "
                               "sites marked for enumeration summed out", choices=ELBOS)
    particles: int = option(1, "samples z ~ q(z|x) per example and step, vectorized", "positive")
    beta: float = option(1.0, "weight β of the KL term (β-VAE): 0 keeps the reconstruction term only", "nonnegative")
    kl_warmup: int = option(0, "ramp β linearly over N epochs: β·min(1, (epoch − 1)/N), so epoch 1 has β = 0",
                            "nonnegative")
    free_bits: float = option(0.0, "λ nats: the KL of each latent dimension below λ is not penalized", "nonnegative")
    binarize: str | None = option(None, "dynamic: draw binary pixels x ~ Bernoulli(grey level) for every training "
                                        "batch (the test set is binarized once, with a fixed seed); for --likelihood "
                                        "bernoulli", choices=("dynamic",))


def flag(name: str) -> str:
    """A field's command-line flag, without the dashes: ``batch_size`` → ``batch-size``."""
    return name.replace("_", "-")


def _flag(f) -> str:
    return f.metadata.get("flag") or flag(f.name)


def add_arguments(parser: argparse.ArgumentParser, cls: type[Settings], skip: tuple = (),
                  only: tuple | None = None) -> None:
    """One ``--flag`` per field of ``cls`` (or of those named in ``only``), with its check, choices and
    ``(default …)`` in the help.

    The parsed default is None, so a command can tell a flag that was given from one that was not
    (on ``--resume`` the run's saved value then stands).
    """
    for f in fields(cls):
        if f.name in skip or (only is not None and f.name not in only):
            continue
        meta, default = f.metadata, f.default if f.default is not MISSING else None
        shown = meta.get("shown") or (",".join(map(str, default)) if isinstance(default, tuple) else default)
        parser.add_argument(f"--{_flag(f)}", dest=f.name, type=argument_type(f.type, meta.get("check")),
                            choices=meta.get("choices"), metavar=meta.get("metavar"),
                            help=f"{meta['help']} (default: {shown})")


def argument_type(annotation: str, check: str | None = None) -> Callable[[str], Any]:
    """An argparse type for a value annotated ``annotation`` (``int``, ``float``, ``str``, ``tuple`` of widths,
    ``int | float``: a count or a fraction) that must pass ``check``: converts, then checks, each failure one
    line. Every command's typed flags come from here."""
    kind = annotation.replace(" | None", "").strip()
    if check == "interval":
        def parse_interval(text: str) -> str:
            try:
                return str(interval(text))
            except UserError as error:
                raise argparse.ArgumentTypeError(str(error).split(" ", 1)[1]) from None

        return parse_interval
    if kind == "str":
        return str
    convert, expected = {"int": (int, "a whole number"), "float": (float, "a number"),
                         "tuple": (_widths, "comma-separated positive whole numbers like 512,256"),
                         "int | float": (_count_or_fraction, "a number of documents or a fraction")}[kind]

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if check is not None and not CHECKS[check][0](value):
            requirement = {"positive": "positive", "nonnegative": ">= 0"}[check] if kind == "int" \
                else CHECKS[check][1]
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    return parse


def _widths(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(","))
    if min(values) <= 0:
        raise ValueError(text)
    return values


def _count_or_fraction(text: str) -> int | float:
    """'2' → 2 (a count); '0.5' → 0.5 (a fraction): sklearn's min_df/max_df convention."""
    try:
        return int(text)
    except ValueError:
        return float(text)
