"""Benchmark: shipyard's drift comparison against a stored reference, and Evidently 0.7's
``DataDriftPreset`` on the same frames, measured in the same run.

Data (seeded): a reference and a current frame of ``--rows`` rows each (100,000 by default) with
25 columns: 20 numeric (normal, log-normal, exponential, uniform and integer-valued ones) and 5
categorical (3-12 text values). Seven columns of the current frame are shifted (see SHIFTED);
the others are fresh draws of the reference's distribution.

- shipyard: the reference is built once (``build_reference``, a one-off figure) and stored as
  its JSON document; what is timed is what a monitor does on each window: read the document,
  ``ReferenceProfile.from_json`` and ``compare(reference, current_polars_frame)``.
- Evidently: ``Report([DataDriftPreset()]).run(current, reference)`` on the two pandas frames,
  with a ``DataDefinition`` naming the numeric and categorical columns (no type inference).

Each tool runs in a fresh subprocess per round (rounds alternate which goes first); inside it
the frames are loaded first (not timed), then the call is made twice: the first call's time
(``cold``: the process has imported the library but not run it) and the second's (``warm``)
are reported, with the import time apart. Peak memory is the same for both tools: the
process's resident-set high-water mark during the first call, less its resident size just
before (Linux ``/proc/self/clear_refs`` resets the mark; tracemalloc would miss polars' Rust
allocations). Each tool also runs on an 8-row window, where shipyard answers "insufficient
data" and Evidently still gives verdicts.

Evidently is never a shipyard dependency: the script makes bench/.work/evidently-venv
(EVIDENTLY_REQUIREMENTS; pandas below 3, which Evidently 0.7.23 cannot import) and runs
Evidently's rounds with that interpreter; shipyard's rounds use the interpreter running this
script.

    python bench/drift.py                   # about 2-4 minutes once Evidently is installed
    python bench/drift.py --rows 20000 --rounds 1      # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _venv import BenchVenv, digest, workspace

REPO = Path(__file__).resolve().parents[1]
EVIDENTLY_REQUIREMENTS = ("evidently==0.7.23", "pandas<3")
NUMERIC = 20
CATEGORICAL = 5
# column -> how the current frame departs from the reference (the other 18 do not).
SHIFTED = {
    "num_00": "normal, mean +0.3 sd",
    "num_06": "normal, sd x1.5",
    "num_07": "log-normal, median x1.25",
    "num_09": "exponential, mean x1.3",
    "num_15": "uniform, range moved up by 10%",
    "cat_1": "the shares of its 4 values reversed",
    "cat_3": "a new value takes 25% of the rows",
}
WINDOW_ROWS = 8
TARGETS = "time < 0.4 s, >= 10x faster than Evidently, <= half its peak memory"


# -- data -----------------------------------------------------------------------------------------


def _numeric(i: int, rng: np.random.Generator, rows: int, moved: bool) -> np.ndarray:
    """Column num_<i>: by i % 5 normal(50, 10), normal(0, 1), log-normal, whole numbers 0-59,
    exponential; num_15 uniform(0, 100). ``moved``: the SHIFTED change."""
    if i == 15:
        return rng.uniform(10.0, 110.0, rows) if moved else rng.uniform(0.0, 100.0, rows)
    kind = i % 5
    if kind == 0:
        return rng.normal(53.0 if moved else 50.0, 10.0, rows)
    if kind == 1:
        return rng.normal(0.0, 1.5 if moved else 1.0, rows)
    if kind == 2:
        return rng.lognormal(np.log(30_000 * (1.25 if moved else 1.0)), 0.6, rows)
    if kind == 3:
        return rng.integers(0, 60, rows).astype(float)
    return rng.exponential(3.0 * (1.3 if moved else 1.0), rows)


def _categorical(j: int, rng: np.random.Generator, rows: int, moved: bool) -> np.ndarray:
    """Column cat_<j>: 3, 6, 9 or 12 values with unequal shares (cat_1: 4 values)."""
    k = 4 if j == 1 else 3 + 3 * (j % 4)
    values = np.array([f"v{v:02d}" for v in range(k)])
    weights = np.linspace(2.0, 1.0, k) if j != 1 else np.array([4.0, 3.0, 2.0, 1.0])
    if moved and j == 1:
        weights = weights[::-1]
    column = rng.choice(values, rows, p=weights / weights.sum())
    if moved and j == 3:
        column = np.where(rng.random(rows) < 0.25, "new", column)
    return column


def make_frames(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Every column of the reference (``ref/<name>``) and the current frame (``cur/<name>``),
    kept apart so that each worker loads only the columns it uses."""
    out: dict[str, np.ndarray] = {}
    for side, side_seed in (("ref", seed), ("cur", seed + 1)):
        rng = np.random.default_rng(side_seed)
        current = side == "cur"
        for i in range(NUMERIC):
            name = f"num_{i:02d}"
            out[f"{side}/{name}"] = _numeric(i, rng, rows, current and name in SHIFTED)
        for j in range(CATEGORICAL):
            name = f"cat_{j}"
            column = _categorical(j, rng, rows, current and name in SHIFTED)
            out[f"{side}/{name}"] = column.astype("<U8")
    return out


