"""`python -m runbook` is the same as the `runbook` console script."""

from runbook.cli import main

raise SystemExit(main())
