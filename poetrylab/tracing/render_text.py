"""A trace as text: for terminals, tests and notebooks checked by nbval (notebooks 04-09).

The text is deterministic: no timestamps, no memory addresses, no thread idents, no ids
other than the Deferreds' labels, so the same program always prints the same story. Two
views:

- ``chains``: each Deferred in turn, its events in order, ending with where it ended up;
- ``events``: every event in the order it happened, each prefixed with its Deferred.

:func:`describe` gives the one-line description of an event that both views (and the
step-through widget) use. :func:`short_text` is the faithful short form a notebook shows
as ``text/plain`` beside a picture: the whole story when it is short; for a long one, runs
of lines that differ only in their numbers and quoted values folded into one line and a
count (``… and 57 more like this``), and no more than :data:`SHORT_LINES` lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .model import Event, TraceData, Value

__all__ = ["SHORT_LINES", "describe", "final_line", "render_text", "short_text", "step_numbers"]

SHORT_LINES = 40
"""The most lines :func:`short_text` gives."""

_ORIGIN = {
    "watched": "watched: stages added before are not shown",
    "inner": "returned by a stage of {parent}",
    "member": "member of {parent}",
    "awaited": "awaited by {parent}",
    "chained": "chained from {parent}",
}


def _v(value: Value | None, labels: dict[int, str]) -> str:
    return "?" if value is None else value.describe(labels)


def _ref(did: int | None, labels: dict[int, str], unknown: str = "an untraced Deferred") -> str:
    return unknown if did is None else labels.get(did, f"d{did}")


def describe(trace: TraceData, event: Event, step_number: int | None = None) -> str:
    """One line saying what ``event`` was, in words, without its Deferred's label."""
    labels = trace.labels
    info = trace.deferred(event.deferred)
    kind = event.kind
    if kind == "created":
        note = _ORIGIN.get(info.origin, "").format(parent=_ref(info.parent, labels))
        return f"{info.title}" + (f"  ({note})" if note else "")
    row = _row(trace, event)
    if kind == "stage_added":
        stage = info.stage(event.stage or 0)
        if stage.role == "runtime":
            return "the notebook runtime waits for the result here (its own stage, not yours)"
        cb = f"({stage.callback})" if stage.callback_implicit else stage.callback
        eb = f"({stage.errback})" if stage.errback_implicit else stage.errback
        return f"stage {row} added: {cb} | {eb}"
    value = _v(event.value, labels)
    if kind == "fired":
        if event.outcome == "untraced":
            return f"earlier stages (not traced) passed on {value}"
        if event.outcome == "already":
            return f"already fired with {value} ({event.detail})"
        if event.outcome == "cancel":
            how = (event.detail or "errback").split()[0].rstrip(",")
            tail = " from its canceller" if "from its canceller" in (event.detail or "") else ""
            return f"fired by cancel(): {how}({value}){tail}"
        return f"fired: {event.outcome}({value})"
    if kind == "fire_rejected":
        return f"{event.outcome}({value}) again: AlreadyCalledError"
    if kind == "fire_ignored":
        return f"{event.outcome}({value}) ignored: it was cancelled, the late result is dropped"
    if kind == "stage_ran":
        stage = info.stage(event.stage or 0)
        side = event.side or "callback"
        name = stage.name(side)
        if stage.role == "runtime":
            return f"handed to the notebook: {value}"
        if event.outcome == "passed":
            return f"stage {row} {side} ({name}): {value} passes on"
        result = _v(event.result, labels)
        if event.outcome == "raised" and event.result is not None:
            result = event.result.label(labels)
        if event.other is not None and event.other == event.deferred:
            result += " (itself!)"
        return f"stage {row} {side} {name}: got {value}, {event.outcome} {result}"
    if kind == "paused":
        if event.other == event.deferred:
            return "paused: waiting on itself, so it can never go on (Twisted warns)"
        return f"paused: waiting on {_ref(event.other, labels)}"
    if kind == "resumed":
        return f"resumed with {value} from {_ref(event.other, labels)}"
    if kind == "adopted":
        return f"took {value} from {_ref(event.other, labels)} at once (it had already fired)"
    if kind == "held":
        more = f" ({event.slot} in force)" if (event.slot or 0) > 1 else ""
        return f"pause() called: no stage runs until unpause(){more}"
    if kind == "released":
        still = f", {event.slot} pause() still in force" if event.slot else ""
        return f"unpause() called{still}"
    if kind == "cancel":
        who = {
            "user": "cancel() called",
            "timeout": "timed out: addTimeout called cancel()",
        }.get(event.outcome or "", f"cancel() called by {_ref(event.other, labels)}")
        effect = {
            "fired": " (already fired: no effect)",
            "waiting": " (forwarded to the Deferred it waits on)",
        }.get(event.detail or "", "")
        return who + effect
    if kind == "canceller":
        if event.outcome == "raised" and event.result is not None:
            return f"canceller {event.detail} raised {event.result.label(labels)}"
        return f"canceller {event.detail} called"
    if kind == "timeout_set":
        return f"addTimeout: cancel after {event.detail} unless fired first"
    if kind == "member_result":
        return f"member {event.slot} ({_ref(event.other, labels)}) gave {value}"
    if kind == "step":
        return _step(info.kind, event, value, labels, step_number)
    return kind


