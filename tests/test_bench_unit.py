"""The benchmark without real time: ideal-time maths, the run plan, the typed results and
their one checker, the timetable server on a ``task.Clock``, phases and CPU sampling, the
machine's load, the summary table, the progress hook and the figures (drawn from
made-up results, rendered to PNG bytes)."""

from __future__ import annotations

import io
import json
import math
import random
import statistics
from pathlib import Path
from typing import Any, cast

import pytest
from figure_checks import layout_problems
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from poetrylab.bench import figures
from poetrylab.bench._progress import SweepProgress
from poetrylab.bench._system import MachineLoad, usable_cpus
from poetrylab.bench.harness import (
    BenchConfig,
    PlannedRun,
    _record,
    estimate_seconds,
    model_for,
    plan,
    record_from_downloads,
)
from poetrylab.bench.ideal import (
    efficiency,
    ideal_concurrent,
    ideal_for,
    ideal_poems_per_s,
    ideal_sequential,
    server_times,
)
from poetrylab.bench.phases import cpu_between, phase_windows, phases_of, with_cpu
from poetrylab.bench.results import (
    SCHEMA,
    BenchResults,
    RunRecord,
    check_results,
    compact_results,
    format_table,
    load_results,
    median_run,
    save_results,
    summarise,
)
from poetrylab.bench.server_host import ServerStats, build_factory
from poetrylab.download import Address, Download
from poetrylab.pictures import Picture

# ---------------------------------------------------------------- ideal times


def test_per_server_time_is_the_paced_chunks_after_the_first() -> None:
    assert server_times(100, 10, 0.05, 3) == [pytest.approx(0.45)] * 3
    assert server_times(101, 10, 0.05, 1) == [pytest.approx(0.5)]
    assert server_times(5, 10, 0.05, 2) == [0.0, 0.0]
    assert server_times(100, 10, 0.05, 0) == []


def test_blocking_ideal_is_the_sum_and_concurrent_ideal_is_the_slowest() -> None:
    times = [1.0, 3.0, 2.0]
    assert ideal_sequential(times) == 6.0
    assert ideal_concurrent(times) == 3.0
    assert ideal_for("blocking", times) == 6.0
    for client in ("threaded", "select", "twisted", "asyncio", "deferred"):
        assert ideal_for(client, times) == 3.0
    assert ideal_concurrent([]) == 0.0 and ideal_sequential([]) == 0.0


def test_ideal_throughput_is_flat_for_blocking_and_grows_with_n_when_concurrent() -> None:
    assert ideal_poems_per_s("blocking", 1, 1.5) == pytest.approx(1 / 1.5)
    assert ideal_poems_per_s("blocking", 1000, 1.5) == pytest.approx(1 / 1.5)
    assert ideal_poems_per_s("twisted", 1000, 1.5) == pytest.approx(1000 / 1.5)
    assert ideal_poems_per_s("threaded", 10, 0.0) is None


def test_efficiency_is_ideal_over_measured() -> None:
    assert efficiency(5.0, 5.0) == 1.0
    assert efficiency(5.0, 5.25) == pytest.approx(0.952, abs=1e-3)
    assert efficiency(5.0, 0.0) is None


def test_negative_server_count_is_refused() -> None:
    with pytest.raises(ValueError, match="n_servers"):
        server_times(10, 1, 0.1, -1)


# ---------------------------------------------------------------- plan and config


def test_twisted_means_the_deferred_client_and_any_model_name_is_accepted() -> None:
    assert model_for("twisted") == "deferred"
    assert model_for("protocol") == "protocol"
    with pytest.raises(ValueError, match="unknown client 'nope'.*twisted"):
        model_for("nope")


def test_plan_goes_repeat_by_repeat_and_skips_runs_over_the_time_limit() -> None:
    config = BenchConfig(clients=["blocking", "twisted"], servers=[4, 1], repeats=2, max_run_s=3.0)
    runs, skipped = plan(config, server_time=1.0)
    assert [(r.repeat, r.n_servers, r.client) for r in runs] == [
        (0, 1, "blocking"), (0, 1, "twisted"), (0, 4, "twisted"),
        (1, 1, "blocking"), (1, 1, "twisted"), (1, 4, "twisted"),
    ]  # fmt: skip
    assert [r.ideal_s for r in runs[:3]] == [1.0, 1.0, 1.0]
    assert len(skipped) == 1
    assert skipped[0]["client"] == "blocking" and skipped[0]["n_servers"] == 4
    assert "over the 3 s limit" in skipped[0]["reason"]
    assert estimate_seconds(runs, startup_s=0.5) == pytest.approx(9.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"clients": []}, "at least one client"),
        ({"clients": ["twisted", "twisted"]}, "named twice"),
        ({"clients": ["telnet"]}, "unknown client"),
        ({"servers": [0]}, ">= 1"),
        ({"servers": []}, ">= 1"),
        ({"delay": -1.0}, "delay"),
        ({"num_bytes": 0}, "num_bytes"),
        ({"repeats": 0}, "repeats"),
        ({"pacing": "jittery"}, "pacing"),
        ({"max_run_s": 0.0}, "max_run_s"),
    ],
)
def test_a_bad_config_is_refused_with_a_reason(change: dict[str, Any], message: str) -> None:
    config = BenchConfig(**change)
    with pytest.raises(ValueError, match=message):
        config.check()


