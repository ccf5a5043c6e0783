"""The live view: shown when the block starts, redrawn on the waiting thread's ticks when
something new happened (throttled, never from another thread), the final diagram at the
end; no kernel needed (a fake display and clock stand in)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from poetrylab import _ticks
from poetrylab.tracing import live, trace
from poetrylab.tracing.live import LiveView


class Screen:
    """A display that keeps what it was shown, as IPython's handle would."""

    def __init__(self) -> None:
        self.shown: list[str] = []

    def __call__(self, picture: Any) -> Screen:
        self.shown.append(self._title(picture))
        return self

    def update(self, picture: Any) -> None:
        self.shown.append(self._title(picture))

    @staticmethod
    def _title(picture: Any) -> str:
        # A live frame carries the same words in every frame; the final diagram its own.
        if isinstance(picture, live.LiveFrame):
            assert picture._repr_mimebundle_()[0]["text/plain"] == live.LIVE_TEXT
            return "frame: " + picture.picture.title if picture.picture else "frame ended"
        return str(picture.title)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_live_view_redraws_only_when_something_happened_and_not_too_often() -> None:
    screen, clock = Screen(), Clock()
    with trace() as t:
        view = LiveView(t, screen, clock, every=0.5).start()
        assert screen.shown == ["frame: Nothing was traced"] and _ticks.active()
        d: Deferred[Any] = Deferred()
        d.addCallback(str)
        _ticks.tick()  # too soon
        assert len(screen.shown) == 1
        clock.now = 1.0
        _ticks.tick()
        assert screen.shown[-1] == "frame: d1: not fired → not fired"
        clock.now = 2.0
        _ticks.tick()  # nothing new
        assert len(screen.shown) == 2
        d.callback(1)
        clock.now = 3.0
        _ticks.tick()
        assert screen.shown[-1] == "frame: d1: callback(1) → '1'"
    view.finish()
    assert screen.shown[-2:] == ["frame ended", "d1: callback(1) → '1'"]
    assert view.redraws == 3
    assert not _ticks.active()


def test_ticks_from_another_thread_never_draw() -> None:
    screen, clock = Screen(), Clock()
    with trace() as t:
        view = LiveView(t, screen, clock, every=0).start()
        d: Deferred[Any] = Deferred()
        d.callback(1)
        worker = threading.Thread(target=_ticks.tick)
        worker.start()
        worker.join(timeout=10)
        assert len(screen.shown) == 1
    view.finish()


def test_trace_live_shows_the_final_diagram_even_when_nothing_waited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = Screen()
    monkeypatch.setattr(live, "ipython_display", screen)
    with trace(live=True) as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(str)
        d.callback(2)
    assert screen.shown == ["frame: Nothing was traced", "frame ended", "d1: callback(2) → '2'"]
    assert t.live_view is not None and t.live_view.redraws == 1
    assert not _ticks.active()


def test_outside_ipython_a_live_trace_draws_nothing_and_records_as_usual() -> None:
    with trace(live=True) as t:
        d: Deferred[Any] = Deferred()
        d.callback(1)
    assert not _ticks.active()
    assert t.final(d).state == "result"
