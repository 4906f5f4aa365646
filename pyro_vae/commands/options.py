"""Argument types shared by the subcommands: each rejects bad values with a one-line message."""

from __future__ import annotations

import argparse
import math


def _checked(convert, expected: str, requirement: str, ok):
    """An argparse type: ``convert(text)``, then ``ok(value)``, each failure a one-line message."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    return parse


positive_int = _checked(int, "a whole number", "positive", lambda v: v > 0)
nonnegative_int = _checked(int, "a whole number >= 0", ">= 0", lambda v: v >= 0)
positive_float = _checked(float, "a number", "a positive finite number", lambda v: 0 < v < math.inf)
nonnegative_float = _checked(float, "a number >= 0", "a finite number >= 0", lambda v: 0 <= v < math.inf)


def sizes(text: str) -> tuple[int, ...]:
    """'512,256' → (512, 256): hidden layer widths."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated widths like 512,256, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return values


def add_device(parser) -> None:
    """--device, resolved later by ``train.resolve_device``."""
    parser.add_argument("--device", default="auto",
                        help="auto (a GPU when there is one), cpu, cuda or cuda:N (default: auto)")


def add_resume(parser) -> None:
    """--resume and --overwrite, for the commands that write a run folder into --out."""
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint, with its saved settings "
                             "(give --epochs to train longer)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