# ---------------------------------------------------------------- timetable server


def _connect(
    pacing: str,
    poem: bytes = b"abcdefghij",
    delay: float = 1.0,
    num_bytes: int = 2,
    epoch: float = 0.0,
) -> tuple[Clock, Any, Any, StringTransport]:
    clock = Clock()
    clock.advance(epoch)
    factory = build_factory(clock, poem, delay, num_bytes, pacing)
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return clock, factory, protocol, transport


def test_timetable_server_sends_the_first_chunk_at_once_then_one_per_delay() -> None:
    clock, factory, protocol, transport = _connect("timetable")
    assert transport.value() == b"ab"
    clock.advance(1.0)
    assert transport.value() == b"abcd"
    clock.advance(1.0)
    clock.advance(1.0)
    assert not transport.disconnecting
    clock.advance(1.0)
    assert transport.value() == b"abcdefghij"
    assert transport.disconnecting
    assert factory.stats.completed == 1 and factory.stats.writes == 5
    assert factory.stats.max_late_s == 0.0
    assert not clock.getDelayedCalls(), "the loop stops after the last chunk"


@pytest.mark.parametrize("epoch", [0.0, 1.7e9])
def test_timetable_server_keeps_every_slot_with_a_wall_clock_sized_clock(epoch: float) -> None:
    """With seconds since 1970 and a 0.05 s delay, LoopingCall.withCount skips slots
    (rounding); the timetable must not: 10 chunks in 9 delays, one per wake-up."""
    clock, factory, _, transport = _connect("timetable", b"x" * 376, 0.05, 40, epoch)
    sizes = [len(transport.value())]
    for _ in range(9):
        clock.advance(0.05)
        sizes.append(len(transport.value()))
    assert sizes == [40 * k for k in range(1, 10)] + [376]
    assert transport.disconnecting and factory.stats.writes == 10


def test_timetable_server_catches_up_in_one_write_when_it_wakes_late() -> None:
    clock, factory, protocol, transport = _connect("timetable")
    clock.advance(3.25)  # woke 2.25 s late: chunks 1, 2 and 3 are all due
    assert transport.value() == b"abcdefgh"
    assert factory.stats.writes == 2
    assert factory.stats.max_late_s == pytest.approx(0.25)
    clock.advance(0.75)  # back on the timetable: chunk 4 is due at t = 4
    assert transport.value() == b"abcdefghij" and transport.disconnecting
    assert factory.stats.final_late_s == pytest.approx(0.0)


def test_course_server_drifts_where_the_timetable_server_does_not() -> None:
    """Each late wake-up pushes every later chunk of the classic server back."""
    finishing = {}
    for pacing in ("classic", "timetable"):
        clock, factory, protocol, transport = _connect(pacing, poem=b"x" * 10, num_bytes=1)
        while clock.getDelayedCalls():  # the reactor wakes 0.1 s after each call is due
            due = min(call.getTime() for call in clock.getDelayedCalls())
            clock.advance(due - clock.seconds() + 0.1)
        assert transport.value() == b"x" * 10
        finishing[pacing] = clock.seconds()
    assert finishing["timetable"] == pytest.approx(9.1)  # 9 chunks after the first, + 0.1
    assert finishing["classic"] == pytest.approx(9.9)  # 9 x (1.0 + 0.1)


def test_timetable_server_stops_its_timer_when_the_client_hangs_up() -> None:
    clock, factory, protocol, transport = _connect("timetable")
    assert clock.getDelayedCalls()
    protocol.connectionLost(None)
    assert not clock.getDelayedCalls()
    assert factory.connections == 0


def test_zero_delay_sends_the_whole_poem_at_once() -> None:
    clock, factory, protocol, transport = _connect("timetable", delay=0.0)
    assert transport.value() == b"abcdefghij" and transport.disconnecting
    assert not clock.getDelayedCalls()


def test_server_stats_report_the_mean_final_lateness() -> None:
    stats = ServerStats()
    stats.wrote(10, 0.5, last=False)
    stats.wrote(10, 0.25, last=True)
    stats.wrote(10, 0.75, last=True)
    report = stats.report()
    assert report["writes"] == 3 and report["bytes"] == 30 and report["completed"] == 2
    assert report["max_late_s"] == 0.75
    assert report["mean_final_late_s"] == pytest.approx(0.5)


def test_unknown_pacing_is_refused() -> None:
    with pytest.raises(ValueError, match="pacing"):
        build_factory(Clock(), b"x", 0.1, 1, "lazy")


# ---------------------------------------------------------------- phases


def _download(task: int, started: float, connected: float | None, chunks: list[tuple[float, int]],
              finished: float, error: str | None = None) -> Download:
    d = Download(Address("127.0.0.1", 4000 + task), client="x", task=task)
    d.start(started)
    if connected is not None:
        d.connect(connected)
    for t, size in chunks:
        d.receive(b"x" * size, t)
    d.finish(error, finished)
    return d


