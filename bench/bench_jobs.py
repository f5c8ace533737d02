"""An upload through a background job vs the same ingest run by the command line.

Usage: python bench/bench_jobs.py [--parcels 200000] [--runs 3]

Generates one demo district (Đức Trọng) with N parcels as a GeoPackage with the national
field names, then measures in the same run:

* ``gisportal ingest FILE`` in a fresh process (the pipeline in its own process, as
  the command line runs it): the baseline;
* the same file as the web layer will send it: ``jobs.submit_upload`` (streams the file
  into the data home and queues the job) then polling ``jobs.get`` until the worker is
  done — the job's whole cost, worker start-up, progress writes and the three report
  files included;
* ``submit_upload`` alone (what a request waits for) and ``jobs.get`` (what each
  progress poll costs the web server) while the worker runs.

Each is run ``--runs`` times (``--repeat`` is the old name; default 3), alternately, so
both see the same machine state. Prints the median of each with the range of the runs
and the machine's load, and the ratio to the command line's time (ratio of the medians,
range of the per-run ratios).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from bench._measure import Runs, print_peers, ratio
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Runs, print_peers, ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parcels", type=int, default=200_000)
    ap.add_argument("--runs", "--repeat", dest="runs", type=int, default=3,
                    help="runs of each, alternated; the median counts (default 3)")
    args = ap.parse_args()

    from gisportal import jobs
    from gisportal.demo import generate_district
    from gisportal.services.demo import PARCEL_FIELD_NAMES

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parcels = generate_district("678", args.parcels).parcels.rename(
            columns=PARCEL_FIELD_NAMES)
        path = tmp / "thua_dat.gpkg"
        parcels.to_file(path, driver="GPKG")
        size_mib = path.stat().st_size / 1024**2

        runs, polls = Runs(), []
        for run in range(args.runs):  # alternated: both see the same machine state
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "gisportal", "--home", str(tmp / f"cli{run}"),
                 "ingest", str(path), "--kind", "parcels", "--district", "678"],
                check=True, capture_output=True, text=True).stdout
            runs.add("cli", time.perf_counter() - t)
            assert out.strip().splitlines()[-1].isdigit(), out

            home = tmp / f"jobs{run}"
            t = time.perf_counter()
            with open(path, "rb") as fh:
                job = jobs.submit_upload(home, fh, path.name, district="678",
                                         layer="parcels", actor="bench")
            runs.add("submit", time.perf_counter() - t)
            stages: list[str] = []
            while True:
                p = time.perf_counter()
                state = jobs.get(home, job.id)
                polls.append(time.perf_counter() - p)
                if not stages or stages[-1] != state.stage:
                    stages.append(state.stage)
                if state.finished:
                    break
                time.sleep(0.1)
            runs.add("job", time.perf_counter() - t)
            assert state.state == "done", state.error
            assert state.result["features"] == args.parcels
        runs.close()
    cli, job, submit = runs["cli"], runs["job"], runs["submit"]
    over = ratio(job, cli)
    result = {
        "parcels": args.parcels, "file_mib": round(size_mib, 1),
        "cli_ingest_s": cli.as_dict(3), "job_total_s": job.as_dict(3),
        "job_over_cli": over.as_dict(), "submit_upload_s": submit.as_dict(3),
        "poll_median_ms": round(statistics.median(polls) * 1000, 2),
        "poll_max_ms": round(max(polls) * 1000, 2), "polls": len(polls),
        "stages_seen": stages,
    }
    print(json.dumps(result, indent=1))
    print_peers()
    print(f"command-line ingest {cli.text()}")
    print(f"job, submit → done  {job.text()}")
    print(f"job (submit → done, reports included) / command-line ingest = {over.text()}; "
          f"a request waits {submit.text()} for submit_upload; a progress poll costs "
          f"{result['poll_median_ms']} ms (median of all {len(polls)} polls)")


if __name__ == "__main__":
    main()
