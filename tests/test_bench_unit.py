"""The benchmark without real time: ideal-time maths, the run plan, the results file, the
timetable server on a ``task.Clock``, the summary table, the progress bar and the figures
(drawn from made-up results, rendered to PNG bytes)."""

from __future__ import annotations

import io
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from poetrylab.bench import figures
from poetrylab.bench._progress import ProgressBar
from poetrylab.bench.harness import (
    BenchConfig,
    PlannedRun,
    estimate_seconds,
    model_for,
    plan,
    record_from_downloads,
)
from poetrylab.bench.ideal import (
    efficiency,
    ideal_concurrent,
    ideal_for,
    ideal_sequential,
    server_times,
)
from poetrylab.bench.results import (
    SCHEMA,
    compact_results,
    format_table,
    load_results,
    save_results,
    summarise,
    validate_results,
)
from poetrylab.bench.server_host import ServerStats, build_factory
from poetrylab.download import Address, Download

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


def _connect(pacing: str, poem: bytes = b"abcdefghij", delay: float = 1.0, num_bytes: int = 2):
    clock = Clock()
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
    clock.advance(1.0)
    assert transport.value() == b"abcdefghij"
    assert transport.disconnecting
    assert factory.stats.completed == 1 and factory.stats.writes == 5
    assert factory.stats.max_late_s == 0.0


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


# ---------------------------------------------------------------- made-up results

CLIENTS = ["blocking", "threaded", "select", "twisted", "asyncio"]
MODELS = {"blocking": "blocking", "threaded": "threaded", "select": "select",
          "twisted": "deferred", "asyncio": "asyncio"}  # fmt: skip


def _timeline(client: str, n: int, per_server: float, delay: float, chunks: bool) -> list[dict]:
    out = []
    for task in range(1, n + 1):
        start = (task - 1) * per_server if client == "blocking" else 0.001 * task
        times = [start + 0.001 + k * delay for k in range(round(per_server / delay) + 1)]
        entry = {
            "address": f"127.0.0.1:{4000 + task}", "client": MODELS[client], "task": task,
            "started": start, "connected": start + 0.0005, "finished": times[-1] + 0.0002,
            "bytes": 10 * len(times), "error": None,
        }  # fmt: skip
        if chunks:
            entry["chunks"] = [[t, 10] for t in times]
        else:
            entry["n_chunks"] = len(times)
        out.append(entry)
    return out