def test_concurrent_phases_follow_the_last_connection_and_the_last_chunk() -> None:
    downloads = [
        _download(1, 10.0, 10.1, [(10.2, 10), (11.2, 10)], 11.25),
        _download(2, 10.0, 10.5, [(10.6, 10), (11.6, 10), (11.9, 5)], 11.95),
    ]
    phases = phases_of(downloads, start=10.0, elapsed=2.0, delay=1.0, num_bytes=10)
    assert phases["connect_s"] == pytest.approx(0.5)
    assert phases["transfer_s"] == pytest.approx(1.4)
    assert phases["finish_s"] == pytest.approx(0.1)
    assert phases["connect_s"] + phases["transfer_s"] + phases["finish_s"] == pytest.approx(2.0)
    assert phases["connect_mean_ms"] == pytest.approx(300)
    assert phases["chunks"] == 5
    assert phases["transfer_chunks"] == 4, "the chunks after the last connection was made"
    # chunk lags: 0.1, 0.1 (task 1); 0.1, 0.1 and the 5-byte tail of chunk 2: 11.9 - 12.5
    assert phases["chunk_lag_max_ms"] == pytest.approx(100)
    assert phases["chunk_lag_mean_ms"] == pytest.approx(1000 * (0.4 - 0.6) / 5)
    assert phases["cpu_connect_s"] is None


def test_sequential_phases_add_up_one_window_per_download() -> None:
    downloads = [
        _download(1, 0.0, 0.1, [(0.2, 10), (1.2, 10)], 1.3),
        _download(2, 1.3, 1.5, [(1.6, 10), (2.6, 10)], 2.65),
    ]
    phases = phases_of(downloads, start=0.0, elapsed=2.7, sequential=True)
    assert phases["connect_s"] == pytest.approx(0.3)
    assert phases["transfer_s"] == pytest.approx(2.2)
    assert phases["finish_s"] == pytest.approx(0.2)
    concurrent = phases_of(downloads, start=0.0, elapsed=2.7)
    assert concurrent["connect_s"] == pytest.approx(1.5), "the concurrent view differs"


def test_cpu_is_interpolated_between_samples_and_none_outside_them() -> None:
    samples = [(0.0, 1.0), (1.0, 1.5), (2.0, 3.5)]
    assert cpu_between(samples, 0.5, 1.5) == pytest.approx((1.5 - 1.25) + (2.5 - 1.5))
    assert cpu_between(samples, -0.1, 1.0) is None
    assert cpu_between(samples, 1.0, 2.5) is None
    assert cpu_between([(0.0, 1.0)], 0.0, 0.0) is None


def test_cpu_phases_sum_each_phases_windows() -> None:
    downloads = [_download(1, 100.0, 100.2, [(100.5, 10)], 101.0)]
    phases = phases_of(downloads, start=100.0, elapsed=1.0)
    windows = phase_windows(downloads, 100.0, 1.0)
    samples = [(100.0 + t / 10, t / 10) for t in range(11)]  # one CPU second per second
    full = with_cpu(phases, windows, samples, start=100.0, peak_threads=3)
    assert full["cpu_connect_s"] == pytest.approx(0.2)
    assert full["cpu_transfer_s"] == pytest.approx(0.3)
    assert full["cpu_finish_s"] == pytest.approx(0.5)
    assert full["peak_threads"] == 3 and phases["cpu_connect_s"] is None


# ---------------------------------------------------------------- the machine


def _cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> float:
    (tmp_path / "cgroup").write_text(proc)
    for name, text in files.items():
        path = tmp_path / "fs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return usable_cpus(tmp_path / "cgroup", tmp_path / "fs")


def test_usable_cpus_follow_a_cgroup_quota_v2_and_v1(tmp_path: Path) -> None:
    import os

    mine = len(os.sched_getaffinity(0))
    assert _cgroup(tmp_path, "0::/pod\n", {"pod/cpu.max": "max 100000\n"}) == mine
    assert _cgroup(tmp_path, "0::/pod\n", {"pod/cpu.max": "50000 100000\n"}) == 0.5
    v1 = {"cpu,cpuacct/hub/cpu.cfs_quota_us": "150000\n",
          "cpu,cpuacct/hub/cpu.cfs_period_us": "100000\n"}  # fmt: skip
    assert _cgroup(tmp_path, "4:cpu,cpuacct:/hub\n", v1) == min(mine, 1.5)
    assert _cgroup(tmp_path, "4:cpu:/none\n", {}) == mine


def test_a_busy_machine_is_named_with_its_load_and_a_quiet_one_is_not() -> None:
    quiet = MachineLoad((0.6, 0.5, 0.4), cpus=2)
    assert quiet.busy is None and "quiet enough" in quiet.describe()
    busy = MachineLoad((1.2, 0.5, 0.4), cpus=2)
    assert busy.busy is not None
    assert "1.20 on 2 usable CPUs" in busy.busy and "distorted" in busy.busy
    assert MachineLoad((0.6, 0.0, 0.0), cpus=1).busy is not None, "per usable CPU"


# ---------------------------------------------------------------- made-up results

CLIENTS = ["blocking", "threaded", "select", "twisted", "asyncio"]


def _timeline(client: str, n: int, per_server: float, delay: float, chunks: bool) -> list[Any]:
    out = []
    for task in range(1, n + 1):
        start = (task - 1) * per_server if client == "blocking" else 0.001 * task
        times = [start + 0.001 + k * delay for k in range(round(per_server / delay) + 1)]
        entry: dict[str, Any] = {
            "address": f"127.0.0.1:{4000 + task}", "client": model_for(client), "task": task,
            "started": start, "connected": start + 0.0005, "finished": times[-1] + 0.0002,
            "bytes": 10 * len(times), "error": None,
        }  # fmt: skip
        if chunks:
            entry["chunks"] = [[t, 10] for t in times]
        else:
            entry["n_chunks"] = len(times)
        out.append(entry)
    return out