def load_columns(workdir: Path, side: str) -> dict[str, np.ndarray]:
    """One side's columns, numeric ones as float64 and categorical ones as text."""
    nums, cats = column_names()
    with np.load(workdir / "frames.npz") as data:
        return {name: data[f"{side}/{name}"] for name in nums + cats}


def column_names() -> tuple[list[str], list[str]]:
    return [f"num_{i:02d}" for i in range(NUMERIC)], [f"cat_{j}" for j in range(CATEGORICAL)]


def _peak_reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measured(call: Any) -> tuple[Any, float, dict[str, float] | None]:
    """``call()``'s result, its seconds, and memory in MiB: ``process``, the process's peak
    resident size so far (imports, the data the tool needs, the call), and ``call``, the
    peak during the call above the resident size just before it."""
    earlier_peak = _status_kib("VmHWM")
    before = _status_kib("VmRSS")
    resettable = _peak_reset()
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    if not resettable:
        return result, seconds, None
    peak = _status_kib("VmHWM")
    memory = {"process": max(earlier_peak, peak) / 1024, "call": (peak - before) / 1024}
    return result, seconds, memory


# -- the two workers (each in its own process) ---------------------------------------------------


def worker_shipyard(workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    import polars as pl

    from shipyard.monitoring.drift import compare
    from shipyard.monitoring.reference import ReferenceProfile

    imported = time.perf_counter() - started
    current = pl.DataFrame(load_columns(workdir, "cur"))
    stored = workdir / "reference.json"

    def run(frame: pl.DataFrame) -> Any:
        reference = ReferenceProfile.from_json(json.loads(stored.read_text()))
        return compare(reference, frame, current_name="current")

    report, cold, peak = measured(lambda: run(current))
    _, warm, _ = measured(lambda: run(current))
    window = run(current.head(WINDOW_ROWS))
    return {
        "import": imported,
        "cold": cold,
        "warm": warm,
        "memory": peak,
        "drifted": sorted(report.drifted_columns),
        "scores": {c.column: [c.method, c.statistic, c.threshold] for c in report.columns},
        "window": f"{window.verdict}, {len(window.drifted_columns)} of 25 columns drift",
    }


def worker_evidently(workdir: Path) -> dict[str, Any]:
    import warnings

    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    imported = time.perf_counter() - started
    nums, cats = column_names()
    frames = {}
    for side in ("ref", "cur"):
        columns = load_columns(workdir, side)
        frames[side] = pd.DataFrame(
            {n: columns[n].astype(object) if n in cats else columns[n] for n in columns}
        )
        del columns
    definition = DataDefinition(numerical_columns=nums, categorical_columns=cats)

    def run(current: Any) -> Any:
        return Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(frames["ref"], data_definition=definition),
        )

    snapshot, cold, peak = measured(lambda: run(frames["cur"]))
    _, warm, _ = measured(lambda: run(frames["cur"]))
    drifted, scores = _evidently_columns(snapshot.dict())
    window_drifted, _ = _evidently_columns(run(frames["cur"].head(WINDOW_ROWS)).dict())
    share = len(window_drifted) / (NUMERIC + CATEGORICAL)
    return {
        "import": imported,
        "cold": cold,
        "warm": warm,
        "memory": peak,
        "drifted": sorted(drifted),
        "scores": scores,
        "window": f"{'drift' if share >= 0.5 else 'no drift'}, "
        f"{len(window_drifted)} of 25 columns drift",
    }


