"""``poetrylab bench``: measure the client models against N slow servers (notebook 17).

    poetrylab bench --clients blocking,threaded,select,twisted,asyncio \\
        --servers 1,2,4,8,16 --delay 0.05 --num-bytes 10 --poem hope --repeats 3 \\
        --out results.json --plot figure.png

first compares the machine's load with the CPUs this process may use and says plainly,
on stderr, when the figures will be distorted; then runs the sweep (a tqdm progress bar
on stderr), writes the results JSON, draws the figures (PNG) and prints a summary table.
``--load results.json`` re-draws and re-summarises a saved file without measuring
anything.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from poetrylab.bench.harness import DEFAULT_CLIENTS, BenchConfig, estimate_seconds, plan, run_bench
from poetrylab.bench.results import (
    BenchResults,
    format_table,
    load_results,
    save_results,
    summarise,
)

__all__ = ["configure_parser", "run"]

_DEFAULTS = BenchConfig()


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers")
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"server counts must be >= 1, not {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one client")
    return names


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser``."""
    d = _DEFAULTS
    parser.add_argument(
        "--clients", type=_name_list, default=list(DEFAULT_CLIENTS), metavar="A,B,...",
        help=f"clients to compare (default {','.join(DEFAULT_CLIENTS)}; 'twisted' is the "
             "Deferred client; any model from 'poetrylab get --help' works too)",
    )
    parser.add_argument(
        "--servers", type=_int_list, default=d.servers, metavar="N,N,...",
        help=f"numbers of servers to try (default {','.join(map(str, d.servers))})",
    )
    parser.add_argument("--delay", type=float, default=d.delay,
                        help=f"seconds between chunks (default {d.delay})")
    parser.add_argument("--num-bytes", type=int, default=d.num_bytes,
                        help=f"bytes per chunk (default {d.num_bytes})")
    parser.add_argument("--poem", default=d.poem,
                        help=f"poem every server sends: corpus name or file (default {d.poem})")
    parser.add_argument("--repeats", type=int, default=d.repeats,
                        help=f"runs per client and N (default {d.repeats})")
    parser.add_argument("--out", default="bench-results.json", metavar="RESULTS.json",
                        help="where to write the results (default bench-results.json)")
    parser.add_argument("--plot", metavar="FIGURE.png",
                        help="draw the figures: FIGURE.png (overview) and FIGURE-timelines, "
                             "-time, -throughput, -efficiency, -cpu, -per-connection, "
                             "-phases.png")
    parser.add_argument("--pacing", choices=("timetable", "classic"), default=d.pacing,
                        help="server pacing: a fixed timetable (default) or the course's "
                             "chunk-after-chunk callLater server, which drifts when busy")
    parser.add_argument("--max-run-seconds", type=float, default=d.max_run_s, metavar="S",
                        help=f"skip runs whose ideal time is longer (default {d.max_run_s:g})")
    parser.add_argument("--chunks-max-servers", type=int, default=d.chunks_max_servers,
                        metavar="N", help="keep chunk timelines for runs with at most N "
                        f"servers (default {d.chunks_max_servers})")
    parser.add_argument("--listeners-per-process", type=int,
                        default=d.listeners_per_process, metavar="N",
                        help="listeners per server process (default "
                             f"{d.listeners_per_process}): N servers need 2N descriptors")
    parser.add_argument("--load", metavar="RESULTS.json",
                        help="measure nothing: summarise (and --plot) a saved results file")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``poetrylab bench``; return the exit status (130 if interrupted)."""
    if args.load:
        results = load_results(args.load)
    else:
        results = _measure(args)
        path = save_results(results, args.out)
        print(f"results: {path}", file=sys.stderr)
    if results["machine"].get("busy"):
        print(f"note: measured while {results['machine']['busy']}", file=sys.stderr)
    print(format_table(summarise(results)))
    for skip in results["skipped"]:
        print(f"skipped {skip['client']} at N={skip['n_servers']}: {skip['reason']}")
    if args.plot:
        from poetrylab.bench.figures import save_all_figures

        for written in save_all_figures(results, args.plot):
            print(f"figure: {written}", file=sys.stderr)
    if results.get("interrupted"):
        print("poetrylab bench: interrupted; the results hold the runs done so far",
              file=sys.stderr)
        return 130
    return 0


def _measure(args: argparse.Namespace) -> BenchResults:
    from poetrylab.bench._progress import SweepProgress
    from poetrylab.bench._system import machine_load
    from poetrylab.corpus import load_poem
    from poetrylab.servers import poem_duration

    config = BenchConfig(
        clients=args.clients, servers=args.servers, poem=args.poem, delay=args.delay,
        num_bytes=args.num_bytes, repeats=args.repeats, pacing=args.pacing,
        max_run_s=args.max_run_seconds, chunks_max_servers=args.chunks_max_servers,
        listeners_per_process=args.listeners_per_process,
    )
    config.check()
    per_server = poem_duration(len(load_poem(config.poem).data), config.num_bytes, config.delay)
    runs, skipped = plan(config, per_server)
    load = machine_load()
    print(f"poetrylab bench: {load.describe()}", file=sys.stderr)
    if not args.quiet:
        print(
            f"{len(runs)} runs ({len(skipped)} skipped), each server {per_server:.2f} s; "
            f"about {estimate_seconds(runs) / 60:.1f} min. Ctrl-C stops and keeps what is done.",
            file=sys.stderr,
        )
    given = sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:]
    command = "poetrylab bench " + shlex.join(given)
    if args.quiet:
        return run_bench(config, command=command)
    with SweepProgress() as progress:
        return run_bench(config, progress=progress, command=command)


def main(argv: list[str] | None = None) -> int:
    """Run as ``python -m poetrylab.bench.cli``: the same as ``poetrylab bench``."""
    parser = argparse.ArgumentParser(prog="poetrylab bench")
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
