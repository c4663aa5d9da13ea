"""The command line of `make chaos`; see tools/chaos/__init__.py."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import traceback
from pathlib import Path

from deploy.local.cluster import ClusterError
from loyalty_runtime.logs import JsonFormatter
from tools.chaos import __doc__ as DOC
from tools.chaos.api import SetupError
from tools.chaos.nemesis import DEFAULT_GAP
from tools.chaos.report import table
from tools.chaos.run import Options, chaos
from tools.chaos.targets import NotHealedError

EXIT_FINDING, EXIT_CANNOT_RUN, EXIT_INTERRUPTED = 1, 2, 130


def gap(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give the calm between faults as MIN-MAX seconds: 5-20") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: MIN-MAX needs 0 < MIN <= MAX")
    return low, high


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--seed", type=int, required=True, help="draws the fault schedule and the load (>= 0)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="length of the load window (default 2)")
    length.add_argument("--seconds", type=float, help="length of the load window, in seconds")
    parser.add_argument("--brokers", type=int, choices=(1, 3), default=3, help="Kafka nodes (default 3)")
    parser.add_argument("--home", type=Path, help="directory of the run (default .local/chaos/<seed>)")
    parser.add_argument("--keep", action="store_true", help="keep Kafka's and PostgreSQL's data after the run")
    parser.add_argument("--gap", type=gap, default=DEFAULT_GAP, help="calm between faults, MIN-MAX s (default 5-20)")
    parser.add_argument("--rate", type=float, default=1.0, help="load multiplier (1: about 15 requests/s)")
    parser.add_argument("--faults", type=int, default=0, metavar="N",
                        help="inject at least N faults, stretching the load window if heals are slow")  # fmt: skip
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be 0 or more")
    seconds = args.seconds if args.seconds is not None else 60 * (args.minutes if args.minutes is not None else 2)
    if seconds <= 0 or args.rate <= 0:
        parser.error("--minutes/--seconds and --rate must be more than 0")
    if args.faults < 0:
        parser.error("--faults must be 0 or more")
    return Options(args.seed, seconds, args.brokers, args.home, args.keep, args.gap, args.rate, args.faults)


def configure_logging() -> None:
    """Structured progress on stderr (one JSON object per line); the table goes to stdout."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("chaos"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a killed broker is the point, not news
    logging.getLogger("httpx").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    configure_logging()
    try:
        document = asyncio.run(chaos(options))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (run.stop_on_sigterm)
        print("chaos run interrupted; its platform was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ClusterError, SetupError, NotHealedError) as error:
        print(f"chaos run could not be carried out: {error}", file=sys.stderr)
        print(f"logs: {options.directory / 'logs'}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except Exception:
        traceback.print_exc()
        print("the chaos tool itself failed (the traceback above; not a finding about the platform); its platform "
              f"was stopped. Logs: {options.directory / 'logs'}", file=sys.stderr)  # fmt: skip
        return EXIT_CANNOT_RUN
    print(table(document))
    print(f"\nresult: {options.directory / 'result.json'}   logs: {options.directory / 'logs'}")
    return 0 if document["verdict"] == "pass" else EXIT_FINDING


if __name__ == "__main__":
    raise SystemExit(main())