def _evidently_columns(doc: dict[str, Any]) -> tuple[list[str], dict[str, list[Any]]]:
    """Drifted columns and (method, value, threshold) per column from a snapshot's dict: a
    p-value method drifts below its threshold, a distance at or above it."""
    drifted, scores = [], {}
    for metric in doc["metrics"]:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        column, method = config["column"], str(config["method"])
        value, threshold = float(metric["value"]), float(config["threshold"])
        scores[column] = [method, value, threshold]
        if (value < threshold) if "p_value" in method else (value >= threshold):
            drifted.append(column)
    return drifted, scores


# -- the driver -----------------------------------------------------------------------------------


def evidently_venv() -> BenchVenv:
    return BenchVenv("evidently-venv", digest("\n".join(EVIDENTLY_REQUIREMENTS)))


def prepare_evidently(venv: BenchVenv) -> None:
    if venv.ready():
        return
    venv.create()
    venv.pip("installing " + ", ".join(EVIDENTLY_REQUIREMENTS), *EVIDENTLY_REQUIREMENTS)
    venv.mark_ready()


def build_reference_once(workdir: Path) -> dict[str, float]:
    import polars as pl

    from shipyard.monitoring.reference import build_reference

    frame = pl.DataFrame(load_columns(workdir, "ref"))
    started = time.perf_counter()
    reference = build_reference(frame, source="reference")
    seconds = time.perf_counter() - started
    text = json.dumps(reference.to_json())
    (workdir / "reference.json").write_text(text)
    return {"seconds": seconds, "kib": len(text.encode()) / 1024}