def _phases(elapsed: float, cpu: float) -> Any:
    return {"connect_s": 0.1 * elapsed, "transfer_s": 0.85 * elapsed, "finish_s": 0.05 * elapsed,
            "connect_mean_ms": 1.0, "chunk_lag_mean_ms": 0.5, "chunk_lag_max_ms": 3.0,
            "chunks": 11, "transfer_chunks": 8, "cpu_connect_s": 0.3 * cpu,
            "cpu_transfer_s": 0.6 * cpu, "cpu_finish_s": 0.1 * cpu, "peak_threads": 1}  # fmt: skip


def fake_results(
    servers: tuple[int, ...] = (1, 2, 4, 16),
    overhead: float = 0.01,
    seed: int = 1,
    fail: tuple[str, int] | None = None,
    limit: tuple[str, int] | None = None,
    repeats: int = 2,
) -> BenchResults:
    """Results shaped like run_bench's, with plausible numbers and no measuring."""
    rng = random.Random(seed)
    delay, per_server = 0.05, 0.5
    runs: list[RunRecord] = []
    for repeat in range(repeats):
        for n in servers:
            for client in CLIENTS:
                ideal = per_server * n if client == "blocking" else per_server
                elapsed = ideal * (1 + overhead * (1 + math.log2(n)) * rng.uniform(0.8, 1.2))
                cpu = 0.002 * n * (5 if client == "threaded" else 1) * rng.uniform(0.9, 1.1)
                if fail == (client, n) and repeat == 1:
                    run = _record(client, n, repeat, ideal, 110 * n, process_s=0.4,
                                  error="client process failed (status 1): boom")
                elif limit == (client, n):
                    run = _record(client, n, repeat, ideal, 110 * n, elapsed_s=elapsed, cpu_s=cpu,
                                  bytes=50 * n, poems=n // 2, errors=n - n // 2,
                                  error="no thread for this download: can't start new thread",
                                  limit=f"{n - n // 2} of {n} downloads could not even start")
                else:
                    run = _record(
                        client, n, repeat, ideal, 110 * n, elapsed_s=elapsed,
                        process_s=elapsed + 0.3, cpu_s=cpu, cpu_total_s=0.3 + cpu,
                        peak_rss_mb=30.0 + n / 10, bytes=110 * n, poems=n, errors=0,
                        phases=_phases(elapsed, cpu), chunks_stored=n <= 8,
                        timeline=_timeline(client, n, per_server, delay, n <= 8),
                    )  # fmt: skip
                run["server"] = {"connections": n, "completed": n, "writes": 11 * n,
                                 "bytes": 110 * n, "max_late_s": 0.002, "final_late_s": 0.001 * n,
                                 "mean_final_late_s": 0.001, "open_connections": 0,
                                 "cpu_s": 0.01 * n, "processes": 1}  # fmt: skip
                runs.append(run)
    results = {
        "schema": SCHEMA,
        "parameters": {
            "clients": CLIENTS, "servers": list(servers), "poem": "hope", "delay": delay,
            "num_bytes": 10, "repeats": repeats, "pacing": "timetable", "max_run_s": 60.0,
            "chunks_max_servers": 8, "models": {c: model_for(c) for c in CLIENTS},
            "poem_bytes": 110, "server_time_s": per_server, "listeners_per_process": 2500,
            "python": "3.11.7", "twisted": "26.10.0", "cpu_count": 2, "usable_cpus": 2.0,
            "platform": "Linux",
        },
        "ideal": [{"n_servers": n, "sequential_s": per_server * n, "concurrent_s": per_server}
                  for n in servers],
        "machine": {"load_before": [0.1, 0.1, 0.1], "started_at": "2026-12-01T12:00:00+0000"},
        "command": None,
        "runs": runs,
        "skipped": [],
        "interrupted": False,
    }  # fmt: skip
    return check_results(results)


def test_made_up_results_pass_the_checker_and_survive_a_round_trip(tmp_path: Path) -> None:
    results = fake_results()
    path = save_results(results, tmp_path / "deep" / "results.json")
    assert load_results(path) == json.loads(json.dumps(results))
    lines = path.read_text().splitlines()
    assert len(lines) == len(results) + len(results["runs"]) + 3  # a line per field and run


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: r.update(schema="poetrylab-bench/1"), "another version.*measure again"),
        (lambda r: r["parameters"].pop("delay"), r"results.parameters has no 'delay'"),
        (lambda r: r["runs"][0].pop("cpu_s"), r"results.runs\[0\] has no 'cpu_s'"),
        (lambda r: r["runs"][0].update(cpu_s="fast"), r"runs\[0\].cpu_s should be"),
        (lambda r: r["runs"][0].update(n_servers=2.5), r"n_servers should be a whole number"),
        (lambda r: r["runs"][1]["phases"].pop("finish_s"), r"runs\[1\].phases has no 'finish_s'"),
        (lambda r: r["runs"][0]["timeline"][0].pop("finished"), r"timeline\[0\] has no 'finished'"),
        (lambda r: r["runs"][0]["timeline"][0].pop("chunks"), "'chunks'"),
        (lambda r: r["runs"][0].update(elapsed_s=None, error=None), "no error saying why"),
        (lambda r: r["runs"][0]["server"].update(cpu_s=None), r"server.cpu_s should be a number"),
        (lambda r: r.pop("ideal"), "'ideal'"),
        (lambda r: r["ideal"].append({"n_servers": 3}), r"ideal\[4\] has no 'sequential_s'"),
    ],
)
def test_the_checker_names_what_is_missing_or_mistyped(damage: Any, message: str) -> None:
    results = cast(dict[str, Any], json.loads(json.dumps(fake_results())))
    check_results(results)
    damage(results)
    with pytest.raises(ValueError, match=message):
        check_results(results)


