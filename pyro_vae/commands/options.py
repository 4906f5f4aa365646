"""Flags shared by the subcommands, each defined once: the device, and the run folder a command writes."""

from __future__ import annotations

import argparse
from dataclasses import fields

from pyro_vae import settings
from pyro_vae.errors import UserError


def add_device(parser) -> None:
    """--device, declared by ``settings.TrainingSettings.device`` and resolved later by ``train.resolve_device``."""
    settings.add_arguments(parser, settings.TrainingSettings, only=("device",))
    parser.set_defaults(device=settings.TrainingSettings.device)  # not part of a run's settings: never taken from a saved run


def add_settings(parser, cls: type[settings.Settings], what: str) -> None:
    """One group: a flag per field of ``cls`` (a run's settings, ``settings.add_arguments``) and --device. Its
    title says that on --resume each is the run's own, except the fields declared ``free``."""
    free = ", ".join(f"--{settings.flag(f.name)}" for f in fields(cls) if f.metadata.get("free"))
    group = parser.add_argument_group(f"{what} (on --resume: the run's own; a different value is an error"
                                      + (f", except {free})" if free else ")"))
    settings.add_arguments(group, cls)
    add_device(group)


def add_run_folder(parser, out: str, figures: str = "skip drawing figures at the end",
                   quiet: str = "no progress bars or per-epoch lines") -> argparse._ArgumentGroup:
    """The group of a command that writes a run folder: --out (default ``out``), --resume, --overwrite,
    --no-figures and --quiet. Returns the group, for a command's own flags about its run folder."""
    group = parser.add_argument_group("the run folder")
    group.add_argument("--out", default=out, help=f"run folder (default: {out})")
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint, with its saved settings: the same "
                            "trajectory as an uninterrupted run (give --epochs to train longer)")
    group.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    group.add_argument("--no-figures", action="store_true", help=figures)
    group.add_argument("--quiet", action="store_true", help=quiet)
    return group


def saved_config(args) -> dict:
    """On --resume, the config.json of the run in --out; else {}."""
    if not args.resume:
        return {}
    from pyro_vae.run_folder import RunFolder

    try:
        return RunFolder(args.out).config()
    except UserError as error:
        raise UserError(f"--resume: {error}") from None