def run_worker(python: Path | str, tool: str, workdir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--worker", tool, str(workdir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        env={**os.environ, "PYTHONPATH": str(REPO / "bench")},
    )
    if done.returncode != 0:
        sys.exit(f"{tool} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spread(values: list[float], unit: str = "s", digits: int = 3) -> str:
    return (
        f"{statistics.median(values):.{digits}f} {unit} "
        f"[{min(values):.{digits}f}–{max(values):.{digits}f}]"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of each frame")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, workdir = args.worker[0], Path(args.worker[1])
        result = (worker_shipyard if tool == "shipyard" else worker_evidently)(workdir)
        print(json.dumps(result))
        return 0

    venv = evidently_venv()
    prepare_evidently(venv)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPU(s); "
        f"{args.rows:,} reference and {args.rows:,} current rows x 25 columns, "
        f"{len(SHIFTED)} shifted; {args.rounds} rounds",
        flush=True,
    )
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {"shipyard": [], "evidently": []}
    with workspace("shipyard-bench-drift-") as workdir:
        np.savez(workdir / "frames.npz", **make_frames(args.rows, args.seed))
        one_off = build_reference_once(workdir)
        print(
            f"reference built once in {one_off['seconds']:.2f} s, "
            f"stored document {one_off['kib']:.0f} KiB",
            flush=True,
        )
        for r in range(args.rounds):
            order = ["shipyard", "evidently"] if r % 2 == 0 else ["evidently", "shipyard"]
            for tool in order:
                python = sys.executable if tool == "shipyard" else venv.python
                runs[tool].append(run_worker(python, tool, workdir))
                got = runs[tool][-1]
                memory = got["memory"] or {"process": math.nan, "call": math.nan}
                print(
                    f"  round {r + 1} {tool:9s}: cold {got['cold']:.3f} s, warm "
                    f"{got['warm']:.3f} s, peak {memory['process']:.0f} MiB (call "
                    f"+{memory['call']:.0f} MiB), import {got['import']:.2f} s",
                    flush=True,
                )
    report(runs)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


def report(runs: dict[str, list[dict[str, Any]]]) -> None:
    ship, evid = runs["shipyard"], runs["evidently"]
    print(f"\nTargets: {TARGETS}.")
    for key, label in (("cold", "first call"), ("warm", "second call")):
        ratios = [e[key] / s[key] for s, e in zip(ship, evid, strict=True)]
        print(
            f"{label:12s}: shipyard {spread([s[key] for s in ship])}, Evidently "
            f"{spread([e[key] for e in evid])}: {statistics.median(ratios):.1f}x faster "
            f"(rounds {min(ratios):.1f}–{max(ratios):.1f}x)"
        )
    if all(s["memory"] and e["memory"] for s, e in zip(ship, evid, strict=True)):
        for key, label in (("process", "peak memory"), ("call", "call memory")):
            mine = [s["memory"][key] for s in ship]
            theirs = [e["memory"][key] for e in evid]
            share = [a / b for a, b in zip(mine, theirs, strict=True)]
            print(
                f"{label:12s}: shipyard {spread(mine, 'MiB', 0)}, Evidently "
                f"{spread(theirs, 'MiB', 0)}: shipyard uses {statistics.median(share):.0%} of "
                f"Evidently's (rounds {min(share):.0%}–{max(share):.0%})"
            )
        print(
            "  (peak: the worker process's resident high-water mark through the first call; "
            "call: its rise during the call)"
        )
    else:
        print("memory      : not measured (needs Linux /proc/self/clear_refs)")
    print(
        f"import      : shipyard {spread([s['import'] for s in ship])}, "
        f"Evidently {spread([e['import'] for e in evid])}"
    )
    expected = sorted(SHIFTED)
    flagged = {"shipyard": ship[0]["drifted"], "Evidently": evid[0]["drifted"]}
    print(f"\nshifted     : {', '.join(expected)}")
    for tool, names in flagged.items():
        extra = sorted(set(names) - set(expected))
        missed = sorted(set(expected) - set(names))
        print(
            f"{tool:12s}: flags {len(names)}: {', '.join(names)}"
            + (f"; also {', '.join(extra)}" if extra else "")
            + (f"; misses {', '.join(missed)}" if missed else "")
        )
    disagree = sorted(set(flagged["shipyard"]) ^ set(flagged["Evidently"]))
    for column in disagree:
        s, e = ship[0]["scores"][column], evid[0]["scores"][column]
        print(
            f"  disagreement on {column}: shipyard {s[0]} {s[1]:.4g} (threshold {s[2]:g}), "
            f"Evidently {e[0]} {e[1]:.4g} (threshold {e[2]:g})"
        )
    if not disagree:
        print("no disagreement")
    print("per column  : column: shipyard statistic / Evidently statistic")
    for column in sorted(ship[0]["scores"]):
        s, e = ship[0]["scores"][column], evid[0]["scores"][column]
        mark = " *" if column in SHIFTED else ""
        print(f"  {column}: {s[0]} {s[1]:.4f} / {e[0]} {e[1]:.4f}{mark}")
    print(f"{WINDOW_ROWS}-row window: shipyard {ship[0]['window']}; Evidently {evid[0]['window']}")


if __name__ == "__main__":
    sys.exit(main())