def test_optional_fields_may_be_absent_but_are_checked_when_present() -> None:
    results = cast(dict[str, Any], json.loads(json.dumps(fake_results())))
    del results["runs"][0]["server"]
    results["machine"].pop("busy", None)
    check_results(results)
    results["runs"][0]["timeline_dropped"] = "yes"
    with pytest.raises(ValueError, match="timeline_dropped should be bool"):
        check_results(results)


def test_compact_results_drop_big_timelines_but_keep_every_summary() -> None:
    results = fake_results()
    small = compact_results(results, timelines_max_servers=1)
    check_results(small)
    dropped = [r["timeline"] == [] for r in small["runs"]]
    assert dropped == [r["n_servers"] > 1 or r["repeat"] > 0 for r in results["runs"]]
    assert summarise(small) == summarise(results)
    assert results["runs"][-1]["timeline"], "the original is left alone"


def test_loading_a_file_that_is_not_json_or_not_results_says_so(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("not json")
    with pytest.raises(ValueError, match="not JSON"):
        load_results(path)
    path.write_text('{"schema": "poetrylab-bench/2"}')
    with pytest.raises(ValueError, match=r"r.json: results has no 'parameters'"):
        load_results(path)


def test_summary_takes_medians_of_the_good_runs_and_reports_failures() -> None:
    results = fake_results(fail=("threaded", 16), repeats=4)
    rows = {(r.client, r.n_servers): r for r in summarise(results)}
    assert list(rows)[0] == ("blocking", 1)
    threaded = rows["threaded", 16]
    good = sorted(r["elapsed_s"] for r in results["runs"]
                  if (r["client"], r["n_servers"]) == ("threaded", 16) and r["elapsed_s"])
    assert threaded.runs == 4 and threaded.failed == 1 and len(good) == 3
    assert len(set(good)) == 3, "three different times: median, mean and max all differ"
    assert threaded.elapsed_s == good[1]  # the median, not the max, mean or first
    assert "boom" in (threaded.error or "")
    cpus = sorted(r["cpu_s"] for r in results["runs"]
                  if (r["client"], r["n_servers"]) == ("threaded", 16) and r["cpu_s"])
    assert threaded.cpu_s == cpus[1]
    select4 = [r for r in results["runs"] if (r["client"], r["n_servers"]) == ("select", 4)]
    assert rows["select", 4].peak_rss_mb == max(r["peak_rss_mb"] or 0 for r in select4)
    rates = sorted(r["poems_per_s"] or 0 for r in select4)  # four: the median is a mean of two
    assert rows["select", 4].poems_per_s == pytest.approx((rates[1] + rates[2]) / 2)
    blocking = rows["blocking", 4]
    assert blocking.ideal_s == 2.0 and 0 < (blocking.over_ideal_pct or 0) < 10
    table = format_table(summarise(results))
    assert "threaded at N=16: client process failed" in table
    assert table.splitlines()[0].split()[:3] == ["client", "N", "ideal"]
    assert "3/4" in table and "4/4" in table


def test_a_measured_limit_is_summarised_as_a_limit_not_a_crash() -> None:
    results = fake_results(limit=("threaded", 16))
    row = {(r.client, r.n_servers): r for r in summarise(results)}["threaded", 16]
    assert row.failed == 2 and row.limit and "could not even start" in row.limit
    assert "threaded at N=16: limit: 8 of 16 downloads could not even start" in format_table(
        summarise(results)
    )


def test_throughput_is_poems_delivered_per_second_of_elapsed_time() -> None:
    run = _record("twisted", 10, 0, 1.0, 1100, elapsed_s=2.0, bytes=1000, poems=8, errors=2)
    assert run["poems_per_s"] == 4.0 and run["bytes_per_s"] == 500.0
    assert run["efficiency"] == 0.5
    failed = _record("twisted", 10, 0, 1.0, 1100, error="boom")
    assert failed["poems_per_s"] is None and failed["efficiency"] is None


# ---------------------------------------------------------------- figures


def test_timeline_picks_blocking_threaded_and_twisted_at_the_largest_small_n() -> None:
    runs = figures.timeline_runs(fake_results())
    assert [r["client"] for r in runs] == ["blocking", "threaded", "twisted"]
    assert {r["n_servers"] for r in runs} == {4}
    assert figures.timeline_runs(fake_results(servers=(16,))) == []


def test_a_single_thread_is_one_lane_and_each_thread_has_its_own() -> None:
    runs = figures.timeline_runs(fake_results())
    picture = figures.plot_timelines(runs)
    ax = picture.figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["blocking\none thread", "threaded\nthread 1", "thread 2", "thread 3",
                      "thread 4", "twisted\none thread"]  # fmt: skip
    twisted_lane_y = ax.get_yticks()[-1]
    marks = [line for line in ax.get_lines() if list(line.get_ydata()) and
             abs(line.get_ydata()[0] - twisted_lane_y - 0.26) < 1e-9]  # fmt: skip
    colours = [line.get_color() for line in marks]
    assert len(set(colours)) == 4, "all four tasks' chunks in the one twisted lane"
    first = colours[:4]
    assert len(set(first)) == 4, "the first four marks interleave the four tasks"


def test_chunks_arriving_together_are_drawn_side_by_side_in_arrival_order() -> None:
    placed = figures._dodged([(1.0, 2), (1.0001, 1), (1.0002, 3), (3.0, 1)], gap=0.01)
    assert [task for _, task in placed] == [2, 1, 3, 1]
    assert [x for x, _ in placed] == pytest.approx([1.0, 1.01, 1.02, 3.0])


def test_every_figure_is_a_picture_that_says_what_it_shows() -> None:
    results = fake_results(fail=("threaded", 16))
    pictures = {
        "timelines": figures.plot_timelines(figures.timeline_runs(results)),
        "time": figures.plot_elapsed(results),
        "throughput": figures.plot_throughput(results),
        "efficiency": figures.plot_efficiency(results),
        "cpu": figures.plot_cpu(results),
        "per connection": figures.plot_per_connection(results),
        "phases": figures.plot_phases(results),
        "overview": figures.plot_overview(results),
    }
    for name, picture in pictures.items():
        assert isinstance(picture, Picture), name
        png = picture.png(dpi=30)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000, name
    assert "ideal, one at a time: 1 poem per server-time" in pictures["throughput"].text
    assert "y: poems delivered per second" in pictures["throughput"].text
    assert "x: number of servers, N" in pictures["per connection"].text
    assert "Where the time went at N=16" in pictures["phases"].text
    assert "connecting, the chunks, finishing" in pictures["phases"].text
    assert "0x" not in "".join(p.text for p in pictures.values())


def test_the_phases_figure_splits_one_real_run_so_its_bars_add_up_to_that_run() -> None:
    results = fake_results(servers=(16,), repeats=3)
    runs = [r for r in results["runs"] if r["client"] == "twisted"]
    # Three runs whose part-by-part medians (0.9, 0.5, 0.1) add up to none of them (1.5).
    for run, parts in zip(runs, [(0.9, 0.05, 0.05), (0.1, 1.8, 0.1), (3.0, 0.5, 0.5)],
                          strict=True):  # fmt: skip
        run["elapsed_s"] = run["cpu_s"] = sum(parts)
        phases = run["phases"]
        assert phases is not None
        for prefix in ("", "cpu_"):
            for key, value in zip(("connect", "transfer", "finish"), parts, strict=True):
                phases[f"{prefix}{key}_s"] = value  # type: ignore[literal-required]
    middle = median_run(runs)
    assert middle is runs[1]
    assert median_run([]) is None
    picture = figures.plot_phases(results)
    time_ax, cpu_ax = picture.figure.axes[:2]
    twisted_row = list(reversed(results["parameters"]["clients"])).index("twisted")

    def label(ax: Any) -> str:
        [text] = [t.get_text().strip() for t in ax.texts if t.get_position()[1] == twisted_row]
        return text

    assert label(time_ax) == label(cpu_ax) == "2.00 s"


SWEEP = Path(__file__).resolve().parent.parent / "notebooks" / "data" / "17-bench-sweep.json"
"""The stored 1-10,000-server sweep notebooks 01 and 17 draw."""
ON_SCREEN: dict[str, Any] = {
    "timelines of the stored sweep": lambda sweep: figures.plot_timelines(
        figures.timeline_runs(sweep)),
    "one lane, notebook 00's title": lambda sweep: figures.plot_timelines(
        figures.timeline_runs(sweep)[-1:],
        title="One thread, three poems at once: all done when the longest is done"),
    "timelines of eight threads": lambda _: figures.plot_timelines(
        figures.timeline_runs(fake_results(servers=(8,)))),
    "time": figures.plot_elapsed,
    "throughput": figures.plot_throughput,
    "efficiency": figures.plot_efficiency,
    "cpu": figures.plot_cpu,
    "per connection": figures.plot_per_connection,
    "phases": figures.plot_phases,
    "time with a failure": lambda _: figures.plot_elapsed(fake_results(fail=("threaded", 16))),
    "throughput with a failure": lambda _: figures.plot_throughput(
        fake_results(fail=("threaded", 16))),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ON_SCREEN))
