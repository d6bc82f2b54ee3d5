"""The ``wander`` command line: ``wander <subcommand> ...``.

Each subcommand lives in :mod:`wander_gui.commands` as a module with ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; add a module and list it in
``SUBCOMMANDS`` to extend the CLI.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from wander_gui import __version__
from wander_gui.errors import WanderError

SUBCOMMANDS = ("build", "angles", "relax", "forces", "bands", "hamiltonian", "parity", "dataset", "dft", "train",
               "ablation")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wander", description="WANDER moiré lab: build, relax and compute bands of twisted bilayers.")
    parser.add_argument("--version", action="version", version=f"wander {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        mod = importlib.import_module(f"wander_gui.commands.{name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except WanderError as exc:
        print(f"wander {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"wander {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
