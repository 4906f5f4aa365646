"""The ``pyro-vae`` command. Each subcommand lives in ``pyro_vae/commands/NAME.py``.

Bad input ends with one line on stderr, ``pyro-vae: error: ...``, and exit code 2; no traceback.
Run data-parallel with ``torchrun --nproc_per_node=N -m pyro_vae.cli train ...``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pyro_vae.errors import UserError

COMMANDS = ("train", "evaluate", "sample", "plot", "irt", "topics")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to --help), like our own errors."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pyro-vae", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"pyro_vae.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
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