def fake_results(
    servers: tuple[int, ...] = (1, 2, 4, 16),
    overhead: float = 0.01,
    seed: int = 1,
    fail: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """Results shaped like run_bench's, with plausible numbers and no measuring."""
    rng = random.Random(seed)
    delay, per_server = 0.05, 0.5
    runs = []
    for repeat in range(2):
        for n in servers:
            for client in CLIENTS:
                ideal = per_server * n if client == "blocking" else per_server
                elapsed = ideal * (1 + overhead * (1 + math.log2(n)) * rng.uniform(0.8, 1.2))
                run = {
                    "repeat": repeat, "client": client, "model": MODELS[client], "n_servers": n,
                    "elapsed_s": elapsed, "process_s": elapsed + 0.3,
                    "cpu_s": 0.002 * n * (5 if client == "threaded" else 1) * rng.uniform(0.9, 1.1),
                    "cpu_total_s": 0.3, "peak_rss_mb": 30.0 + n / 10, "bytes": 110 * n,
                    "expected_bytes": 110 * n, "errors": 0, "error": None,
                    "chunks_stored": n <= 8, "ideal_s": ideal, "efficiency": ideal / elapsed,
                    "server": {"mean_final_late_s": 0.001},
                    "timeline": _timeline(client, n, per_server, delay, n <= 8),
                }  # fmt: skip
                if fail == (client, n) and repeat == 1:
                    run |= {"elapsed_s": None, "efficiency": None, "cpu_s": None,
                            "error": "client process failed (status 1): can't start new thread",
                            "timeline": [], "chunks_stored": False, "bytes": 0}  # fmt: skip
                runs.append(run)
    return {
        "schema": SCHEMA,
        "parameters": {
            "poem": "hope", "poem_bytes": 110, "delay": delay, "num_bytes": 10,
            "servers": list(servers), "clients": CLIENTS, "models": MODELS, "repeats": 2,
            "pacing": "timetable", "server_time_s": per_server, "python": "3.11.7",
            "twisted": "26.10.0", "cpu_count": 2, "platform": "Linux",
        },  # fmt: skip
        "ideal": [{"n_servers": n, "sequential_s": per_server * n, "concurrent_s": per_server}
                  for n in servers],  # fmt: skip
        "machine": {"load_before": [0.1, 0.1, 0.1]},
        "command": None,
        "runs": runs,
        "skipped": [],
        "interrupted": False,
    }


def test_made_up_results_pass_the_checker_and_survive_a_round_trip(tmp_path: Path) -> None:
    results = fake_results()
    validate_results(results)
    path = save_results(results, tmp_path / "deep" / "results.json")
    assert load_results(path) == json.loads(json.dumps(results))
    lines = path.read_text().splitlines()
    assert len(lines) == len(results) + len(results["runs"]) + 3  # a line per field and run


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: r.update(schema="other/9"), "schema"),
        (lambda r: r["parameters"].pop("delay"), "'delay'"),
        (lambda r: r["runs"][0].pop("cpu_s"), r"runs\[0\] has no 'cpu_s'"),
        (lambda r: r["runs"][0]["timeline"][0].pop("finished"), "'finished'"),
        (lambda r: r["runs"][0]["timeline"][0].pop("chunks"), "'chunks'"),
        (lambda r: r["runs"][0].update(elapsed_s=None, error=None), "no error saying why"),
        (lambda r: r.pop("ideal"), "'ideal'"),
    ],
)
def test_the_checker_names_what_is_missing(damage: Any, message: str) -> None:
    results = fake_results()
    damage(results)
    with pytest.raises(ValueError, match=message):
        validate_results(results)


def test_compact_results_drop_big_timelines_but_keep_every_summary() -> None:
    results = fake_results()
    small = compact_results(results, timelines_max_servers=4)
    validate_results(small)
    dropped = [r["timeline"] == [] for r in small["runs"]]
    assert dropped == [r["n_servers"] > 4 or r["repeat"] > 0 for r in results["runs"]]
    assert summarise(small) == summarise(results)
    assert results["runs"][-1]["timeline"], "the original is left alone"


