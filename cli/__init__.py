"""The `gateproof` command line: one entry point, one subcommand per job.

Each subcommand lives next to the part it drives (``gateproof.mock_providers.cli``,
``gateproof.reference_gateway.cli``, ...) and exposes three names:

- ``HELP``: one line shown in ``gateproof --help``;
- ``configure(parser)``: adds its options to an ``argparse`` parser;
- ``main(args) -> int``: runs it and returns the process exit code.

This module only wires them together, so adding a subcommand is one line in
``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["COMMANDS", "build_parser", "main"]

#: subcommand name -> module implementing it (imported lazily, in this order in --help)
COMMANDS: dict[str, str] = {
    "run": "gateproof.cli.run",
    "mock": "gateproof.mock_providers.cli",
    "gateway": "gateproof.reference_gateway.cli",
    "smoke": "gateproof.cli.smoke",
    "contract": "gateproof.contract.cli",
    "load": "gateproof.load.cli",
}


def _available_commands() -> dict[str, ModuleType]:
    modules: dict[str, ModuleType] = {}
    for name, module_name in COMMANDS.items():
        try:
            modules[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A part that has not been written yet must not break the others.
            if exc.name is not None and module_name.startswith(exc.name):
                continue
            raise
    return modules


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = argparse.ArgumentParser(
        prog="gateproof",
        description=(
            "Contract, conformance and load harness for OpenAI-compatible LLM gateways "
            "(Edgee AI Gateway API), with mock providers and a reference gateway."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = _available_commands()
    for name, module in modules.items():
        sub_parser = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sub_parser)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code: int = modules[args.command].main(args)
    except KeyboardInterrupt:
        print("gateproof: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
