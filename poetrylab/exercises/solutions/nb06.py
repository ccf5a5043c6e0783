"""Model answers for notebook 06 (transformation service), with wrong answers to catch."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from poetrylab._typing import TimeTCPReactor
from poetrylab.download import Address
from poetrylab.exercises import Answers
from poetrylab.services import transform


def _registry_with(function: Callable[[str], object]) -> transform.TransformRegistry:
    registry = transform.default_registry()
    registry.register("shout", function)
    return registry


def transform_or_keep(
    reactor: TimeTCPReactor, address: Address, name: str, poem: str
) -> Deferred[str]:
    """The transformed poem, or the poem itself when the server refuses."""

    def keep(failure: Failure) -> str:
        failure.trap(transform.NoReplyError)
        return poem

    return transform.transform_poem(reactor, address, name, poem).addErrback(keep)


def keep_on_any_failure(
    reactor: TimeTCPReactor, address: Address, name: str, poem: str
) -> Deferred[str]:
    """Wrong: a server that is down is hidden too."""
    return transform.transform_poem(reactor, address, name, poem).addErrback(lambda f: poem)


def no_errback(reactor: TimeTCPReactor, address: Address, name: str, poem: str) -> Deferred[str]:
    """Wrong: a refusal fails the Deferred."""
    return transform.transform_poem(reactor, address, name, poem)


SOLUTIONS = {
    "check_shout": Answers(
        solution=_registry_with(str.upper),
        wrong=[
            transform.default_registry(),
            _registry_with(str.lower),
            _registry_with(lambda poem: poem.upper().encode()),
            "shout",
        ],
    ),
    "check_transform_or_keep": Answers(
        solution=transform_or_keep, wrong=[keep_on_any_failure, no_errback, str.upper]
    ),
}
