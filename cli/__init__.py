"""The `gateproof` command line: one entry point, one subcommand per job.

Each subcommand lives next to the part it drives (``gateproof.mock_providers.cli``,
``gateproof.reference_gateway.cli``, ...) and exposes three names:

- ``HELP``: one line shown in ``gateproof --help``;
- ``configure(parser)``: adds its options to an ``argparse`` parser;
- ``main(args) -> int``: runs it and returns the process exit code.

This module only wires them together, so adding a subcommand is one line in
``COMMANDS``; and it makes SIGTERM stop a command the way Ctrl-C does (exit 130 for
SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType, ModuleType

from gateproof.contract.results import INTERRUPTED_EXIT_CODE

__all__ = [
    "COMMANDS",
    "INTERRUPTED_EXIT_CODE",
    "TERMINATED_EXIT_CODE",
    "Terminated",
    "build_parser",
    "main",
]

#: 128 + SIGTERM, as a shell reports a process killed by it (130 for Ctrl-C is the results model's)
TERMINATED_EXIT_CODE = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where Ctrl-C raises KeyboardInterrupt.

    CI runners and ``timeout`` stop a job with SIGTERM, whose default action ends the process on
    the spot: no ``finally`` runs, so the mock, the gateway and locust, each in its own process
    group that the signal never reaches, would keep running. As a KeyboardInterrupt it takes every
    cleanup path Ctrl-C already takes (``local_stack``, the load runner, schemathesis' soft stop).
    """


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
    terminated: list[int] = []

    def on_sigterm(signum: int, _frame: FrameType | None) -> None:
        terminated.append(signum)
        # Only the first one raises: a second SIGTERM must not cut short the cleanup the first began.
        if len(terminated) == 1:
            raise Terminated

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main_thread else None
    previous_int = None
    if in_main_thread:
        # A process started with SIGINT ignored (a background job of a shell without job
        # control, some CI runners) inherits SIG_IGN, and Python then never raises
        # KeyboardInterrupt: an interrupt sent to stop the run would be lost and its servers left
        # running. SIGINT always means "stop cleanly" here.
        previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code: int = modules[args.command].main(args)
    except KeyboardInterrupt:
        print("gateproof: " + ("terminated" if terminated else "interrupted"), file=sys.stderr)
        code = INTERRUPTED_EXIT_CODE
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            signal.signal(
                signal.SIGINT, previous_int if previous_int is not None else signal.default_int_handler
            )
    # A command may have caught the interrupt itself (to stop its servers, write an interrupted
    # report) and returned 130; whatever it returned, a SIGTERMed run ends with 143.
    return TERMINATED_EXIT_CODE if terminated else code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
