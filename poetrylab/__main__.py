"""``python -m poetrylab``: the same as the ``poetrylab`` command."""

import sys

from poetrylab.cli import main

sys.exit(main())
