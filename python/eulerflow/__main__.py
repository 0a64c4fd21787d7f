"""``python -m eulerflow``: the command line of :mod:`eulerflow.cli`."""

from __future__ import annotations

from eulerflow.cli import main

raise SystemExit(main())