def test_every_figure_fits_a_learners_screen_in_fonts_a_projector_shows(name: str) -> None:
    """At most 960 px wide, no text under 13 px, nothing cut off or drawn over another text
    (the overview, a page for a file viewer, is the one figure not drawn for a notebook)."""
    assert layout_problems(ON_SCREEN[name](load_results(SWEEP))) == []


def test_the_plots_against_n_are_a_16_9_slide() -> None:
    sweep = load_results(SWEEP)
    for plot in (figures.plot_elapsed, figures.plot_throughput, figures.plot_efficiency,
                 figures.plot_cpu, figures.plot_per_connection):  # fmt: skip
        assert plot(sweep).size == (960, 540), plot.__name__


def test_per_connection_names_every_client_once_in_a_legend_below_both_panels() -> None:
    picture = figures.plot_per_connection(fake_results())
    legends = picture.figure.legends
    assert len(legends) == 1 and [t.get_text() for t in legends[0].get_texts()] == CLIENTS
    assert picture.text.splitlines()[-1] == "one line per client: " + ", ".join(CLIENTS)
    left, right = picture.figure.axes
    assert [t.get_text() for t in left.get_legend().get_texts()] == [
        "ideal, one at a time", "ideal, all at once"]  # fmt: skip


def test_throughput_draws_the_ideal_lines_from_the_server_time() -> None:
    picture = figures.plot_throughput(fake_results())
    lines = {line.get_label(): line for line in picture.figure.axes[0].get_lines()}
    flat = lines["ideal, one at a time: 1 poem per server-time"]
    growing = lines["ideal, all at once: N poems per server-time"]
    assert list(flat.get_ydata()) == [2.0] * 4
    assert list(growing.get_ydata()) == [2.0, 4.0, 8.0, 32.0]
    twisted = lines["twisted"]
    assert list(twisted.get_xdata()) == [1, 2, 4, 16]
    assert all(0.8 * 2 * n < y <= 2 * n for n, y in zip([1, 2, 4, 16], twisted.get_ydata(),
                                                           strict=True))


