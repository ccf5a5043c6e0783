"""Checks for notebook 06 (servers and a transformation service).

* :func:`check_shout` — the learner's registry: a transform ``shout`` (upper case) that a
  real transformation server serves, while private names stay out of reach.
* :func:`check_transform_or_keep` — the learner's ``transform_or_keep(reactor, address,
  name, poem)``: a Deferred that falls back to the original poem when the server refuses,
  and lets every other failure (a server that is down) through.

Both run the learner's code against real transformation servers on loopback, through the
notebook runtime.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import error
from twisted.internet.defer import Deferred

from poetrylab import runtime
from poetrylab.exercises._feedback import (
    Feedback,
    exercise,
    failed,
    passed,
    run_learner_code,
    short,
)
from poetrylab.services import quiet_logs, transform

__all__ = ["SAMPLE", "check_shout", "check_transform_or_keep"]

SAMPLE = "Tyger Tyger, burning bright,\nIn the forests of the night;\nÜber alles\n"
"""The poem the checks send (one line is not ASCII)."""


def _served(registry: transform.TransformRegistry) -> Any:
    reactor = runtime.start().reactor
    return runtime.call(
        lambda: transform.listen_transform(reactor, registry=registry, timeout=2.0),
        what="starting a transformation server",
    )


def _ask(port: Any, name: str, poem: str) -> tuple[bool, Any]:
    reactor = runtime.start().reactor
    host = port.getHost()
    try:
        return True, runtime.call(
            transform.transform_poem, reactor, (host.host, host.port), name, poem, 5.0,
            what=f"asking for {name}",
        )  # fmt: skip
    except Exception as exc:
        return False, exc


@exercise("06")
def check_shout(registry: Any) -> Feedback:
    """``registry`` must hold ``shout``, which a server applies: the poem in capitals."""
    with quiet_logs(logging.CRITICAL):
        return _check_shout(registry)


def _check_shout(registry: Any) -> Feedback:
    name = "register shout"
    if not isinstance(registry, transform.TransformRegistry):
        return failed(
            name,
            "pass the registry itself",
            expected="a TransformRegistry (from transform.default_registry())",
            got=short(registry),
            hint="registry = transform.default_registry(); then registry.register('shout', ...)",
        )
    if "shout" not in registry:
        return failed(
            name,
            "there is no transform called 'shout' in your registry",
            expected="'shout' among " + ", ".join(registry.names() or ["(nothing)"]),
            hint="@registry.register('shout') above your function, or "
            "registry.register('shout', your_function)",
        )
    port = _served(registry)
    try:
        ok, reply = _ask(port, "shout", SAMPLE)
        if not ok:
            return failed(
                name,
                "the server refused to shout: it closed the connection without a reply",
                expected=short(SAMPLE.upper()),
                got=type(reply).__name__,
                hint="call your function on a poem in a cell: it must take a str and return "
                "a str (not bytes, not None)",
            )
        if reply != SAMPLE.upper():
            return failed(
                name,
                "the server answered, but that is not the poem in capitals",
                expected=short(SAMPLE.upper()),
                got=short(reply),
                hint="str.upper() does it, Ü included; keep the newlines",
            )
        ok, reply = _ask(port, "__class__", SAMPLE)
        if ok:
            return failed(
                name,
                "a client could call '__class__' on your server",
                hint="only names registered with registry.register can be called",
            )
    finally:
        runtime.call(port.stopListening, what="stopping the server")
    return passed(name, "your transform is one registry entry away, and nothing else is.")


@exercise("06")
def check_transform_or_keep(transform_or_keep: Any) -> Feedback:
    """Refusals fall back to the original poem; other failures still fail."""
    with quiet_logs(logging.CRITICAL):
        return _check_transform_or_keep(transform_or_keep)


def _check_transform_or_keep(transform_or_keep: Any) -> Feedback:
    name = "fall back to the original"
    registry = transform.TransformRegistry()
    registry.register("cummingsify", transform.cummingsify)
    registry.register("refrain", transform.Refrain(seed=0, failure_rate=1.0))
    reactor = runtime.start().reactor
    port = _served(registry)
    host = port.getHost()
    address = (host.host, host.port)
    try:
        cases = [
            ("cummingsify", SAMPLE.lower(), "a transform that works"),
            ("refrain", SAMPLE, "a transform that fails (the muse did not come)"),
            ("nosuch", SAMPLE, "an unknown transform"),
        ]
        for transform_name, expected, what in cases:
            ok, d = run_learner_code(transform_or_keep, reactor, address, transform_name, SAMPLE)
            if not ok:
                return failed(
                    name,
                    f"it raised for {what}",
                    got=d,
                    hint="build the Deferred and return it; do not wait for it",
                )
            if not isinstance(d, Deferred):
                return failed(
                    name,
                    "transform_or_keep should return a Deferred",
                    expected="a Deferred (from transform.transform_poem, with your errback)",
                    got=short(d),
                    hint="return transform.transform_poem(...).addErrback(...)",
                )
            try:
                got = runtime.wait(d, timeout=10, what=what)
            except Exception as exc:
                return failed(
                    name,
                    f"for {what}, the Deferred failed",
                    expected=f"it fires with {short(expected)}",
                    got=f"{type(exc).__name__}: {exc}"[:120],
                    hint="an errback that returns the original poem turns the refusal into a "
                    "result; trap transform.NoReplyError",
                )
            if got != expected:
                return failed(
                    name,
                    f"for {what}, the result is not right",
                    expected=short(expected),
                    got=short(got),
                    hint="success: the transformed poem; a refusal: the poem you sent",
                )
    finally:
        runtime.call(port.stopListening, what="stopping the server")
    # A server that is down is not a refusal: that failure must go through.
    ok, d = run_learner_code(transform_or_keep, reactor, address, "cummingsify", SAMPLE)
    if ok and isinstance(d, Deferred):
        try:
            got = runtime.wait(d, timeout=10, what="a server that is down")
        except error.ConnectionRefusedError:
            return passed(name, "refusals fall back to the poem, and a dead server still fails.")
        except Exception as exc:
            got = f"{type(exc).__name__}: {exc}"
        return failed(
            name,
            "with the server down, the failure was not a ConnectionRefusedError",
            expected="the Deferred fails with ConnectionRefusedError",
            got=short(got),
            hint="failure.trap(transform.NoReplyError) recovers from a refusal only and passes "
            "anything else on",
        )
    return failed(name, "with the server down, it did not return a Deferred", got=short(d))
