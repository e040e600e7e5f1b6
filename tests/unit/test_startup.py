"""The runbook command starts without compiling grammars it never uses (runbook/startup.py)."""

import subprocess
import sys


def test_the_cli_does_not_import_rfc3987_syntax_but_papermill_still_works():
    code = (
        "import sys; from runbook.cli.main import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "import papermill, nbformat\n"
        "nb = nbformat.v4.new_notebook(); nbformat.validate(nb)\n"
        "print('rfc3987_syntax' in sys.modules and sys.modules['rfc3987_syntax'] is not None)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