def test_each_client_line_is_the_median_of_its_repeats_at_every_n() -> None:
    """What is drawn is the data: for time, throughput, efficiency and CPU, each client's
    line goes through the median of its good runs at each N, and nothing else."""
    results = fake_results(fail=("threaded", 16), repeats=3)
    plots = {"elapsed_s": figures.plot_elapsed, "poems_per_s": figures.plot_throughput,
             "efficiency": figures.plot_efficiency, "cpu_s": figures.plot_cpu}  # fmt: skip
    for key, plot in plots.items():
        lines = {line.get_label(): line for line in plot(results).figure.axes[0].get_lines()}
        for client in CLIENTS:
            line = lines[client]
            ns = sorted({r["n_servers"] for r in results["runs"] if r["client"] == client})
            want = [statistics.median(r[key] for r in results["runs"]  # type: ignore[literal-required]
                                      if r["client"] == client and r["n_servers"] == n
                                      and r["elapsed_s"] is not None and not r["errors"])
                    for n in ns]  # fmt: skip
            assert list(line.get_xdata()) == ns, (key, client)
            assert list(line.get_ydata()) == pytest.approx(want), (key, client)


def test_the_timelines_draw_every_chunk_where_it_arrived() -> None:
    runs = figures.timeline_runs(fake_results())
    ax = figures.plot_timelines(runs).figure.axes[0]
    drawn = sorted(round(float(x), 6) for c in ax.collections for x in
                   [segment[0][0] for segment in c.get_segments()])  # fmt: skip
    arrived = sorted(round(chunk[0], 6) for run in runs for task in run["timeline"]
                     for chunk in task.get("chunks", []))  # fmt: skip
    assert len(drawn) == len(arrived)
    gap = 0.0045 * max(t["finished"] or 0 for r in runs for t in r["timeline"])
    assert all(abs(d - a) <= 3 * gap for d, a in zip(drawn, arrived, strict=True))


