"""What a scenario returns, and the JSON document the runner writes for it."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Outcome:
    """The measurements of one scenario run; `ratio` is OBP against the same-run baseline."""

    parameters: dict[str, Any]
    results: dict[str, Any]
    ratio: float | None
    baseline: str
    notes: list[str] = field(default_factory=list)


def environment() -> dict[str, Any]:
    """Where the numbers were measured: interpreter, machine and package versions."""
    versions: dict[str, str | None] = {}
    for package in ("obp", "granian", "fastapi", "sqlalchemy", "aiosqlite", "httpx"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": versions,
    }


def document(scenario: str, *, quick: bool, started: datetime, outcome: Outcome) -> dict[str, Any]:
    """The JSON document of one run of `scenario`."""
    finished = datetime.now(UTC)
    return {
        "scenario": scenario,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": round((finished - started).total_seconds(), 3),
        "quick": quick,
        "environment": environment(),
        "parameters": outcome.parameters,
        "results": outcome.results,
        "ratio": outcome.ratio,
        "baseline": outcome.baseline,
        "notes": outcome.notes,
    }


def write(doc: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write `doc` to `<directory>/<scenario>.json`; the path written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{doc['scenario']}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
