"""Poetry services: the servers where Deferreds earn their keep (notebooks 06, 07, 13).

    transform       netstring transformation server, guarded dispatch, client  (06)
    proxy           caching proxy: succeed / maybeDeferred, shared and
                    cancellable upstream fetches                               (07)
    tagged          line backend with tagged, out-of-order replies, and the
                    client that multiplexes requests over one connection       (13)
    xmlrpc_gateway  twisted.web.xmlrpc gateway forwarding to the tagged backend (13)
    figures         the pictures of those notebooks

Every server takes its ``reactor``; wire contracts are in DESIGN.md. Import the
submodules you need; this package imports nothing of them on its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["quiet_logs"]


@contextlib.contextmanager
def quiet_logs(level: int = logging.ERROR) -> Iterator[None]:
    """Hide the services' log lines below ``level`` while the block runs.

    The servers log every refused request (a warning); a demo or a check that refuses
    on purpose can keep them out of the way. Affects every thread while it lasts.
    """
    logger = logging.getLogger(__name__)
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)
