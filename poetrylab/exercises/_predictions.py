"""Reading and judging a learner's prediction: which side of each stage runs (notebooks
04 and 05), in which order lines are logged (notebooks 05 and 08).

A prediction is read the way a person would write it: in any case, with spaces, commas,
arrows or nothing between the words (``"c c e"``, ``"C,C,E"``, ``"cce"``,
``"callback → callback → errback"``), as a string or a list. A verdict names the first
miss only, so the stored verdict on a starter never gives the whole answer away.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from poetrylab.exercises._feedback import short
from poetrylab.exercises._registry import NotYet

__all__ = ["SIDES", "judge_order", "judge_path", "read_sequence", "sides_of"]

SIDES: dict[str, str] = {
    "callbacks": "callback", "callback": "callback", "cb": "callback", "c": "callback",
    "errbacks": "errback", "errback": "errback", "eb": "errback", "e": "errback",
}  # fmt: skip
"""How a side may be written (lower case), and the side it means."""


def read_sequence(
    prediction: object, words: Mapping[str, str], *, example: str, hint: str
) -> list[str]:
    """The words of ``prediction`` as their meanings in ``words`` (keys in lower case).

    Anything that is not a letter or a digit separates words, and a word may be several
    known words run together (``"cce"``, ``"M1W1"``). Raises :class:`NotYet` naming the
    first word that is none of them, with ``example`` as the expected form and ``hint``.
    """
    if isinstance(prediction, str):
        text = prediction
    elif isinstance(prediction, Sequence):
        text = " ".join(str(item) for item in prediction)
    else:
        text = str(prediction)
    spelled = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    token = re.compile(spelled)
    meanings: list[str] = []
    for word in re.findall(r"[^\W_]+", text.lower()):
        parts = token.findall(word)
        if "".join(parts) != word:
            raise NotYet(
                "the prediction could not be read",
                expected=example,
                got=f"{word!r} in {short(prediction)}",
                hint=hint,
            )
        meanings += [words[part] for part in parts]
    return meanings


def sides_of(prediction: object) -> list[str]:
    """``"c e c"`` (or ``"cec"``, ``"Callback, errback"``...) as ``["callback", "errback"...]``."""
    return read_sequence(
        prediction,
        SIDES,
        example='one c or e per stage, e.g. "c c e c"',
        hint="write c for a callback and e for an errback, one per stage (spaces, commas "
        "or nothing between them)",
    )


def judge_path(
    prediction: object,
    actual: Sequence[str],
    *,
    chain: str,
    count_hint: str,
    success: str,
    miss_hint: Callable[[int], str],
) -> str:
    """Compare a predicted path with the ``actual`` sides, stage by stage.

    Returns ``success`` when every stage is right; else raises :class:`NotYet` for a
    wrong count (``chain`` names the chain, ``count_hint`` helps) or for the first stage
    predicted wrong (``miss_hint(stage)`` explains it).
    """
    predicted = sides_of(prediction)
    if len(predicted) != len(actual):
        raise NotYet(
            f"{chain} has {len(actual)} stages, your prediction names {len(predicted)}",
            expected=f"{len(actual)} sides, one per stage",
            got=f"{len(predicted)} side{'' if len(predicted) == 1 else 's'}",
            hint=count_hint,
        )
    if list(predicted) == list(actual):
        return success
    right = sum(p == a for p, a in zip(predicted, actual, strict=True))
    stage = next(i for i, (p, a) in enumerate(zip(predicted, actual, strict=True)) if p != a)
    raise NotYet(
        f"{right} of {len(actual)} stages right; the first miss is stage {stage}",
        expected=f"stage {stage} runs its {actual[stage]}",
        got=f"you said its {predicted[stage]}",
        hint=miss_hint(stage),
    )


def judge_order(
    prediction: object,
    actual: Sequence[str],
    *,
    success: str,
    hint: Callable[[list[str]], str],
) -> str:
    """Compare a predicted order of labels (``"M1 W1 W2"``, ``"ABCEDF"``) with ``actual``.

    Returns ``success`` when it is right. Raises :class:`NotYet` when the labels are not
    each of ``actual``'s once, or naming the first label put too early (``hint(predicted)``
    explains the order).
    """
    labels = {label.lower(): label for label in actual}
    example = " ".join(sorted(actual))
    predicted = read_sequence(
        prediction,
        labels,
        example=f'each label once, e.g. "{example}"',
        hint=f"use only the labels {example}, each once, in the order you predict",
    )
    if Counter(predicted) != Counter(actual):
        missing = sorted((Counter(actual) - Counter(predicted)).elements())
        extra = sorted((Counter(predicted) - Counter(actual)).elements())
        problems = [f"missing {' '.join(missing)}"] if missing else []
        problems += [f"twice or more: {' '.join(sorted(set(extra)))}"] if extra else []
        raise NotYet(
            f"use each of {example} once",
            expected=f"{len(actual)} labels, each once",
            got=f"{' '.join(predicted) or short(prediction)} ({'; '.join(problems)})",
            hint="put every label in the order you think the code logs it",
        )
    if predicted == list(actual):
        return success
    position = next(i for i, (p, a) in enumerate(zip(predicted, actual, strict=True)) if p != a)
    early, late = predicted[position], actual[position]
    raise NotYet(
        "not that order",
        expected=f"{late} is logged before {early}",
        got=f"{' '.join(predicted)}: {early} before {late}",
        hint=hint(predicted),
    )
