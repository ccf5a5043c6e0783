"""Tracing on patches Twisted; tracing off puts back the very same objects."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.defer import Deferred, DeferredList

from poetrylab.tracing import Tracer, is_patched, trace


def identities() -> dict[tuple[str, str], int]:
    out = {}
    for owner in (Deferred, DeferredList, defer):
        for name, value in vars(owner).items():
            out[(getattr(owner, "__name__", "?"), name)] = id(value)
    return out


def test_no_patch_is_left_behind_after_the_block() -> None:
    before = identities()
    assert not is_patched()
    with trace():
        assert is_patched()
        assert identities() != before
        d: Deferred[Any] = Deferred()
        d.addCallback(str).callback(1)
    assert not is_patched()
    assert identities() == before


def test_patches_stay_until_the_last_of_nested_tracers_stops() -> None:
    before = identities()
    with trace() as outer:
        with trace() as inner:
            d: Deferred[Any] = Deferred()
            d.addCallback(str)
        assert is_patched()
        d.callback(1)
    assert identities() == before
    assert outer.path(d) == [("callback", "str", "returned")]
    assert inner.path(d) == []  # it had stopped when d fired


def test_two_tracers_at_once_each_record_the_deferred() -> None:
    first, second = Tracer().start(), Tracer().start()
    try:
        d: Deferred[Any] = Deferred()
        d.addCallback(str)
        d.callback(1)
    finally:
        second.stop()
        first.stop()
    assert first.path(d) == second.path(d) == [("callback", "str", "returned")]
    assert not is_patched()


def test_patches_are_removed_even_when_the_block_raises() -> None:
    before = identities()
    with pytest.raises(RuntimeError), trace():
        raise RuntimeError("boom")
    assert identities() == before


def test_a_tracer_records_once() -> None:
    tracer = Tracer()
    with tracer:
        pass
    with pytest.raises(RuntimeError):
        tracer.start()
    tracer.stop()  # stopping again is harmless


def test_shims_left_in_a_live_chain_record_nothing_after_stop() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(str)
    count = len(t.snapshot().events)
    d.callback(5)
    assert d.result == "5"
    assert len(t.snapshot().events) == count


def test_untraced_deferreds_behave_the_same_while_tracing() -> None:
    outside: Deferred[Any] = Deferred()
    with trace() as t:
        outside.addCallback(lambda x: x + 1)
        outside.addErrback(lambda f: "bad")
        outside.callback(1)
    assert outside.result == 2
    assert t.snapshot().deferreds == []
