"""The benchmark's pictures, drawn from measured runs (notebooks 00, 01 and 17, the README).

* :func:`plot_timelines` — the classic three-model figure, measured: one lane per thread
  of control, a mark for every chunk that arrived, in its task's colour and shape. The
  blocking client's one lane shows the tasks one after another, the threaded client has
  a lane per thread, and a one-thread asynchronous client's single lane shows every
  task's chunks interleaved.
* :func:`plot_elapsed` — total time against N, with the two ideal lines (one server at a
  time: the sum; all at once: the slowest).
* :func:`plot_throughput` — poems (and bytes) delivered per second against N, with the
  ideal lines: flat for one server at a time, growing with N for all at once.
* :func:`plot_efficiency` — ideal / measured against N (1.0 is no overhead at all).
* :func:`plot_cpu` — the client process's CPU time against N.
* :func:`plot_per_connection` — time and CPU per connection against N (the C10K view).
* :func:`plot_phases` — where each client's time and CPU went at one N: connecting, the
  chunks, finishing.
* :func:`plot_overview` puts the main ones on one page; :func:`save_all_figures` writes
  them all as PNG.

Each ``plot_*`` function returns a :class:`~poetrylab.pictures.Picture` (a sharp PNG plus
a text/plain description made from the titles, labels and legends); its ``.figure`` is
the matplotlib Figure, built without pyplot, so drawing is safe in any thread (draw
and display in one thread at a time). Each is :data:`WIDTH` inches wide at :data:`DPI`
display pixels per inch, 960 pixels, which JupyterLab shows unscaled on a 1280-pixel
screen, and the plots against N are a 16:9 slide (:data:`SLIDE`); only the overview, a
page meant for an image viewer, is wider. Pass ``ax`` to draw into axes of your own. Every
client keeps one colour and one marker in every figure (:data:`CLIENT_STYLES`); colours
are dark enough for text on a projector and distinct for colour-blind readers, and
never carry the meaning alone: markers, labels and positions carry it too.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from poetrylab.bench.results import (
    BenchResults,
    RunRecord,
    TimelineEntry,
    good_runs,
    median_run,
)
from poetrylab.pictures import Picture, describe

__all__ = [
    "CLIENT_STYLES",
    "FAILURE_COLOUR",
    "TASK_STYLES",
    "client_style",
    "plot_cpu",
    "plot_efficiency",
    "plot_elapsed",
    "plot_overview",
    "plot_per_connection",
    "plot_phases",
    "plot_throughput",
    "plot_timelines",
    "save_all_figures",
    "timeline_runs",
]

# Colour-blind-safe hues (Paul Tol's), each dark enough for a label on a washed-out
# projector (contrast at least 3:1 on white; no yellow, no olive), and no red: red means
# failure in every picture of the course (a failed download is a red cross).
CLIENT_STYLES: dict[str, dict[str, str]] = {
    "blocking": {"color": "#555555", "marker": "s"},
    "threaded": {"color": "#AA3377", "marker": "^"},
    "select": {"color": "#009988", "marker": "D"},
    "twisted": {"color": "#0077BB", "marker": "o"},
    "asyncio": {"color": "#CC6600", "marker": "v"},
    "deferred": {"color": "#0077BB", "marker": "o"},
    "protocol": {"color": "#332288", "marker": "P"},
    "reactor": {"color": "#332288", "marker": "X"},
    "inline": {"color": "#332288", "marker": "h"},
    "coroutine": {"color": "#882255", "marker": "*"},
    "asynchronous": {"color": "#009988", "marker": "D"},  # notebook 01's select loop
}
_SPARE_STYLES = [{"color": c, "marker": "o"} for c in ("#774411", "#225555", "#553377")]
TASK_STYLES: tuple[tuple[str, str], ...] = (
    ("#0077BB", "o"), ("#CC6600", "s"), ("#009988", "^"), ("#AA3377", "D"),
    ("#555555", "v"), ("#332288", "P"), ("#882255", "X"), ("#117733", "h"),
)  # fmt: skip
"""Colour and marker of task 1, 2, ... in a timeline: shape tells them apart without colour."""
FAILURE_COLOUR = "#AA0000"
IDEAL_COLOUR = "#222222"

DPI = 80
"""Display pixels per inch of every figure here: sizes are in inches, fonts in points."""
WIDTH = 12.0
"""Every figure's width in inches: 960 display pixels, which JupyterLab shows unscaled on a
1280-pixel screen (its output area is about 1000 pixels wide) and a 16:9 slide holds.
At 80 pixels per inch the smallest font here (13 points) is 14 pixels on screen."""
SLIDE = (WIDTH, WIDTH * 9 / 16)
"""A 16:9 slide: 960 x 540 display pixels."""


@contextmanager
def _style() -> Iterator[None]:
    """Sizes for a classroom projector: large fonts, light grid, no top or right spine."""
    with mpl.rc_context({
        "font.size": 16,
        "axes.titlesize": 19,
        "axes.titleweight": "bold",
        "axes.labelsize": 17,
        "xtick.labelsize": 15,
        "ytick.labelsize": 15,
        "legend.fontsize": 14,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }):
        yield


def client_style(client: str) -> dict[str, str]:
    """The colour and marker ``client`` has in every figure (a spare one if unknown)."""
    if client in CLIENT_STYLES:
        return CLIENT_STYLES[client]
    return _SPARE_STYLES[sum(map(ord, client)) % len(_SPARE_STYLES)]


def _new_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        figure = ax.get_figure()
        assert isinstance(figure, Figure)
        return figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _picture(fig: Figure, dpi: float = DPI) -> Picture:
    """Figures are drawn at slide size in inches, shown at :data:`DPI` pixels per inch."""
    return Picture(fig, dpi=dpi)


# ---------------------------------------------------------------- timelines


def _single_threaded(run: RunRecord) -> bool:
    return run["model"] != "threaded"


def timeline_runs(
    results: BenchResults,
    clients: Sequence[str] | None = None,
    n_servers: int | None = None,
    max_servers: int = 8,
) -> list[RunRecord]:
    """Pick one run per client for :func:`plot_timelines`: first repeat, chunks stored.

    ``n_servers`` defaults to the largest N up to ``max_servers`` that has chunk
    timelines (more tasks would be unreadable); ``clients`` defaults to blocking,
    threaded and one asynchronous client (twisted if measured). Returns [] when nothing
    suitable was measured.
    """
    runs = [r for r in results["runs"] if r["chunks_stored"] and r["timeline"]]
    measured = list(dict.fromkeys(r["client"] for r in runs))
    if clients is None:
        preferred = ("twisted", "asyncio", "deferred")
        asynchronous = sorted(
            (c for c in measured if c not in ("blocking", "threaded")),
            key=lambda c: preferred.index(c) if c in preferred else len(preferred),
        )
        clients = [c for c in ("blocking", "threaded") if c in measured] + asynchronous[:1]
    if n_servers is None:
        counts = sorted({r["n_servers"] for r in runs if r["client"] in clients})
        if not counts:
            return []
        small = [n for n in counts if n <= max_servers]
        n_servers = small[-1] if small else counts[0]
    chosen = []
    for client in clients:
        match = [r for r in runs if r["client"] == client and r["n_servers"] == n_servers]
        if match:
            chosen.append(min(match, key=lambda r: r["repeat"]))
    return chosen


def _lanes(run: RunRecord, max_tasks: int) -> list[list[TimelineEntry]]:
    """The threads of control a run used, each with the downloads it worked on."""
    tasks = run["timeline"][:max_tasks]
    if _single_threaded(run):
        return [tasks]
    return [[t] for t in tasks]


def _dodged(marks: list[tuple[float, int]], gap: float) -> list[tuple[float, int]]:
    """Marks (time, task) in arrival order, each at least ``gap`` after the previous one.

    Chunks from several servers often arrive within the same millisecond; drawn at their
    exact times they would cover each other. Shifting each by at most a few marks' width
    keeps them side by side, in the order they arrived.
    """
    out: list[tuple[float, int]] = []
    last = -float("inf")
    for t, task in sorted(marks):
        x = max(t, last + gap)
        out.append((x, task))
        last = x
    return out


def plot_timelines(
    runs: Sequence[RunRecord],
    ax: Axes | None = None,
    max_tasks: int = 8,
    title: str | None = None,
    task_labels: Sequence[str] | None = None,
) -> Picture:
    """Draw the measured three-model figure from run records (one per client).

    Each shaded band is one thread of control: the blocking client and every
    single-threaded asynchronous client get one lane, the threaded client one lane per
    thread. Every chunk's arrival is a mark in its task's colour and shape
    (:data:`TASK_STYLES`): in the blocking lane the tasks follow one another, in an
    asynchronous lane every task's chunks interleave in the one thread. Chunks that
    arrived within the same instant are drawn side by side in arrival order. Each
    model's total time is written where it ended. At most ``max_tasks`` tasks of a run
    are drawn. ``task_labels`` names the tasks in the legend (e.g. the poems), in task
    order; by default "task 1", "task 2", ... Raises ValueError if ``runs`` is empty or
    kept no chunks.
    """
    if not runs:
        raise ValueError("no runs to draw: measure at least one client first")
    if any(not r["chunks_stored"] for r in runs):
        raise ValueError("these runs kept no chunk timelines (N above chunks_max_servers)")
    with _style():
        lanes = [(run, i, lane) for run in runs for i, lane in enumerate(_lanes(run, max_tasks))]
        height = max(3.6, 1.8 + 0.7 * len(lanes))
        fig, ax = _new_axes(ax, (WIDTH, height))
        ax.grid(False)
        ax.grid(True, axis="x", alpha=0.3)
        right = max((t["finished"] or 0.0 for run in runs for t in run["timeline"][:max_tasks]),
                    default=0.0)  # fmt: skip
        gap = 0.0045 * (right or 1.0)
        n_tasks = 0
        ticks: list[tuple[float, str]] = []
        ends: dict[int, tuple[float, float]] = {}
        y = len(lanes) - 0.5
        for run, index, lane in lanes:
            colour = client_style(run["client"])["color"]
            ax.axhspan(y - 0.42, y + 0.42, color=colour, alpha=0.12, lw=0, zorder=0)
            marks = []
            for task in lane:
                n_tasks = max(n_tasks, task["task"])
                marks += [(c[0], task["task"]) for c in task.get("chunks", [])]
                if task["error"] and task["finished"] is not None:
                    ax.plot([task["finished"]], [y], "x", color=FAILURE_COLOUR, ms=16, mew=3,
                            zorder=4)  # fmt: skip
            placed = _dodged(marks, gap)
            drawn_to = max((x for x, _ in placed), default=0.0)
            for x, task_number in placed:
                tcol, marker = TASK_STYLES[(task_number - 1) % len(TASK_STYLES)]
                ax.vlines(x, y - 0.3, y + 0.18, colors=tcol, lw=2.0, zorder=2)
                ax.plot([x], [y + 0.26], marker=marker, color=tcol, ms=7, mew=0, zorder=3)
            if _single_threaded(run):
                label = f"{run['client']}\none thread"
            else:
                first = f"{run['client']}\n" if index == 0 else ""
                label = f"{first}thread {index + 1}"
            ticks.append((y, label))
            if index == len(_lanes(run, max_tasks)) - 1 or _single_threaded(run):
                finish = max((t["finished"] or 0.0 for t in run["timeline"][:max_tasks]),
                             default=0.0)  # fmt: skip
                ends[id(run)] = (max(finish, drawn_to), y)
            y -= 1
        for run in runs:
            finish, lane_y = ends[id(run)]
            elapsed = run["elapsed_s"] or finish
            ax.text(finish + gap, lane_y, f" {elapsed:.2f} s", va="center", ha="left",
                    fontsize=16, color="#222222", fontweight="bold")  # fmt: skip
        ax.set_yticks([t[0] for t in ticks], [t[1] for t in ticks])
        for tick_label in ax.get_yticklabels():
            tick_label.set_fontweight("bold")
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-0.1, len(lanes) + 0.1)
        ax.set_xlim(0, right * 1.14 + 1e-3)
        ax.set_xlabel("seconds since the client started (each mark: a chunk of a poem arrived)")
        names = [f"task {i + 1}" for i in range(min(n_tasks, max_tasks))]
        names[: len(task_labels or ())] = list(task_labels or ())[: len(names)]
        handles = [
            Line2D([], [], color=TASK_STYLES[i % len(TASK_STYLES)][0], lw=2.5,
                   marker=TASK_STYLES[i % len(TASK_STYLES)][1], ms=9, label=name)
            for i, name in enumerate(names)
        ]  # fmt: skip
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  framealpha=0.95, borderaxespad=0.3)  # fmt: skip
        n = runs[0]["n_servers"]
        ax.set_title(title or f"{n} slow servers: one after another takes the sum;\nthreads, "
                     "or one thread interleaving the chunks, take the slowest",
                     loc="left")  # fmt: skip
    return _picture(fig)


# ---------------------------------------------------------------- against N


def _groups(results: BenchResults, value: str) -> dict[str, dict[int, list[float]]]:
    """client -> N -> the values of ``value`` in runs where every download succeeded.

    ``value`` is a run field, or ``"cpu_per_connection"`` / ``"time_per_connection"``.
    """
    out: dict[str, dict[int, list[float]]] = {c: {} for c in results["parameters"]["clients"]}
    for run in good_runs(results["runs"]):
        n = run["n_servers"]
        got: object
        if value == "cpu_per_connection":
            got = run["cpu_s"] / n if run["cpu_s"] is not None else None
        elif value == "time_per_connection":
            got = run["elapsed_s"] / n if run["elapsed_s"] is not None else None
        else:
            got = cast(Mapping[str, object], run).get(value)  # any numeric field of a run
        if isinstance(got, int | float):
            out.setdefault(run["client"], {}).setdefault(n, []).append(float(got))
    return out


def _medians_at_top(
    groups: dict[str, dict[int, list[float]]],
) -> tuple[int | None, dict[str, float]]:
    top = max((n for by_n in groups.values() for n in by_n), default=None)
    if top is None:
        return None, {}
    return top, {c: statistics.median(by_n[top]) for c, by_n in groups.items() if top in by_n}


def _failures(results: BenchResults) -> list[str]:
    seen: dict[tuple[str, int], str] = {}
    for run in results["runs"]:
        if run["limit"]:
            seen.setdefault((run["client"], run["n_servers"]), f"limit: {run['limit']}")
        elif run["elapsed_s"] is None or run["errors"]:
            seen.setdefault((run["client"], run["n_servers"]), str(run["error"]))
    return [f"{c} at N={n:,}: {reason[:100]}" for (c, n), reason in seen.items()]


def _log_n_axis(ax: Axes, counts: Iterable[int], labelled: str = "125") -> None:
    """N on a log axis: a tick at every N; labels, when there are many, only on the Ns
    whose first digit is in ``labelled`` ("1": 1, 10, 100... for a narrow panel)."""
    ns = sorted(set(counts))
    ax.set_xscale("log")
    ax.set_xticks(ns, minor=True)
    shown = [n for n in ns if len(ns) < 9 or str(n)[0] in labelled]
    # 1k, 2k... above 999: "5,000" and "10,000" side by side would run into each other
    ax.set_xticks(shown, [f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"{n:,}"
                          for n in shown])  # fmt: skip
    ax.xaxis.set_minor_formatter(NullFormatter())
    if ns:
        ax.set_xlim(ns[0] / 1.4, ns[-1] * 1.4)
    ax.set_xlabel("number of servers, N")


def _number(value: float, _pos: object = None) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:g}"


def _log_y(ax: Axes) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(_number))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _plot_series(ax: Axes, groups: dict[str, dict[int, list[float]]], scale: float = 1.0) -> None:
    for client, by_n in groups.items():
        if not by_n:
            continue
        style = client_style(client)
        ns = sorted(by_n)
        for n in ns:
            ax.plot([n] * len(by_n[n]), [v * scale for v in by_n[n]], style["marker"],
                    color=style["color"], alpha=0.35, ms=7, zorder=3)  # fmt: skip
        medians = [statistics.median(by_n[n]) * scale for n in ns]
        ax.plot(ns, medians, "-", marker=style["marker"], color=style["color"], lw=3, ms=10,
                label=client, zorder=4)  # fmt: skip


def _note_failures(ax: Axes, results: BenchResults) -> None:
    failures = _failures(results)
    if failures:
        ax.text(0.01, 0.01, "\n".join(failures[:3]), transform=ax.transAxes, fontsize=12,
                color=FAILURE_COLOUR, va="bottom", ha="left", wrap=True)  # fmt: skip


def _note_skipped(ax: Axes, results: BenchResults, y: float = 0.3) -> None:
    skipped = sorted({(s["client"], s["n_servers"]) for s in results["skipped"]})
    if skipped:
        clients = ", ".join(dict.fromkeys(c for c, _ in skipped))
        limit = results["parameters"]["max_run_s"]
        ax.text(0.98, y, f"{clients} not run at N ≥ {min(n for _, n in skipped):,}:\n"
                f"ideal time over the {limit:g} s limit", transform=ax.transAxes, ha="right",
                va="center", fontsize=14, color="#444444")  # fmt: skip


def _ideal_points(results: BenchResults) -> list[tuple[int, float, float]]:
    return sorted((e["n_servers"], e["sequential_s"], e["concurrent_s"]) for e in results["ideal"])


def plot_elapsed(results: BenchResults, ax: Axes | None = None) -> Picture:
    """Total time against N for every client (median line, each repeat a faint dot).

    The dashed line is the ideal for one server at a time (the sum of the servers'
    times), the dotted one the ideal for all at once (the slowest server's time).
    """
    with _style():
        fig, ax = _new_axes(ax, SLIDE)
        ideal = _ideal_points(results)
        ns = [n for n, _, _ in ideal]
        ax.plot(ns, [s for _, s, _ in ideal], "--", color=IDEAL_COLOUR, lw=2.5,
                label="ideal, one at a time: the sum", zorder=2)  # fmt: skip
        ax.plot(ns, [c for _, _, c in ideal], ":", color=IDEAL_COLOUR, lw=3,
                label="ideal, all at once: the slowest", zorder=2)  # fmt: skip
        _plot_series(ax, _groups(results, "elapsed_s"))
        _log_n_axis(ax, ns)
        _log_y(ax)
        ax.set_ylabel("seconds to get every poem")
        ax.legend(loc="upper left", framealpha=0.95)
        _note_failures(ax, results)
        _note_skipped(ax, results)
        ax.set_title("Blocking time grows with N (the sum); concurrent\n"
                     "clients stay near the slowest server, then lift off", loc="left")
    return _picture(fig)


def plot_throughput(results: BenchResults, ax: Axes | None = None) -> Picture:
    """Poems delivered per second against N, from the same runs (bytes/s on the right).

    The ideal lines: one server at a time delivers one poem per server-time whatever N
    is (flat, dashed); all at once delivers N per server-time (dotted, growing with N)
    until something runs out: the CPU, memory, threads or file descriptors. Only runs in
    which every poem arrived are drawn, so bytes/s is poems/s times the poem's size.
    """
    with _style():
        fig, ax = _new_axes(ax, SLIDE)
        params = results["parameters"]
        per_server = params["server_time_s"]
        ns = [n for n, _, _ in _ideal_points(results)]
        if per_server > 0 and ns:
            ax.plot(ns, [1 / per_server] * len(ns), "--", color=IDEAL_COLOUR, lw=2.5,
                    label="ideal, one at a time: 1 poem per server-time", zorder=2)
            ax.plot(ns, [n / per_server for n in ns], ":", color=IDEAL_COLOUR, lw=3,
                    label="ideal, all at once: N poems per server-time", zorder=2)
        _plot_series(ax, _groups(results, "poems_per_s"))
        _log_n_axis(ax, ns)
        _log_y(ax)
        ax.set_ylabel("poems delivered per second")
        size = params["poem_bytes"]

        def to_bytes(poems: Any) -> Any:
            return poems * size

        def to_poems(nbytes: Any) -> Any:
            return nbytes / size

        right = ax.secondary_yaxis("right", functions=(to_bytes, to_poems))
        right.set_ylabel(f"bytes per second ({size:,}-byte poems)")
        right.yaxis.set_major_formatter(FuncFormatter(_number))
        ax.legend(loc="upper left", framealpha=0.95, fontsize=13)
        _note_failures(ax, results)
        _note_skipped(ax, results, y=0.12)
        ax.set_title("Throughput: blocking stays flat at one poem per server-time;\n"
                     "concurrent clients grow with N until the CPU runs out", loc="left")
    return _picture(fig)


def plot_efficiency(results: BenchResults, ax: Axes | None = None) -> Picture:
    """Each client's ideal time / measured time against N: 1.0 means no overhead at all.

    The ideal is the client's own model's: the sum for the blocking client, the slowest
    server for every concurrent one. Faint lines mark 5 % and 25 % over the ideal.
    """
    with _style():
        fig, ax = _new_axes(ax, SLIDE)
        groups = _groups(results, "efficiency")
        _plot_series(ax, groups)
        values = [v for by_n in groups.values() for vs in by_n.values() for v in vs]
        low = min([0.7, *values])
        ax.axhline(1.0, color=IDEAL_COLOUR, lw=2.5, ls=":", zorder=2)
        for pct in (5, 25):
            level = 1 / (1 + pct / 100)
            ax.axhline(level, color="#888888", lw=1.5, ls="--", zorder=1)
            ax.text(1.0, level, f" {pct}% over", transform=ax.get_yaxis_transform(),
                    va="center", ha="left", fontsize=13, color="#444444")  # fmt: skip
        ax.text(1.0, 1.0, " ideal", transform=ax.get_yaxis_transform(), va="center",
                ha="left", fontsize=14)  # fmt: skip
        ax.set_ylim(max(0.0, low - 0.05), 1.03)
        _log_n_axis(ax, [e["n_servers"] for e in results["ideal"]])
        ax.set_ylabel("ideal time / measured time")
        ax.legend(loc="lower left", framealpha=0.95)
        ax.set_title("Each client against its own ideal (1.0 = no time added)", loc="left")
    return _picture(fig)


def plot_cpu(results: BenchResults, ax: Axes | None = None) -> Picture:
    """CPU time the client process spent downloading, against N (both axes logarithmic)."""
    with _style():
        fig, ax = _new_axes(ax, SLIDE)
        _plot_series(ax, _groups(results, "cpu_s"))
        _log_n_axis(ax, [e["n_servers"] for e in results["ideal"]])
        _log_y(ax)
        ax.set_ylabel("client CPU seconds (user + system)")
        ax.legend(loc="upper left", framealpha=0.95)
        ax.set_title("Client CPU time (lower is cheaper)", loc="left")
    return _picture(fig)


def plot_per_connection(results: BenchResults) -> Picture:
    """Time and CPU per connection against N, side by side: the C10K view.

    Left, elapsed time / N: ideal for one server at a time is flat (each connection
    costs one server-time), for all at once it falls as 1/N (the same server-time shared
    by N). Right, client CPU / N in microseconds: a flat line is a cost per connection
    that does not grow with N; the dashed line is the cheapest client's cost at the
    largest N, for reference. The clients' legend is shared, below both panels.
    """
    with _style():
        fig = Figure(figsize=SLIDE, layout="constrained")
        left, right = fig.subplots(1, 2)
        ideal = _ideal_points(results)
        ns = [n for n, _, _ in ideal]
        left.plot(ns, [1000 * s / n for n, s, _ in ideal], "--", color=IDEAL_COLOUR, lw=2.5,
                  label="ideal, one at a time", zorder=2)
        left.plot(ns, [1000 * c / n for n, _, c in ideal], ":", color=IDEAL_COLOUR, lw=3,
                  label="ideal, all at once", zorder=2)
        ideal_lines = left.get_legend_handles_labels()
        _plot_series(left, _groups(results, "time_per_connection"), scale=1000)
        _log_n_axis(left, ns, labelled="1")
        _log_y(left)
        left.set_ylabel("ms of elapsed time per connection")
        left.legend(*ideal_lines, loc="lower left", framealpha=0.95, fontsize=13)
        left.set_title("Time per connection\nfalls as 1/N", loc="left")
        cpu = _groups(results, "cpu_per_connection")
        _plot_series(right, cpu, scale=1e6)
        top, at_top = _medians_at_top(cpu)
        if at_top and top is not None:
            cheapest = min(at_top, key=lambda c: at_top[c])
            flat = right.axhline(at_top[cheapest] * 1e6, color=IDEAL_COLOUR, ls="--", lw=2,
                                 zorder=2, label=f"flat: {cheapest}'s cost at N={top:,}")
            right.legend(handles=[flat], loc="upper right", framealpha=0.95, fontsize=13)
        _log_n_axis(right, ns, labelled="1")
        _log_y(right)
        right.set_ylabel("client CPU µs per connection")
        right.set_title("CPU per connection:\nflat means it scales", loc="left")
        clients = [(h, c) for h, c in zip(*left.get_legend_handles_labels(), strict=True)
                   if c in results["parameters"]["clients"]]  # fmt: skip
        if clients:
            fig.legend([h for h, _ in clients], [c for _, c in clients], loc="outside lower center",
                       ncols=len(clients), frameon=False)  # fmt: skip
    named = ", ".join(c for _, c in clients)
    text = f"{describe(fig)}\none line per client: {named}" if clients else describe(fig)
    return Picture(fig, text, dpi=DPI)


_PHASES = (("connect", "connecting", "#88CCEE", ""), ("transfer", "the chunks", "#44AA99", "//"),
           ("finish", "finishing", "#DDCC77", ".."))  # fmt: skip


def _phase(run: RunRecord, name: str) -> float | None:
    phases = run["phases"]
    value = phases.get(name) if phases is not None else None
    return float(value) if isinstance(value, int | float) else None


def plot_phases(results: BenchResults, n_servers: int | None = None) -> Picture:
    """Where each client's time and CPU went at one N (default: the largest measured).

    Two panels of stacked bars, one bar per client, from its median run (by elapsed
    time; see :func:`~poetrylab.bench.results.median_run`), so each bar's parts add up
    to the time and CPU that run took: elapsed time split into connecting, the chunks
    and finishing, with one server's ideal time marked; and client CPU split the same
    way. Phases are told apart by hatching as well as colour. Raises ValueError when no
    run at that N has phases.
    """
    runs = [r for r in good_runs(results["runs"]) if r["phases"] is not None]
    if n_servers is None:
        n_servers = max((r["n_servers"] for r in runs), default=None)
    runs = [r for r in runs if r["n_servers"] == n_servers]
    if not runs or n_servers is None:
        raise ValueError(f"no run at N={n_servers} recorded its phases")
    clients = [c for c in results["parameters"]["clients"] if any(r["client"] == c for r in runs)]
    with _style():
        fig = Figure(figsize=(WIDTH, 2.4 + 0.9 * len(clients)), layout="constrained")
        time_ax, cpu_ax = fig.subplots(1, 2, sharey=True)
        for y, client in enumerate(reversed(clients)):
            run = median_run(r for r in runs if r["client"] == client)
            assert run is not None  # every client listed has a good run at this N
            for ax, prefix in ((time_ax, ""), (cpu_ax, "cpu_")):
                left = 0.0
                for key, label, colour, hatch in _PHASES:
                    width = _phase(run, f"{prefix}{key}_s") or 0.0
                    ax.barh(y, width, left=left, color=colour, hatch=hatch, edgecolor="#333333",
                            lw=1, label=label if y == 0 else None)
                    left += width
                ax.text(left, y, f"  {left:.2f} s", va="center", ha="left", fontsize=14)
        ticks = list(reversed(clients))
        time_ax.set_yticks(range(len(ticks)), ticks)
        for ax in (time_ax, cpu_ax):
            ax.grid(False)
            ax.grid(True, axis="x", alpha=0.3)
            for label in ax.get_yticklabels():
                label.set_fontweight("bold")
        per_server = results["parameters"]["server_time_s"]
        time_ax.axvline(per_server, color=IDEAL_COLOUR, ls=":", lw=3,
                        label="one server's time (the ideal)")
        time_ax.set_xlabel("seconds of elapsed time")
        cpu_ax.set_xlabel("client CPU seconds")
        time_ax.set_xlim(0, time_ax.get_xlim()[1] * 1.15)
        cpu_ax.set_xlim(0, cpu_ax.get_xlim()[1] * 1.15)
        fig.legend(*time_ax.get_legend_handles_labels(), loc="outside lower center", ncol=4,
                   fontsize=14, frameon=False)  # fmt: skip
        time_ax.set_title(f"Where the time went at N={n_servers:,}", loc="left")
        cpu_ax.set_title(f"Where the CPU went at N={n_servers:,}", loc="left")
    legend = ", ".join(label for _, label, _, _ in _PHASES)
    text = f"{describe(fig)}\nbars, one per client: {legend}; dotted line: one server's time"
    return Picture(fig, text, dpi=80)


def plot_overview(results: BenchResults) -> Picture:
    """The main pictures on one page: timelines on top; time, throughput and CPU below.

    A page for an image viewer (1,440 pixels wide), not for a notebook's output area.
    """
    with _style():
        fig = Figure(figsize=(24, 15), layout="constrained")
        grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.05])
        top = fig.add_subplot(grid[0, :])
        runs = timeline_runs(results, max_servers=5)
        if runs:
            plot_timelines(runs, ax=top)
        else:
            top.axis("off")
            top.text(0.5, 0.5, "no chunk timelines stored (every N above chunks_max_servers)",
                     ha="center", va="center", fontsize=18)  # fmt: skip
        plot_elapsed(results, ax=fig.add_subplot(grid[1, 0]))
        plot_throughput(results, ax=fig.add_subplot(grid[1, 1]))
        plot_cpu(results, ax=fig.add_subplot(grid[1, 2]))
        p = results["parameters"]
        fig.suptitle(
            f"poetrylab bench: {p['poem']} ({p['poem_bytes']:,} bytes), {p['num_bytes']} bytes "
            f"every {p['delay']:g} s = {p['server_time_s']:.2f} s per server; "
            f"Python {p['python']}, Twisted {p['twisted']}, {p['usable_cpus']:g} usable CPUs",
            fontsize=19,
        )
    return _picture(fig, dpi=60)


def save_all_figures(results: BenchResults, path: str | Path) -> list[Path]:
    """Write the overview at ``path`` (a ``.png``) and each figure beside it; return the paths.

    For ``figure.png``: ``figure.png`` (overview), and ``figure-timelines``, ``-time``,
    ``-throughput``, ``-efficiency``, ``-cpu``, ``-per-connection`` and ``-phases``
    (those with something to draw), each a PNG at twice display size.
    """
    path = Path(path).with_suffix(".png")
    base = path.with_suffix("")
    written = [plot_overview(results).save(path)]
    runs = timeline_runs(results)
    if runs:
        written.append(plot_timelines(runs).save(f"{base}-timelines.png"))
    for name, plot in (("time", plot_elapsed), ("throughput", plot_throughput),
                       ("efficiency", plot_efficiency), ("cpu", plot_cpu),
                       ("per-connection", plot_per_connection)):  # fmt: skip
        written.append(plot(results).save(f"{base}-{name}.png"))
    if any(r["phases"] is not None and r["elapsed_s"] for r in results["runs"]):
        written.append(plot_phases(results).save(f"{base}-phases.png"))
    return written

