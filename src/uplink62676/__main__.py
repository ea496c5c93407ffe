"""``python -m uplink62676``: the command line (see :mod:`uplink62676.cli`)."""

from __future__ import annotations

import sys

from .app.cli import main

sys.exit(main())
