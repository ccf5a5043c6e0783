"""nbval set-up for the course notebooks (``pytest --nbval notebooks ...``).

nbval 0.11 renamed ``--sanitize-with`` to ``--nbval-sanitize-with`` and warns with a
DeprecationWarning when the old name is used; under this project's
``filterwarnings = error`` that warning would abort the run before any notebook is
tested. Both spellings are accepted here.
"""

from __future__ import annotations

import warnings

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    warnings.filterwarnings(
        "ignore", message="--sanitize-with has been renamed", category=DeprecationWarning
    )
