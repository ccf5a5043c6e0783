"""Measure a learner's first run: from ``git clone`` to JupyterLab answering, via ``make lab``.

    .venv/bin/python scripts/measure_first_run.py [--repo PATH_OR_URL] [--keep-pip-cache]

Clones the repository into a temporary folder, runs ``make lab`` there (a new ``.venv``
installed from requirements/lock.txt, with pip's cache off unless ``--keep-pip-cache``),
polls JupyterLab's ``/api`` until it answers, stops the lab and prints the time taken and
the machine's load average (a busy machine installs more slowly: report both). Gives up,
saying where it was, after ``--timeout`` seconds (default 1200).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lab_answers(runtime: Path) -> bool:
    """True once a JupyterLab started with this runtime dir answers on /api."""
    for info in runtime.glob("jpserver-*.json"):
        try:
            url = json.loads(info.read_text())["url"].rstrip("/")
            with urllib.request.urlopen(f"{url}/api", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, ValueError, KeyError):
            continue
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", default=str(ROOT), help="what to clone (default: this one)")
    parser.add_argument("--keep-pip-cache", action="store_true", help="let pip use its cache")
    parser.add_argument("--timeout", type=float, default=1200.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="first-run-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(work / "runtime"), BROWSER="true")
        env.pop("VIRTUAL_ENV", None)
        if not args.keep_pip_cache:
            env["PIP_NO_CACHE_DIR"] = "1"
        started = time.monotonic()
        subprocess.run(["git", "clone", "-q", args.repo, str(work / "clone")], check=True)
        log = (work / "make-lab.log").open("w")
        lab = subprocess.Popen(
            ["make", "lab"], cwd=work / "clone", env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            while not lab_answers(work / "runtime"):
                if lab.poll() is not None or time.monotonic() - started > args.timeout:
                    log.flush()
                    tail = (work / "make-lab.log").read_text()[-3000:]
                    print(f"make lab stopped or timed out before answering:\n{tail}",
                          file=sys.stderr)  # fmt: skip
                    return 1
                time.sleep(0.5)  # polling JupyterLab's /api, the state we wait for
            elapsed = time.monotonic() - started
        finally:
            if lab.poll() is None:
                os.killpg(lab.pid, signal.SIGTERM)
                lab.wait(30)
            log.close()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    cache = "pip cache kept" if args.keep_pip_cache else "PIP_NO_CACHE_DIR=1"
    print(f"clone to JupyterLab answering: {elapsed:.1f} s ({cache}; load average {load})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
