"""`python -m cie10` runs the CLI."""

from __future__ import annotations

import sys

from cie10.cli import main

sys.exit(main())
