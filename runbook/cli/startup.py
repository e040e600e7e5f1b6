"""What the `runbook` command does before anything else, to start in well under a second.

papermill imports nbformat, which imports jsonschema, whose format checker imports `rfc3987_syntax`
when it is installed (JupyterLab's event schemas pull it in) and compiles 38 Lark grammars at import:
measured here 3.5 to 5.4 s of a no-change re-run's 9.6 s, against 0.7 s without it. nbformat never
validates IRI formats, so the runbook command tells Python that module is not there: jsonschema then
skips those two formats, as it does wherever the module is not installed. Only the `runbook`
process does this; a JupyterLab server started by `make notebook` is untouched.
"""

from __future__ import annotations

import sys

SLOW_OPTIONAL_IMPORTS = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> None:
    """Make the optional imports above fail fast (ImportError), unless already imported."""
    for name in SLOW_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None in sys.modules: ImportError on import
