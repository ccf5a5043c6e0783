"""Checks for notebook 06 (servers and a transformation service).

* :func:`check_shout` — the learner's registry: a transform ``shout`` (upper case) that a
  real transformation server serves, while private names stay out of reach.
* :func:`check_transform_or_keep` — the learner's ``transform_or_keep(reactor, address,
  name, poem)``: a Deferred that falls back to the original poem when the server refuses,
  and lets every other failure (a server that is down) through.

Both run the learner's code against real transformation servers on loopback, started
through the notebook runtime (``nb06-check-...``) and stopped before the check returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from twisted.internet import error

from poetrylab import runtime
from poetrylab.download import Address
from poetrylab.exercises._deferreds import expect_deferred
from poetrylab.exercises._feedback import one_line, short
from poetrylab.exercises._learner import call_learner
from poetrylab.exercises._registry import NotYet, exercise, function, value
from poetrylab.services import quiet_logs, transform

__all__ = ["SAMPLE", "check_shout", "check_transform_or_keep"]

SAMPLE = "Tyger Tyger, burning bright,\nIn the forests of the night;\nÜber alles\n"
"""The poem the checks send (one line is not ASCII)."""

_WAIT = 6.0  # the server gives a transform 2 s; the client waits up to 5


def _serve(registry: transform.TransformRegistry, name: str) -> runtime.ServerHandle:
    return runtime.listen(
        lambda reactor: transform.listen_transform(reactor, registry=registry, timeout=2.0),
        name=name,
    )


def _ask(address: Address, name: str, poem: str) -> tuple[bool, object]:
    """``(True, reply)``, or ``(False, the exception)`` when the server did not reply."""
    reactor = runtime.start().reactor
    try:
        reply = runtime.call(
            transform.transform_poem, reactor, address, name, poem, 5.0, what=f"asking for {name}"
        )
    except Exception as exc:
        return False, exc
    return True, reply


@exercise("06", value("my_registry", transform.TransformRegistry, "transform.default_registry()"),
          title="add a transform")  # fmt: skip
def check_shout(registry: transform.TransformRegistry) -> str:
    """``registry`` must hold ``shout``, which a server applies: the poem in capitals."""
    if "shout" not in registry:
        raise NotYet(
            "there is no transform called 'shout' in your registry",
            expected="a transform named 'shout'",
            got="only " + (", ".join(registry.names()) or "nothing"),
            hint="@registry.register('shout') above your function, or "
            "registry.register('shout', your_function)",
        )
    with quiet_logs(logging.CRITICAL):
        server = _serve(registry, "nb06-check-shout")
        try:
            ok, reply = _ask(server.address, "shout", SAMPLE)
            if not ok:
                raise NotYet(
                    "the server refused to shout: it closed the connection without a reply",
                    expected=short(SAMPLE.upper()),
                    got=type(reply).__name__,
                    hint="call your function on a poem in a cell: it must take a str and "
                    "return a str (not bytes, not None)",
                )
            if reply != SAMPLE.upper():
                raise NotYet(
                    "the server answered, but that is not the poem in capitals",
                    expected=short(SAMPLE.upper()),
                    got=short(reply),
                    hint="str.upper() does it, Ü included; keep the newlines",
                )
            ok, reply = _ask(server.address, "__class__", SAMPLE)
            if ok:
                raise NotYet(
                    "a client could call '__class__' on your server",
                    expected="no reply for a name that is not a registered transform",
                    got=f"a reply: {short(reply)}",
                    hint="only names registered with registry.register can be called",
                )
        finally:
            server.stop()
    return "your transform is one registry entry away, and nothing else is."


_CASES = [
    ("cummingsify", SAMPLE.lower(), "a transform that works"),
    ("refrain", SAMPLE, "a transform that fails (the muse did not come)"),
    ("nosuch", SAMPLE, "an unknown transform"),
]

Fallback = Callable[[object, Address, str, str], object]


def _wait_for(transform_or_keep: Fallback, address: Address, name: str, what: str) -> object:
    """Call ``transform_or_keep`` and wait for its Deferred: the result, or NotYet."""
    reactor = runtime.start().reactor
    returned = call_learner(
        f"transform_or_keep for {what}", transform_or_keep, reactor, address, name, SAMPLE,
        hint="build the Deferred and return it; do not wait for it",
    )  # fmt: skip
    d = expect_deferred(
        returned,
        "transform_or_keep should return a Deferred",
        expected="a Deferred (from transform.transform_poem, with your errback)",
        hint="return transform.transform_poem(...).addErrback(...)",
    )
    return runtime.wait(d, timeout=_WAIT, what=what)


@exercise("06", function("transform_or_keep(reactor, address, name, poem)"),
          title="keep the poem when the server refuses")  # fmt: skip
def check_transform_or_keep(transform_or_keep: Fallback) -> str:
    """Refusals fall back to the original poem; other failures still fail."""
    registry = transform.TransformRegistry()
    registry.register("cummingsify", transform.cummingsify)
    registry.register("refrain", transform.Refrain(seed=0, failure_rate=1.0))
    with quiet_logs(logging.CRITICAL):
        server = _serve(registry, "nb06-check-fallback")
        address = server.address
        try:
            for name, expected, what in _CASES:
                try:
                    got = _wait_for(transform_or_keep, address, name, what)
                except NotYet:
                    raise
                except Exception as exc:
                    raise NotYet(
                        f"for {what}, the Deferred failed",
                        expected=f"it fires with {short(expected)}",
                        got=one_line(exc),
                        hint="an errback that returns the original poem turns the refusal "
                        "into a result; trap transform.NoReplyError",
                    ) from None
                if got != expected:
                    raise NotYet(
                        f"for {what}, the result is not right",
                        expected=short(expected),
                        got=short(got),
                        hint="success: the transformed poem; a refusal: the poem you sent",
                    )
        finally:
            server.stop()
        # The server is gone now: that is not a refusal, and that failure must go through.
        try:
            got = _wait_for(transform_or_keep, address, "cummingsify", "a server that is down")
        except error.ConnectionRefusedError:
            return "refusals fall back to the poem, and a dead server still fails."
        except NotYet:
            raise
        except Exception as exc:
            got = one_line(exc)
    raise NotYet(
        "with the server down, the failure was not a ConnectionRefusedError",
        expected="the Deferred fails with ConnectionRefusedError",
        got=short(got),
        hint="failure.trap(transform.NoReplyError) recovers from a refusal only and passes "
        "anything else on",
    )
