"""``python -m recbatch``: the ``recbatch`` command line."""

from __future__ import annotations

import sys

from recbatch.cli import main

if __name__ == "__main__":
    sys.exit(main())
