"""An upload through a background job vs the same ingest run by the command line.

Usage: python bench/bench_jobs.py [--parcels 200000] [--repeat 2]

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

Each is run `--repeat` times, alternately, and the best time of each is kept (the
machine is shared). Prints the times and the ratio to the command line's time.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parcels", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    from gisportal import jobs
    from gisportal.demo import generate_district
    from gisportal.demo_province import PARCEL_FIELD_NAMES

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parcels = generate_district("678", args.parcels).parcels.rename(
            columns=PARCEL_FIELD_NAMES)
        path = tmp / "thua_dat.gpkg"
        parcels.to_file(path, driver="GPKG")
        size_mib = path.stat().st_size / 1024**2

        cli_runs, job_runs, submits, polls = [], [], [], []
        for run in range(args.repeat):  # alternated, best of each: the machine is shared
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "gisportal", "--home", str(tmp / f"cli{run}"),
                 "ingest", str(path), "--kind", "parcels", "--district", "678"],
                check=True, capture_output=True, text=True).stdout
            cli_runs.append(time.perf_counter() - t)
            assert out.strip().splitlines()[-1].isdigit(), out

            home = tmp / f"jobs{run}"
            t = time.perf_counter()
            with open(path, "rb") as fh:
                job = jobs.submit_upload(home, fh, path.name, district="678",
                                         layer="parcels", actor="bench")
            submits.append(time.perf_counter() - t)
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
            job_runs.append(time.perf_counter() - t)
            assert state.state == "done", state.error
            assert state.result["features"] == args.parcels
        cli_s, job_s, submit_s = min(cli_runs), min(job_runs), min(submits)

    result = {
        "parcels": args.parcels, "file_mib": round(size_mib, 1),
        "cli_ingest_s": round(cli_s, 2), "job_total_s": round(job_s, 2),
        "job_over_cli": round(job_s / cli_s, 2),
        "submit_upload_s": round(submit_s, 3),
        "poll_median_ms": round(statistics.median(polls) * 1000, 2),
        "poll_max_ms": round(max(polls) * 1000, 2), "polls": len(polls),
        "stages_seen": stages,
    }
    print(json.dumps(result, indent=1))
    print(f"job (submit → done, reports included) / command-line ingest = "
          f"{result['job_over_cli']}x; a request waits {result['submit_upload_s']} s for "
          f"submit_upload; a progress poll costs {result['poll_median_ms']} ms (median)")


if __name__ == "__main__":
    main()