def _step(
    kind: str, event: Event, value: str, labels: dict[int, str], step_number: int | None
) -> str:
    result = _v(event.result, labels)
    where = "await" if kind == "coroutine" else "yield"
    verb = "awaits" if kind == "coroutine" else "yields"
    if event.side == "throw":
        thrown = event.value.type if event.value is not None else "?"
        came = f"{thrown} raised at the {where}"
        if event.outcome == "raised" and event.result == event.value:
            return f"{came}, not caught"
    elif step_number == 0:
        came = "started"
    else:
        came = f"got {value}"
    if event.outcome == "yielded":
        return f"{came} → {verb} {result}"
    if event.outcome == "raised" and event.result is not None:
        result = event.result.label(labels)
    return f"{came} → {event.outcome} {result}"


def _row(trace: TraceData, event: Event) -> int | None:
    if event.stage is None:
        return None
    try:
        return trace.deferred(event.deferred).row_of(event.stage)
    except KeyError:
        return event.stage


def final_line(trace: TraceData, did: int) -> str:
    """Where Deferred ``did`` ended up, in words."""
    labels = trace.labels
    final = trace.final(did)
    held = " (paused by pause(): waiting for unpause())" if final.held else ""
    if final.state == "unfired":
        if trace.deferred(did).untraced:
            return "not fired (or still in the stages added before tracing)" + held
        return "not fired" + held
    if final.state == "waiting":
        if final.other == did:
            return "waiting on itself: it can never go on"
        return f"waiting on {_ref(final.other, labels)}" + held
    if final.state == "handed":
        return f"result {_v(final.value, labels)} handed on to {_ref(final.other, labels)}"
    if final.state == "held":
        return f"holds {_v(final.value, labels)}, paused by pause(): waiting for unpause()"
    if final.to_notebook:
        return f"result: {_v(final.value, labels)} (handed to the notebook)"
    return f"result: {_v(final.value, labels)}"


def step_numbers(trace: TraceData) -> dict[int, int]:
    """Map each ``step`` event's seq to its position among its Deferred's steps."""
    counts: dict[int, int] = {}
    numbers = {}
    for e in trace.events:
        if e.kind == "step":
            numbers[e.seq] = counts.get(e.deferred, 0)
            counts[e.deferred] = numbers[e.seq] + 1
    return numbers


def render_text(
    trace: TraceData, view: str = "chains", threads: bool = False, only: Iterable[int] | None = None
) -> str:
    """Render ``trace`` as text (see the module docstring); ``only`` limits it to those
    Deferreds (ids). Raises ValueError on a bad view."""
    steps = step_numbers(trace)
    wanted = None if only is None else set(only)

    def line(e: Event) -> str:
        text = describe(trace, e, steps.get(e.seq))
        return f"[{e.thread}] {text}" if threads else text

    out: list[str] = []
    if view == "chains":
        by_deferred: dict[int, list[Event]] = {}
        for e in trace.events:
            by_deferred.setdefault(e.deferred, []).append(e)
        for info in trace.deferreds:
            if wanted is not None and info.id not in wanted:
                continue
            events = by_deferred.get(info.id, [])
            head = [e for e in events if e.kind == "created"]
            out.append(line(head[0]) if head else info.title)
            out.extend("  " + line(e) for e in events if e.kind != "created")
            out.append("  " + final_line(trace, info.id))
        out.extend(f"({note})" for note in trace.notes)
        return "\n".join(out)
    if view == "events":
        labels = trace.labels
        width = max((len(label) for label in labels.values()), default=2)
        for e in trace.events:
            if wanted is None or e.deferred in wanted:
                out.append(f"{labels.get(e.deferred, '?'):<{width}}  {line(e)}")
        out.extend(f"({note})" for note in trace.notes)
        return "\n".join(out)
    raise ValueError(f"unknown view {view!r}: use 'chains' or 'events'")


_VARYING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?\d+(?:\.\d+)?")


def _shape(line: str) -> str:
    """A line with its numbers and quoted values blanked: what repeats in a loop."""
    return _VARYING.sub("#", line)


def fold_lines(lines: list[str], at_least: int = 3) -> list[str]:
    """Runs of consecutive lines of the same shape, folded: the first line, then ``… and N
    more like this``, then the last line. Runs of patterns two or three lines long (a
    loop's yield and resumption) fold the same way."""
    out: list[str] = []
    i = 0
    shapes = [_shape(line) for line in lines]
    while i < len(lines):
        folded = False
        for size in (1, 2, 3):
            pattern = shapes[i : i + size]
            if len(pattern) < size:
                break
            count = 1
            while shapes[i + count * size : i + (count + 1) * size] == pattern:
                count += 1
            if count >= at_least:
                indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
                out.extend(lines[i : i + size])
                more = count - 2
                unit = "like this" if size == 1 else f"groups of {size} lines like these"
                out.append(f"{indent}… and {more} more {unit}")
                out.extend(lines[i + (count - 1) * size : i + count * size])
                i += count * size
                folded = True
                break
        if not folded:
            out.append(lines[i])
            i += 1
    return out


def short_text(
    trace: TraceData, only: Iterable[int] | None = None, limit: int = SHORT_LINES
) -> str:
    """The faithful short form of the trace's text (see the module docstring)."""
    full = render_text(trace, only=only).splitlines()
    if len(full) <= limit:
        return "\n".join(full)
    lines = fold_lines(
        [line for line in full if " added: " not in line or not line.startswith("  stage")]
    )
    added = sum(1 for line in full if line.startswith("  stage") and " added: " in line)
    if len(lines) > limit:
        keep = limit - 2
        lines = [
            *lines[: keep // 2],
            f"… {len(lines) - keep} more lines …",
            *lines[-(keep - keep // 2) :],
        ]
    note = f"({added} 'stage added' lines left out; print(t.text()) shows every line)"
    return "\n".join([*lines, note])