def test_loading_a_file_that_is_not_json_says_so(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("not json")
    with pytest.raises(ValueError, match="not JSON"):
        load_results(path)


def test_summary_takes_medians_of_the_good_runs_and_reports_failures() -> None:
    results = fake_results(fail=("threaded", 16))
    rows = {(r.client, r.n_servers): r for r in summarise(results)}
    assert list(rows)[0] == ("blocking", 1)
    threaded = rows["threaded", 16]
    assert threaded.runs == 2 and threaded.failed == 1
    good = [r for r in results["runs"] if (r["client"], r["n_servers"]) == ("threaded", 16)][0]
    assert threaded.elapsed_s == good["elapsed_s"]  # the median of the one good run
    assert "can't start new thread" in threaded.error
    blocking = rows["blocking", 4]
    assert blocking.ideal_s == 2.0 and 0 < blocking.over_ideal_pct < 10
    table = format_table(summarise(results))
    assert "threaded at N=16: client process failed" in table
    assert table.splitlines()[0].split()[:3] == ["client", "N", "ideal"]
    assert "1/2" in table and "2/2" in table


# ---------------------------------------------------------------- figures


def test_timeline_picks_blocking_threaded_and_twisted_at_the_largest_small_n() -> None:
    runs = figures.timeline_runs(fake_results())
    assert [r["client"] for r in runs] == ["blocking", "threaded", "twisted"]
    assert {r["n_servers"] for r in runs} == {4}
    assert figures.timeline_runs(fake_results(servers=(16,))) == []


def test_every_figure_renders_to_png() -> None:
    results = fake_results()
    for fig in (
        figures.plot_timelines(figures.timeline_runs(results)),
        figures.plot_elapsed(results),
        figures.plot_efficiency(results),
        figures.plot_cpu(results),
        figures.plot_overview(fake_results(fail=("threaded", 16))),
    ):
        png = figures.figure_png(fig, dpi=40)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000


def test_figures_change_when_the_measurements_change() -> None:
    quick, slow = fake_results(overhead=0.01), fake_results(overhead=0.3)
    for plot in (figures.plot_elapsed, figures.plot_efficiency):
        assert figures.figure_png(plot(quick), dpi=40) != figures.figure_png(plot(slow), dpi=40)
    a = figures.timeline_runs(quick)
    b = [dict(r, timeline=r["timeline"][:2]) for r in a]
    assert figures.figure_png(figures.plot_timelines(a), dpi=40) != figures.figure_png(
        figures.plot_timelines(b), dpi=40
    )


def test_cpu_figure_title_names_the_hungriest_client_at_the_largest_n() -> None:
    fig = figures.plot_cpu(fake_results())
    title = fig.axes[0].get_title(loc="left")
    assert "at N=16: threaded used" in title and "'s CPU" in title


def test_each_client_keeps_its_colour_in_every_figure() -> None:
    results = fake_results()
    colours = {}
    for plot in (figures.plot_elapsed, figures.plot_efficiency, figures.plot_cpu):
        for line in plot(results).axes[0].get_lines():
            if line.get_label() in CLIENTS:
                colours.setdefault(line.get_label(), set()).add(line.get_color())
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
    record = record_from_downloads("blocking", downloads, ideal_s=1.0)
    assert record["elapsed_s"] == pytest.approx(1.51) and record["bytes"] == 26
    assert record["timeline"][1]["chunks"] == [[pytest.approx(1.02), 10], [pytest.approx(1.5), 3]]
    assert record["efficiency"] == pytest.approx(1 / 1.51) and record["errors"] == 0
    png = figures.figure_png(figures.plot_timelines([record]), dpi=40)
    assert png.startswith(b"\x89PNG")
    named = figures.plot_timelines([record], task_labels=["tyger"])
    legend = [t.get_text() for t in named.axes[0].get_legend().get_texts()]
    assert legend == ["tyger", "task 2"]


def test_timelines_refuse_runs_without_chunks() -> None:
    with pytest.raises(ValueError, match="no runs"):
        figures.plot_timelines([])
    run = fake_results(servers=(16,))["runs"][0]
    with pytest.raises(ValueError, match="chunk"):
        figures.plot_timelines([run])


def test_save_all_figures_writes_png_and_svg_for_each(tmp_path: Path) -> None:
    written = figures.save_all_figures(fake_results(), tmp_path / "fig.png")
    names = sorted(p.name for p in written)
    assert names == sorted(
        f"fig{part}.{ext}" for part in ("", "-timelines", "-time", "-efficiency", "-cpu")
        for ext in ("png", "svg")
    )
    assert all(p.stat().st_size > 1000 for p in written)


# ---------------------------------------------------------------- progress bar


def test_progress_prints_a_line_per_run_when_not_on_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    run = PlannedRun("twisted", 8, 0, 1.5)
    bar(0, 2, run, None)
    bar(1, 2, run, {"elapsed_s": 1.523, "ideal_s": 1.5})
    bar(2, 2, run, {"elapsed_s": None, "ideal_s": 1.5, "error": "boom"})
    assert out.getvalue().splitlines() == [
        "[1/2] twisted N=8 repeat 1: 1.523 s (ideal 1.500 s)",
        "[2/2] twisted N=8 repeat 1: FAILED: boom",
    ]


def test_progress_redraws_one_line_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    bar = ProgressBar(out, width=10)
    run = PlannedRun("asyncio", 2, 1, 1.0)
    bar(0, 2, run, None)
    bar(2, 2, run, {"elapsed_s": 1.0, "ideal_s": 1.0})
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[##########] 2/2 asyncio N=2 repeat 2" in text
