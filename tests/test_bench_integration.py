"""The benchmark for real, kept tiny: a server process with several listeners, client
processes against it, and ``poetrylab bench`` end to end. Poems are short and delays
small, so every run takes a fraction of a second. Nothing asserts how long anything took
on this machine: what is timed is checked against the run's own records (a download that
starts only after the one before it finished, downloads that overlap, a lateness no
larger than the largest), and against lower bounds that a busy machine cannot break (a
poem paced by its server cannot arrive sooner than its pacing allows)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from poetrylab.bench.harness import BenchError, ServerHost, run_client
from poetrylab.bench.results import load_results
from poetrylab.corpus import load_poem
from poetrylab.servers import poem_duration
from poetrylab.testing import read_to_eof, run_cli

POEM = "furuike"  # 77 bytes
NUM_BYTES = 10
DELAY = 0.03
PER_SERVER = poem_duration(len(load_poem(POEM).data), NUM_BYTES, DELAY)  # 0.21 s


@pytest.fixture(scope="module")
def host() -> Iterator[ServerHost]:
    with ServerHost(3, POEM, DELAY, NUM_BYTES) as server_host:
        yield server_host


def test_server_host_serves_the_poem_on_every_listener_and_counts_it(host: ServerHost) -> None:
    host.stats()
    assert len(host.addresses) == 3 and len({a.port for a in host.addresses}) == 3
    for address in host.addresses:
        assert read_to_eof(address, timeout=5) == load_poem(POEM).data
    stats = host.stats()
    assert stats["connections"] == 3 and stats["completed"] == 3
    assert stats["bytes"] == 3 * 77 and stats["open_connections"] == 0
    assert stats["writes"] == 3 * 8 and stats["processes"] == 1
    assert 0 <= stats["mean_final_late_s"] <= stats["max_late_s"], "lateness, not a clock time"


def test_many_servers_spread_over_processes_and_report_as_one() -> None:
    """Five listeners, at most two per process: three processes, one set of statistics."""
    with ServerHost(5, POEM, DELAY, NUM_BYTES, listeners_per_process=2) as spread:
        assert len(spread.processes) == 3 and len(spread.addresses) == 5
        assert len({a.port for a in spread.addresses}) == 5
        spread.stats()
        for address in spread.addresses:
            assert read_to_eof(address, timeout=5) == load_poem(POEM).data
        stats = spread.stats()
        assert stats["processes"] == 3 and stats["completed"] == 5 and stats["writes"] == 5 * 8
        assert stats["bytes"] == 5 * 77 and stats["cpu_s"] >= 0
    assert all(p.returncode == 0 for p in spread.processes)


def test_a_server_process_refuses_more_listeners_than_its_file_limit_allows() -> None:
    with pytest.raises(BenchError, match="file descriptors"):
        ServerHost(40_000, POEM, DELAY, NUM_BYTES, listeners_per_process=40_000, timeout=30)


def test_blocking_takes_the_sum_and_asynchronous_clients_take_the_slowest(host: ServerHost) -> None:
    results = {
        client: run_client(client, host.addresses, timeout=10, process_timeout=60,
                           delay=DELAY, num_bytes=NUM_BYTES, ideal_s=PER_SERVER)
        for client in ("blocking", "select", "twisted", "asyncio")
    }  # fmt: skip
    for client, record in results.items():
        assert record["error"] is None, (client, record["error"])
        assert record["bytes"] == 3 * 77 and record["errors"] == 0 and record["poems"] == 3
        assert record["poems_per_s"] == pytest.approx(3 / record["elapsed_s"])
        phases = record["phases"]
        assert phases is not None and phases["chunks"] >= 3
        total = phases["connect_s"] + phases["transfer_s"] + phases["finish_s"]
        assert total == pytest.approx(record["elapsed_s"], abs=1e-6)
        assert phases["peak_threads"] is not None and phases["peak_threads"] >= 1
        assert phases["cpu_transfer_s"] is not None, "the harness sampled the client's CPU"
        assert record["model"] == ("deferred" if client == "twisted" else client)
        assert record["cpu_s"] >= 0 and record["peak_rss_mb"] > 1
        assert record["process_s"] > record["elapsed_s"]
        assert [t["task"] for t in record["timeline"]] == [1, 2, 3]
        assert all(len(t["chunks"]) >= 1 for t in record["timeline"])
    # The sum: three paced poems, one after the other (the next test checks the order).
    assert results["blocking"]["elapsed_s"] >= 0.95 * 3 * PER_SERVER
    # The slowest: every download is under way before any of them has finished.
    for client in ("select", "twisted", "asyncio"):
        timeline = results[client]["timeline"]
        assert max(t["connected"] for t in timeline) < min(t["finished"] for t in timeline), (
            f"{client} did not download the three poems at the same time"
        )
        assert results[client]["elapsed_s"] >= 0.95 * PER_SERVER


def test_blocking_client_connects_to_each_server_only_when_its_turn_comes(host: ServerHost) -> None:
    """Otherwise the kernel would buffer the later poems while the first one trickled in."""
    record = run_client("blocking", host.addresses, timeout=10, process_timeout=60)
    timeline = record["timeline"]
    for before, after in zip(timeline, timeline[1:], strict=False):
        assert after["connected"] >= before["finished"]
        first_chunk, last_chunk = after["chunks"][0][0], after["chunks"][-1][0]
        assert last_chunk - first_chunk >= 0.9 * PER_SERVER  # it really waited for each chunk


def test_a_refused_server_is_a_failed_download_not_a_crash(host: ServerHost) -> None:
    with ServerHost(1, POEM, DELAY, NUM_BYTES) as gone:
        address = gone.addresses[0]
    record = run_client("twisted", [host.addresses[0], address], timeout=5, process_timeout=60)
    assert record["errors"] == 1 and "refused" in record["error"]
    assert record["elapsed_s"] is not None and record["bytes"] == 77


def test_a_client_process_that_fails_is_recorded_with_its_reason() -> None:
    record = run_client("select", ["not-an-address"], timeout=5, process_timeout=60)
    assert record["elapsed_s"] is None and record["timeline"] == []
    assert (record["error"] or "").startswith(
        "client process failed (status 2): client_run: bad request"
    )


def test_server_host_reports_a_bad_poem_instead_of_hanging() -> None:
    with pytest.raises(BenchError, match="exited with status"):
        ServerHost(1, "no-such-poem", DELAY, NUM_BYTES, timeout=20)


def test_threads_that_run_out_of_memory_are_a_measured_limit(host: ServerHost) -> None:
    """In a client process allowed 200 MB of address space beyond what it has after its
    imports (8 MB of stack per thread), 64 threads cannot all start: the run records the
    limit and the downloads that ran."""
    code = (
        "import resource, sys\n"
        "import poetrylab.bench.client_run, poetrylab.clients.threaded\n"
        "size = [int(line.split()[1]) for line in open('/proc/self/status')\n"
        "        if line.startswith('VmSize:')][0] * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + 200 * 2**20, resource.RLIM_INFINITY))\n"
        "sys.exit(poetrylab.bench.client_run.main())\n"
    )
    request = {"model": "threaded", "addresses": [str(host.addresses[0])] * 64, "timeout": 10}
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(request),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["limit"] and "could not even start" in result["limit"], result["limit"]
    assert "can't start new thread" in result["limit"]
    assert 0 < result["poems"] < 64 and result["errors"] == 64 - result["poems"]


def test_server_host_exits_when_its_stdin_closes() -> None:
    host = ServerHost(2, POEM, DELAY, NUM_BYTES, listeners_per_process=1)
    host.stop()
    assert [p.returncode for p in host.processes] == [0, 0]


def test_bench_cli_measures_writes_json_and_figures_and_prints_a_table(tmp_path: Path) -> None:
    out, plot = tmp_path / "r.json", tmp_path / "fig.png"
    done = run_cli([
        "bench", "--clients", "blocking,threaded,twisted", "--servers", "1,2",
        "--delay", "0.01", "--num-bytes", "40", "--poem", POEM, "--repeats", "1",
        "--out", str(out), "--plot", str(plot),
    ], timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = load_results(out)
    params = results["parameters"]
    assert params["poem"] == POEM and params["poem_bytes"] == 77 and params["delay"] == 0.01
    assert params["servers"] == [1, 2] and params["repeats"] == 1 and params["cpu_count"] >= 1
    assert params["models"]["twisted"] == "deferred"
    assert results["command"].startswith("poetrylab bench --clients blocking,threaded,twisted")
    assert [(r["client"], r["n_servers"]) for r in results["runs"]] == [
        ("blocking", 1), ("threaded", 1), ("twisted", 1),
        ("blocking", 2), ("threaded", 2), ("twisted", 2),
    ]  # fmt: skip
    assert all(r["bytes"] == 77 * r["n_servers"] and r["errors"] == 0 for r in results["runs"])
    assert {e["n_servers"]: e["sequential_s"] for e in results["ideal"]} == {
        1: pytest.approx(0.01), 2: pytest.approx(0.02)
    }
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["client", "N"]
    assert sum(line.startswith(("blocking", "threaded", "twisted")) for line in lines) == 6
    assert "[6/6] twisted N=2 repeat 1" in done.stderr
    assert done.stderr.startswith("poetrylab bench: ") and "usable CPU" in done.stderr
    assert results["machine"]["load_before"] and results["parameters"]["usable_cpus"] > 0
    assert all(r["phases"] is not None and r["poems"] == r["n_servers"] for r in results["runs"])
    for name in ("fig.png", "fig-timelines.png", "fig-time.png", "fig-throughput.png",
                 "fig-cpu.png", "fig-per-connection.png", "fig-phases.png"):
        assert (tmp_path / name).stat().st_size > 1000

    again = run_cli(["bench", "--load", str(out)], timeout=60)
    assert again.returncode == 0 and again.stdout == done.stdout


def test_bench_cli_rejects_an_unknown_client_in_one_line() -> None:
    done = run_cli(["bench", "--clients", "blocking,carrier-pigeon"], timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "poetrylab bench: error: unknown client 'carrier-pigeon': choose from blocking, "
        "threaded, select, twisted, asyncio, reactor, protocol, inline, coroutine"
    ]


def test_client_run_reads_one_request_and_prints_json(host: ServerHost) -> None:
    request = {"model": "threaded", "addresses": [str(a) for a in host.addresses[:2]]}
    done = subprocess.run(
        [sys.executable, "-m", "poetrylab.bench.client_run"], input=json.dumps(request),
        capture_output=True, text=True, timeout=60,
    )
    result = json.loads(done.stdout)
    assert result["bytes"] == 2 * 77 and result["errors"] == 0
    assert result["fd_limit"] >= 1024
    assert [d["bytes"] for d in result["downloads"]] == [77, 77]


def test_peak_memory_is_the_clients_own_not_inherited_from_a_big_parent() -> None:
    """ru_maxrss of a child forked from a 150 MB parent says >= 150 MB; VmHWM does not."""
    parent = (
        "import subprocess, sys\n"
        "ballast = bytearray(150 * 1024 * 1024)\n"
        "ballast[::4096] = b'x' * len(ballast[::4096])\n"
        "child = 'from poetrylab.bench._system import peak_rss_mb; print(peak_rss_mb())'\n"
        "out = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True)\n"
        "print(out.stdout)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=60
    )
    assert 1 < float(done.stdout) < 100, done.stdout + done.stderr
