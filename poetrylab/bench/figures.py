"""The benchmark's pictures, drawn from measured runs (notebooks 01 and 17).

* :func:`plot_timelines` — the classic three-model figure, measured: one lane per thread
  of control, a tick for every chunk that arrived, coloured by task.
* :func:`plot_elapsed` — total time against N for every client, with the two ideal lines
  (one server at a time: the sum; all at once: the slowest).
* :func:`plot_efficiency` — ideal / measured against N (1.0 is no overhead at all).
* :func:`plot_cpu` — the client process's CPU time against N.
* :func:`plot_overview` puts all four on one page; :func:`save_all_figures` writes them.

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot, so it
is safe in any thread and shows itself (as a PNG) when it is a notebook cell's value; pass ``ax`` to
draw into an axes of your own instead. Every client keeps one colour and one marker in
every figure (:data:`CLIENT_STYLES`); fonts are sized for a classroom projector.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = [
    "CLIENT_STYLES",
    "client_style",
    "figure_png",
    "plot_cpu",
    "plot_efficiency",
    "plot_elapsed",
    "plot_overview",
    "plot_timelines",
    "save_all_figures",
    "save_figure",
    "timeline_runs",
]

# Okabe-Ito colours: distinct for colour-blind viewers and on a washed-out projector.
CLIENT_STYLES: dict[str, dict[str, str]] = {
    "blocking": {"color": "#D55E00", "marker": "s"},
    "threaded": {"color": "#E69F00", "marker": "^"},
    "select": {"color": "#CC79A7", "marker": "D"},
    "twisted": {"color": "#0072B2", "marker": "o"},
    "asyncio": {"color": "#009E73", "marker": "v"},
    "deferred": {"color": "#0072B2", "marker": "o"},
    "protocol": {"color": "#56B4E9", "marker": "P"},
    "reactor": {"color": "#56B4E9", "marker": "X"},
    "inline": {"color": "#332288", "marker": "h"},
    "coroutine": {"color": "#882255", "marker": "*"},
}
_SPARE_STYLES = [{"color": c, "marker": "o"} for c in ("#7F7F7F", "#8C564B", "#BCBD22")]
TASK_COLOURS = (
    "#4477AA", "#EE7733", "#228833", "#AA3377", "#66CCEE", "#CCBB44", "#555555", "#BB5566",
)  # fmt: skip
IDEAL_COLOUR = "#222222"

_RC = {
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
    "svg.fonttype": "none",
}


@contextmanager
def _style() -> Any:
    with mpl.rc_context(_RC):
        yield


def client_style(client: str) -> dict[str, str]:
    """The colour and marker ``client`` has in every figure (a spare one if unknown)."""
    if client in CLIENT_STYLES:
        return CLIENT_STYLES[client]
    return _SPARE_STYLES[sum(map(ord, client)) % len(_SPARE_STYLES)]


class ShownFigure(Figure):
    """A Figure that shows itself as a PNG in a notebook, with or without pyplot."""

    def _repr_png_(self) -> bytes:
        return figure_png(self, dpi=90)


def _new_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = ShownFigure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _lanes(run: dict[str, Any], max_tasks: int) -> list[list[dict[str, Any]]]:
    """The threads of control a run used, each with the downloads it worked on."""
    tasks = run["timeline"][:max_tasks]
    if run.get("model", run["client"]) == "threaded":
        return [[t] for t in tasks]
    return [tasks]


def timeline_runs(
    results: dict[str, Any],
    clients: Sequence[str] | None = None,
    n_servers: int | None = None,
    max_servers: int = 8,
) -> list[dict[str, Any]]:
    """Pick one run per client for :func:`plot_timelines`: first repeat, chunks stored.

    ``n_servers`` defaults to the largest N up to ``max_servers`` that has chunk
    timelines (more lanes would be unreadable); ``clients`` defaults to blocking,
    threaded and one asynchronous client (twisted if measured). Returns [] when nothing
    suitable was measured.
    """
    runs = [r for r in results["runs"] if r.get("chunks_stored", True) and r["timeline"]]
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
        small = [n for n in counts if n <= max_servers]
        if not counts:
            return []
        n_servers = small[-1] if small else counts[0]
    chosen = []
    for client in clients:
        match = [r for r in runs if r["client"] == client and r["n_servers"] == n_servers]
        if match:
            chosen.append(min(match, key=lambda r: r["repeat"]))
    return chosen


def plot_timelines(
    runs: Sequence[dict[str, Any]],
    ax: Axes | None = None,
    max_tasks: int = 8,
    title: str | None = None,
    task_labels: Sequence[str] | None = None,
) -> Figure:
    """Draw the measured three-model figure from run records (one per client).

    Each shaded band is one thread of control: the blocking client and every
    single-threaded asynchronous client get one band, the threaded client one band per
    thread. Inside a band each task has its own row, and every chunk's arrival is a tick
    in its task's colour: in the blocking band the tasks follow one another like stairs,
    in an asynchronous band they all run at once in the one thread. Each model's total
    time is written where it ended. At most ``max_tasks`` tasks of a run are drawn.
    ``task_labels`` names the tasks in the legend (e.g. the poems), in task order; by
    default they are "task 1", "task 2", ... Raises ValueError if ``runs`` is empty or
    kept no chunks.
    """
    if not runs:
        raise ValueError("no runs to draw: measure at least one client first")
    if any(not r.get("chunks_stored", True) for r in runs):
        raise ValueError("these runs kept no chunk timelines (N above chunks_max_servers)")
    with _style():
        lanes = [(run, i, lane) for run in runs for i, lane in enumerate(_lanes(run, max_tasks))]
        rows = [len(lane) for _, _, lane in lanes]
        gap = 0.5
        total = sum(rows) + gap * (len(lanes) - 1)
        height = max(4.0, 2.2 + 0.42 * total)
        fig, ax = _new_axes(ax, (15, height))
        ax.grid(False)
        ax.grid(True, axis="x", alpha=0.3)
        ticks: list[tuple[float, str, str]] = []
        n_tasks = 0
        top = total
        run_end: dict[int, tuple[float, float]] = {}
        right = 0.0
        for run, index, lane in lanes:
            colour = client_style(run["client"])["color"]
            bottom = top - len(lane)
            ax.axhspan(bottom + 0.04, top - 0.04, color=colour, alpha=0.10, lw=0, zorder=0)
            for k, task in enumerate(lane):
                y = top - 0.5 - k
                n_tasks = max(n_tasks, task["task"])
                tcol = TASK_COLOURS[(task["task"] - 1) % len(TASK_COLOURS)]
                if task["started"] is not None and task["finished"] is not None:
                    ax.hlines(y, task["started"], task["finished"], colors=tcol, lw=1.5,
                              alpha=0.6, zorder=1)
                    right = max(right, task["finished"])
                times = [c[0] for c in task.get("chunks", [])]
                ax.vlines(times, y - 0.36, y + 0.36, colors=tcol, lw=2.2, zorder=2)
                if task.get("error"):
                    ax.plot([task["finished"]], [y], "x", color="#CC0000", ms=14, mew=3)
            if run.get("model", run["client"]) != "threaded":
                label = f"{run['client']}\n1 thread"
            elif index == 0:
                label = f"{run['client']}\nthread 1"
            else:
                label = f"thread {index + 1}"
            ticks.append(((top + bottom) / 2, label, colour))
            finish = max((t["finished"] or 0.0 for t in run["timeline"][:max_tasks]), default=0.0)
            run_end[id(run)] = (finish, (top + bottom) / 2)
            top = bottom - gap
        for run in runs:
            finish, y = run_end[id(run)]
            elapsed = run.get("elapsed_s") or finish
            ax.text(finish, y, f"  {elapsed:.2f} s", va="center", ha="left", fontsize=16,
                    color=client_style(run["client"])["color"], fontweight="bold")
        ax.set_yticks([y for y, _, _ in ticks], [label for _, label, _ in ticks])
        for tick, (_, _, colour) in zip(ax.get_yticklabels(), ticks, strict=True):
            tick.set_color(colour)
            tick.set_fontweight("bold")
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-0.1, total + 0.1)
        ax.set_xlim(0, right * 1.13 + 1e-3)
        ax.set_xlabel("seconds since the client started (a tick: a chunk of the poem arrived)")
        names = [f"task {i + 1}" for i in range(min(n_tasks, max_tasks))]
        names[: len(task_labels or ())] = list(task_labels or ())[: len(names)]
        handles = [
            Line2D([], [], color=TASK_COLOURS[i % len(TASK_COLOURS)], lw=5, label=name)
            for i, name in enumerate(names)
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  framealpha=0.95, borderaxespad=0.3)
        n = runs[0]["n_servers"]
        ax.set_title(title or f"{n} slow servers: one after another takes the sum;\n"
                     "threads, or one thread doing all at once, take the slowest", loc="left")
    return fig


def _groups(results: dict[str, Any], key: str) -> dict[str, dict[int, list[float]]]:
    """client -> N -> the values of ``key`` in runs where every download succeeded."""
    out: dict[str, dict[int, list[float]]] = {}
    for client in results["parameters"]["clients"]:
        out[client] = {}
    for run in results["runs"]:
        value = run.get(key)
        if value is None or run["elapsed_s"] is None or run["errors"]:
            continue
        out.setdefault(run["client"], {}).setdefault(run["n_servers"], []).append(value)
    return out


def _failures(results: dict[str, Any]) -> list[str]:
    seen: dict[tuple[str, int], str] = {}
    for run in results["runs"]:
        if run["elapsed_s"] is None or run["errors"]:
            seen.setdefault((run["client"], run["n_servers"]), str(run["error"]))
    return [f"{c} failed at N={n}: {reason[:90]}" for (c, n), reason in seen.items()]


def _log_n_axis(ax: Axes, counts: Iterable[int]) -> None:
    counts = sorted(set(counts))
    ax.set_xscale("log")
    ax.set_xticks(counts, [f"{n:,}" for n in counts])
    ax.xaxis.set_minor_formatter(NullFormatter())
    if counts:
        ax.set_xlim(counts[0] / 1.4, counts[-1] * 1.4)
    ax.set_xlabel("number of servers, N")


def _seconds(value: float, _pos: object = None) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:g}"


def _plot_series(ax: Axes, groups: dict[str, dict[int, list[float]]], scale: float = 1.0) -> None:
    for client, by_n in groups.items():
        if not by_n:
            continue
        style = client_style(client)
        ns = sorted(by_n)
        for n in ns:
            ax.plot([n] * len(by_n[n]), [v * scale for v in by_n[n]], style["marker"],
                    color=style["color"], alpha=0.35, ms=7, zorder=3)
        medians = [statistics.median(by_n[n]) * scale for n in ns]
        ax.plot(ns, medians, "-", marker=style["marker"], color=style["color"], lw=3, ms=10,
                label=client, zorder=4)


def _note_failures(ax: Axes, results: dict[str, Any]) -> None:
    failures = _failures(results)
    if failures:
        ax.text(0.01, 0.01, "\n".join(failures[:3]), transform=ax.transAxes, fontsize=12,
                color="#CC0000", va="bottom", ha="left")


def plot_elapsed(results: dict[str, Any], ax: Axes | None = None) -> Figure:
    """Total time against N for every client (median line, each repeat a faint dot).

    The dashed line is the ideal for one server at a time (the sum of the servers'
    times), the dotted one the ideal for all at once (the slowest server's time).
    """
    with _style():
        fig, ax = _new_axes(ax, (12, 7.5))
        ideal = sorted(results["ideal"], key=lambda e: e["n_servers"])
        ns = [e["n_servers"] for e in ideal]
        ax.plot(ns, [e["sequential_s"] for e in ideal], "--", color=IDEAL_COLOUR, lw=2.5,
                label="ideal, one at a time: sum", zorder=2)
        ax.plot(ns, [e["concurrent_s"] for e in ideal], ":", color=IDEAL_COLOUR, lw=3,
                label="ideal, all at once: slowest", zorder=2)
        _plot_series(ax, _groups(results, "elapsed_s"))
        _log_n_axis(ax, ns)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_seconds))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("seconds to get every poem")
        if ideal:
            last = ideal[-1]
            ax.annotate("sum", (last["n_servers"], last["sequential_s"]), xytext=(8, 0),
                        textcoords="offset points", va="center", fontsize=15)
            ax.annotate("slowest", (last["n_servers"], last["concurrent_s"]), xytext=(8, -14),
                        textcoords="offset points", va="center", fontsize=15)
        ax.legend(loc="upper left", framealpha=0.95)
        _note_failures(ax, results)
        skipped = sorted({(s["client"], s["n_servers"]) for s in results.get("skipped", [])})
        if skipped:
            clients = ", ".join(dict.fromkeys(c for c, _ in skipped))
            limit = results["parameters"].get("max_run_s")
            over = f"over the {limit:g} s limit" if limit else "over the time limit"
            ax.text(0.98, 0.3, f"{clients} not run at N ≥ {min(n for _, n in skipped):,}:\n"
                    f"ideal time {over}", transform=ax.transAxes, ha="right",
                    va="center", fontsize=14, color="#444444")
        ax.set_title("Blocking time grows with N (the sum);\n"
                     "concurrent clients stay near the slowest server", loc="left")
    return fig


def plot_efficiency(results: dict[str, Any], ax: Axes | None = None) -> Figure:
    """Each client's ideal time / measured time against N: 1.0 means no overhead at all.

    The ideal is the client's own model's: the sum for the blocking client, the slowest
    server for every concurrent one. Faint lines mark 3 % and 5 % over the ideal.
    """
    with _style():
        fig, ax = _new_axes(ax, (12, 7.5))
        groups = _groups(results, "efficiency")
        _plot_series(ax, groups)
        values = [v for by_n in groups.values() for vs in by_n.values() for v in vs]
        low = min([0.9, *values]) if values else 0.9
        ax.axhline(1.0, color=IDEAL_COLOUR, lw=2.5, ls=":", zorder=2)
        for pct in (3, 5):
            level = 1 / (1 + pct / 100)
            ax.axhline(level, color="#888888", lw=1.5, ls="--", zorder=1)
            ax.text(1.0, level, f" {pct}% over", transform=ax.get_yaxis_transform(),
                    va="center", ha="left", fontsize=13, color="#555555")
        ax.text(1.0, 1.0, " ideal", transform=ax.get_yaxis_transform(), va="center",
                ha="left", fontsize=14)
        ax.set_ylim(max(0.0, low - 0.03), 1.02)
        _log_n_axis(ax, [e["n_servers"] for e in results["ideal"]])
        ax.set_ylabel("ideal time / measured time")
        ax.legend(loc="lower left", framealpha=0.95)
        title = "Each client against its ideal (1.0 = no time added)"
        top_n = max((n for by_n in groups.values() for n in by_n), default=None)
        at_top = {c: statistics.median(by_n[top_n]) for c, by_n in groups.items()
                  if top_n is not None and top_n in by_n}  # fmt: skip
        if len(at_top) > 1:
            worst = min(at_top, key=lambda c: at_top[c])
            best = max(at_top, key=lambda c: at_top[c])
            title += (f"\nat N={top_n:,}: {worst} {100 * (1 / at_top[worst] - 1):.1f}% over, "
                      f"{best} {100 * (1 / at_top[best] - 1):.1f}%")
        ax.set_title(title, loc="left")
    return fig


def plot_cpu(results: dict[str, Any], ax: Axes | None = None) -> Figure:
    """CPU time the client process spent downloading, against N (both axes logarithmic).

    The title names the client that spent the most CPU at the largest N measured.
    """
    with _style():
        fig, ax = _new_axes(ax, (12, 7.5))
        groups = _groups(results, "cpu_s")
        _plot_series(ax, groups)
        _log_n_axis(ax, [e["n_servers"] for e in results["ideal"]])
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_seconds))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("client CPU seconds (user + system)")
        ax.legend(loc="upper left", framealpha=0.95)
        title = "Client CPU time (lower is cheaper)"
        top_n = max((n for by_n in groups.values() for n in by_n), default=None)
        if top_n is not None:
            at_top = {
                c: statistics.median(by_n[top_n]) for c, by_n in groups.items() if top_n in by_n
            }
            if len(at_top) > 1:
                worst = max(at_top, key=lambda c: at_top[c])
                best = min(at_top, key=lambda c: at_top[c])
                ratio = at_top[worst] / at_top[best] if at_top[best] > 0 else math.inf
                title += f"\nat N={top_n:,}: {worst} used {ratio:.1f}× {best}'s CPU"
        ax.set_title(title, loc="left")
    return fig


def plot_overview(results: dict[str, Any]) -> Figure:
    """All four pictures on one page: timelines on top; time, efficiency and CPU below."""
    with _style():
        fig = ShownFigure(figsize=(24, 15), layout="constrained")
        grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.05])
        top = fig.add_subplot(grid[0, :])
        runs = timeline_runs(results, max_servers=5)
        if runs:
            plot_timelines(runs, ax=top)
        else:
            top.axis("off")
            top.text(0.5, 0.5, "no chunk timelines stored (every N above chunks_max_servers)",
                     ha="center", va="center", fontsize=18)
        plot_elapsed(results, ax=fig.add_subplot(grid[1, 0]))
        plot_efficiency(results, ax=fig.add_subplot(grid[1, 1]))
        plot_cpu(results, ax=fig.add_subplot(grid[1, 2]))
        p = results["parameters"]
        fig.suptitle(
            f"poetrylab bench: {p['poem']} ({p['poem_bytes']:,} bytes), {p['num_bytes']} bytes "
            f"every {p['delay']:g} s = {p['server_time_s']:.2f} s per server; "
            f"Python {p['python']}, Twisted {p['twisted']}, {p['cpu_count']} CPUs",
            fontsize=19,
        )
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render ``fig`` to PNG bytes (for tests, or to embed elsewhere)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> list[Path]:
    """Write ``fig`` as PNG and SVG beside each other (``path``'s suffix is replaced).

    Returns the paths written. Creates the directory if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        target = path.with_suffix(suffix)
        fig.savefig(target, dpi=dpi)
        written.append(target)
    return written


def save_all_figures(results: dict[str, Any], path: str | Path) -> list[Path]:
    """Write the overview at ``path`` and each figure beside it; return every path written.

    For ``figure.png``: ``figure.png``/``.svg`` (overview), and ``figure-timelines``,
    ``figure-time``, ``figure-efficiency``, ``figure-cpu`` (PNG and SVG each).
    """
    path = Path(path)
    base = path.with_suffix("")
    written = save_figure(plot_overview(results), path)
    runs = timeline_runs(results)
    if runs:
        written += save_figure(plot_timelines(runs), f"{base}-timelines.png")
    written += save_figure(plot_elapsed(results), f"{base}-time.png")
    written += save_figure(plot_efficiency(results), f"{base}-efficiency.png")
    written += save_figure(plot_cpu(results), f"{base}-cpu.png")
    return written