def _contrast_on_white(colour: str) -> float:
    def linear(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    return 1.05 / (luminance + 0.05)


def test_every_client_and_task_colour_reads_on_a_projector_and_none_is_red() -> None:
    colours = [s["color"] for s in figures.CLIENT_STYLES.values()]
    colours += [c for c, _ in figures.TASK_STYLES]
    for colour in colours:
        assert _contrast_on_white(colour) >= 3.0, colour  # WCAG: graphics and large text
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        assert not (r > 150 and g < 90 and b < 90), f"{colour} reads as failure red"
    shapes = [m for _, m in figures.TASK_STYLES]
    assert len(set(shapes)) == len(shapes), "tasks differ by shape as well as colour"


def test_each_client_keeps_its_colour_in_every_figure() -> None:
    results = fake_results()
    colours: dict[str, set[str]] = {}
    for plot in (figures.plot_elapsed, figures.plot_efficiency, figures.plot_cpu,
                 figures.plot_throughput):  # fmt: skip
        for line in plot(results).figure.axes[0].get_lines():
            if line.get_label() in CLIENTS:
                colours.setdefault(str(line.get_label()), set()).add(str(line.get_color()))
    assert set(colours) == set(CLIENTS)
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == len(CLIENTS)


def test_downloads_measured_in_a_notebook_make_a_record_the_figures_draw() -> None:
    downloads = []
    for task, start in enumerate([10.0, 11.0], start=1):
        d = Download(Address("127.0.0.1", 4000 + task), client="blocking", task=task)
        d.start(start)
        d.connect(start + 0.01)
        d.receive(b"0123456789", start + 0.02)
        d.receive(b"abc", start + 0.5)
        d.finish(t=start + 0.51)
        downloads.append(d)
    record = record_from_downloads("blocking", downloads, ideal_s=1.0, delay=0.5, num_bytes=10)
    assert record["elapsed_s"] == pytest.approx(1.51) and record["bytes"] == 26
    assert record["timeline"][1]["chunks"] == [[pytest.approx(1.02), 10], [pytest.approx(1.5), 3]]
    assert record["efficiency"] == pytest.approx(1 / 1.51) and record["errors"] == 0
    assert record["poems"] == 2 and record["poems_per_s"] == pytest.approx(2 / 1.51)
    assert record["phases"] is not None
    assert record["phases"]["connect_s"] == pytest.approx(0.02), "sequential: two 10 ms connects"
    assert record["cpu_s"] is None
    assert figures.plot_timelines([record]).png(dpi=30).startswith(b"\x89PNG")
    named = figures.plot_timelines([record], task_labels=["tyger"])
    legend = named.figure.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["tyger", "task 2"]


def test_timelines_refuse_runs_without_chunks() -> None:
    with pytest.raises(ValueError, match="no runs"):
        figures.plot_timelines([])
    run = fake_results(servers=(16,))["runs"][0]
    with pytest.raises(ValueError, match="chunk"):
        figures.plot_timelines([run])


def test_phases_figure_needs_runs_with_phases() -> None:
    with pytest.raises(ValueError, match="N=3"):
        figures.plot_phases(fake_results(), n_servers=3)


def test_save_all_figures_writes_a_png_for_each(tmp_path: Path) -> None:
    written = figures.save_all_figures(fake_results(), tmp_path / "fig.png")
    names = sorted(p.name for p in written)
    assert names == sorted(
        f"fig{part}.png" for part in ("", "-timelines", "-time", "-throughput", "-efficiency",
                                      "-cpu", "-per-connection", "-phases")
    )  # fmt: skip
    assert all(p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 1000 for p in written)


# ---------------------------------------------------------------- progress


def _record_for(elapsed: float | None, error: str | None = None, limit: str | None = None) -> Any:
    return _record("twisted", 8, 0, 1.5, 800, elapsed_s=elapsed, error=error, limit=limit,
                   errors=0 if elapsed else None)  # fmt: skip


def test_progress_prints_a_line_per_run_when_not_on_a_terminal() -> None:
    out = io.StringIO()
    progress = SweepProgress(out)
    run = PlannedRun("twisted", 8, 0, 1.5)
    progress(0, 3, run, None)
    progress(1, 3, run, _record_for(1.523))
    progress(2, 3, run, _record_for(None, error="boom"))
    progress(3, 3, run, _record_for(2.0, limit="4 of 8 downloads could not even start"))
    assert out.getvalue().splitlines() == [
        "[1/3] twisted N=8 repeat 1: 1.523 s (ideal 1.500 s)",
        "[2/3] twisted N=8 repeat 1: FAILED: boom",
        "[3/3] twisted N=8 repeat 1: LIMIT: 4 of 8 downloads could not even start",
    ]


def test_progress_draws_a_tqdm_bar_on_a_terminal_and_notes_failures() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    with SweepProgress(out) as progress:
        run = PlannedRun("asyncio", 2, 1, 1.0)
        progress(0, 2, run, None)
        progress(1, 2, run, _record_for(None, error="refused"))
        progress(2, 2, run, _record_for(1.0))
    text = out.getvalue()
    assert "asyncio N=2 repeat 2" in text and "2/2" in text and "\r" in text
    assert "asyncio N=2 repeat 2: FAILED: refused" in text
    assert "[1/2]" not in text, "no log lines on a terminal"


# ---------------------------------------------------------------- make bench


def _bench_script() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_clients.py"
    spec = importlib.util.spec_from_file_location("bench_clients_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("load", "force", "starts"), [
    ((1.9, 1.0, 1.0), False, False),
    ((1.9, 1.0, 1.0), True, True),
    ((0.4, 1.0, 1.0), False, True),
])  # fmt: skip
def test_make_bench_refuses_a_busy_machine_unless_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    load: tuple[float, float, float], force: bool, starts: bool,
) -> None:
    script = _bench_script()
    monkeypatch.setattr(script, "machine_load", lambda: MachineLoad(load, cpus=2))
    started: list[list[str]] = []

    def call(argv: list[str]) -> int:
        started.append(argv)
        return 9  # stop right after: nothing is measured here

    monkeypatch.setattr(script.subprocess, "call", call)
    status = script.main(["--out-dir", str(tmp_path)] + (["--force"] if force else []))
    assert bool(started) == starts
    if not starts:
        assert status == 3
        err = capsys.readouterr().err
        assert "not starting a 10,000-server sweep" in err and "FORCE=1" in err
    else:
        assert status == 9 and "--servers" in started[0]


def test_progress_in_a_notebook_is_tqdms_widget() -> None:
    pytest.importorskip("ipywidgets")
    from tqdm.notebook import tqdm as notebook_tqdm

    progress = SweepProgress(notebook=True)
    run = PlannedRun("select", 4, 0, 1.0)
    progress(0, 2, run, None)
    bar = progress._bar
    assert isinstance(bar, notebook_tqdm) and bar.total == 2
    progress(1, 2, run, _record_for(1.0))
    assert bar.n == 1
    progress(2, 2, run, _record_for(1.0))
    assert progress._bar is None, "closed when the sweep is done"
