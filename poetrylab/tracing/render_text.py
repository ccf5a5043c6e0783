"""A trace as text: for terminals, tests and notebooks checked by nbval (notebooks 04-09).

The text is deterministic: no timestamps, no memory addresses, no ids other than the
Deferreds' labels, so the same program always prints the same story. Two views:

- ``chains``: each Deferred in turn, its events in order, ending with where it ended up;
- ``events``: every event in the order it happened, each prefixed with its Deferred.

:func:`describe` gives the one-line description of an event that both views (and the
step-through widget) use.
"""

from __future__ import annotations

from .model import Event, Trace, Value

__all__ = ["render_text", "describe", "final_line", "step_numbers"]

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


def describe(trace: Trace, event: Event, step_number: int | None = None) -> str:
    """One line saying what ``event`` was, in words, without its Deferred's label."""
    labels = trace.labels
    info = trace.deferred(event.deferred)
    kind = event.kind
    if kind == "created":
        note = _ORIGIN.get(info.origin, "")
        note = note.format(parent=_ref(info.parent, labels))
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
            return f"fired by cancel(): {how}({value})" + (
                " from its canceller" if "from its canceller" in (event.detail or "") else ""
            )
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
            result = event.result.describe(labels)[len("Failure(") : -1]
        return f"stage {row} {side} {name}: got {value}, {event.outcome} {result}"
    if kind == "paused":
        return f"paused: waiting on {_ref(event.other, labels)}"
    if kind == "resumed":
        return f"resumed with {value} from {_ref(event.other, labels)}"
    if kind == "adopted":
        return f"took {value} from {_ref(event.other, labels)} at once (it had already fired)"
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
        return f"canceller {event.detail} called"
    if kind == "timeout_set":
        return f"addTimeout: cancel after {event.detail} unless fired first"
    if kind == "member_result":
        who = _ref(event.other, labels)
        return f"member {event.slot} ({who}) gave {value}"
    if kind == "step":
        result = _v(event.result, labels)
        where = "await" if info.kind == "coroutine" else "yield"
        verb = "awaits" if info.kind == "coroutine" else "yields"
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
            result = event.result.describe(labels)[len("Failure(") : -1]
        return f"{came} → {event.outcome} {result}"
    return f"{kind}"


def _row(trace: Trace, event: Event) -> int | None:
    if event.stage is None:
        return None
    try:
        return trace.deferred(event.deferred).row_of(event.stage)
    except KeyError:
        return event.stage


def final_line(trace: Trace, did: int) -> str:
    """Where Deferred ``did`` ended up, in words."""
    labels = trace.labels
    final = trace.final(did)
    if final.state == "unfired":
        if trace.deferred(did).untraced:
            return "not fired (or still in the stages added before tracing)"
        return "not fired"
    if final.state == "waiting":
        return f"waiting on {_ref(final.other, labels)}"
    if final.state == "handed":
        return f"result {_v(final.value, labels)} handed on to {_ref(final.other, labels)}"
    if final.to_notebook:
        return f"result: {_v(final.value, labels)} (handed to the notebook)"
    return f"result: {_v(final.value, labels)}"


def step_numbers(trace: Trace) -> dict[int, int]:
    """Map each ``step`` event's seq to its position among its Deferred's steps."""
    counts: dict[int, int] = {}
    numbers = {}
    for e in trace.events:
        if e.kind == "step":
            numbers[e.seq] = counts.get(e.deferred, 0)
            counts[e.deferred] = numbers[e.seq] + 1
    return numbers


def render_text(trace: Trace, view: str = "chains", threads: bool = False) -> str:
    """Render ``trace`` as text (see the module docstring). Raises ValueError on a bad view."""
    steps = step_numbers(trace)

    def line(e: Event) -> str:
        text = describe(trace, e, steps.get(e.seq))
        return f"[{e.thread}] {text}" if threads else text

    out: list[str] = []
    if view == "chains":
        for info in trace.deferreds:
            events = trace.events_for(info.id)
            head = [e for e in events if e.kind == "created"]
            out.append(line(head[0]) if head else info.title)
            out.extend("  " + line(e) for e in events if e.kind != "created")
            out.append("  " + final_line(trace, info.id))
        return "\n".join(out)
    if view == "events":
        labels = trace.labels
        width = max((len(label) for label in labels.values()), default=2)
        for e in trace.events:
            out.append(f"{labels.get(e.deferred, '?'):<{width}}  {line(e)}")
        return "\n".join(out)
    raise ValueError(f"unknown view {view!r}: use 'chains' or 'events'")
