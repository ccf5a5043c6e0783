"""Model answers for notebook 04 (Deferreds), each with wrong answers its check must catch."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from poetrylab.exercises import Answers


def recover_missing(failure: Failure) -> str:
    """Recover from KeyError only; trap re-raises anything else."""
    failure.trap(KeyError)
    return "(no such poem)"


def recover_everything(failure: Failure) -> str:
    """Wrong: swallows every Failure, bugs included."""
    return "(no such poem)"


def recover_with_check(failure: Failure) -> str | None:
    """Wrong: check() only asks; returning None recovers from every other error too."""
    if failure.check(KeyError):
        return "(no such poem)"
    return None


class PoemWaiter:
    """Fires its Deferred once: whichever of poem_arrived / gave_up comes first."""

    def __init__(self) -> None:
        self.deferred: Deferred[str] | None = Deferred()

    def poem_arrived(self, poem: str) -> None:
        d, self.deferred = self.deferred, None
        if d is not None:
            d.callback(poem)

    def gave_up(self, reason: Exception) -> None:
        d, self.deferred = self.deferred, None
        if d is not None:
            d.errback(reason)


class ChecksCalled:
    """Also right: ask the Deferred whether it has fired already."""

    def __init__(self) -> None:
        self.deferred: Deferred[str] = Deferred()

    def poem_arrived(self, poem: str) -> None:
        if not self.deferred.called:
            self.deferred.callback(poem)

    def gave_up(self, reason: Exception) -> None:
        if not self.deferred.called:
            self.deferred.errback(reason)


class FiresTwice:
    """Wrong (the notebook's starter): the late call fires the Deferred again."""

    def __init__(self) -> None:
        self.deferred: Deferred[str] = Deferred()

    def poem_arrived(self, poem: str) -> None:
        self.deferred.callback(poem)

    def gave_up(self, reason: Exception) -> None:
        self.deferred.errback(reason)


class GuardsOneSide(FiresTwice):
    """Wrong: only poem_arrived is guarded; a late timeout still fires again."""

    def poem_arrived(self, poem: str) -> None:
        if not self.deferred.called:
            self.deferred.callback(poem)


SOLUTIONS = {
    "check_path": Answers(
        solution="c c c e e c c",
        wrong=["c c c c c c c", "c e c e e c c", "c c", "c c c x e c c"],
        also_right=[
            "ccceecc",
            "C,C,C,E,E,C,C",
            "c -> c -> c -> e -> e -> c -> c",
            "callback callback callback errback errback callback callback",
            "cb cb cb eb eb cb cb",
            ["c", "c", "c", "e", "e", "c", "c"],
        ],
    ),
    "check_recover_missing": Answers(
        solution=recover_missing, wrong=[recover_everything, recover_with_check, "recover"]
    ),
    "check_same_stage": Answers(
        solution={"parse raises": "B", "fired with errback": "both"},
        wrong=[
            {"parse raises": "both", "fired with errback": "both"},
            {"parse raises": "B", "fired with errback": "A"},
            {"parse raises": "maybe", "fired with errback": "both"},
            {"parse raises": "B"},
        ],
        also_right=[
            {"parse raises": "b", "fired with errback": "A and B"},
            {"Parse raises": "B only", "fired with errback": "a, b"},
        ],
    ),
    "check_fire_once": Answers(
        solution=PoemWaiter,
        wrong=[FiresTwice, GuardsOneSide, PoemWaiter()],
        also_right=[ChecksCalled],
    ),
}
