"""The pyro-vae command: PCA → autoencoder → VAE, topic models and IRT, as Pyro programs trained by SVI.

Bad input ends with one line on stderr, "pyro-vae: error: ...", and exit code 2; no traceback.
Image data sets (train --dataset) are downloaded to and cached in --data-dir, else the folder in the
environment variable PYRO_VAE_DATA, else ~/.cache/pyro-vae.
Run data-parallel with: torchrun --nproc_per_node=N -m pyro_vae.cli train ...
"""

from __future__ import annotations

import argparse
import os
import sys

from pyro_vae import __version__
from pyro_vae.commands import evaluate, irt, plot, sample, topics, train
from pyro_vae.errors import UserError

COMMANDS = {"train": train, "evaluate": evaluate, "sample": sample, "plot": plot, "irt": irt, "topics": topics}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to --help), like our own errors."""

    def error(self, message):
        """Exits 2 with one line: the usage error and a pointer to --help."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The pyro-vae parser with every subcommand (pyro_vae/commands/NAME.py, each importing torch only in
    its ``run``, so help is quick)."""
    parser = Parser(prog="pyro-vae", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs ``pyro-vae ARGV``; returns the exit code (0, 2 for bad input, 130 when interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as error:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank stops; one of them says why
            print(f"pyro-vae: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pyro-vae: interrupted; the last checkpoint (if any) is intact: continue with --resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
