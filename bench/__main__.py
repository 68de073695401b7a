"""`python -m bench NAME [--quick]`: run scenarios, write bench/results/NAME.json, print it."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.report import RESULTS_DIR, document, write
from bench.scenarios import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    """Run the named scenarios; exit status 1 if any failed."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"], help="what to measure")
    parser.add_argument(
        "--quick", action="store_true", help="shorter runs and smaller counts (for tests)"
    )
    parser.add_argument(
        "--client",
        choices=["httpx", "raw"],
        # raw by default: on 2 cores httpx's own CPU, not the server, caps the bare endpoint.
        default="raw",
        help="load generator connections: a minimal raw HTTP/1.1 client that leaves the cores "
        "to the server, or httpx.AsyncClient [raw]",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=RESULTS_DIR, help=f"where JSON goes [{RESULTS_DIR}]"
    )
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    failed = []
    for name in names:
        started = datetime.now(UTC)
        try:
            outcome = SCENARIOS[name](quick=args.quick, client=args.client)
        except Exception:
            # Keep going with the other scenarios of `all`; the exit status reports the failure.
            traceback.print_exc()
            failed.append(name)
            continue
        doc = document(name, quick=args.quick, started=started, outcome=outcome)
        path = write(doc, args.output_dir)
        print(json.dumps(doc, indent=2))
        print(f"{name}: ratio {doc['ratio']} ({doc['baseline']}) -> {path}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
