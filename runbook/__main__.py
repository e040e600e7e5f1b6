"""`python -m runbook` is the same as the `runbook` console script."""

from runbook.cli.main import main

raise SystemExit(main())
