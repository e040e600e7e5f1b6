"""A lab world's command hears ^C even when the world was started as a background job.

A shell's background job inherits SIGINT ignored, and ignored signals survive exec; `runbook lab
world` must give its command the default back, or ^C (the operator's, or the one the lab tests send
to `runbook run`) does nothing. Real processes, no lab: `_call` runs a local command.
"""

import subprocess
import sys

CHILD = "import signal; print(signal.getsignal(signal.SIGINT), int(signal.getsignal(signal.SIGTERM)))"
PARENT = f"""
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a non-interactive shell does
from runbook.lab.world import _call
sys.exit(_call([sys.executable, "-c", {CHILD!r}], {{}}))
"""


def test_the_worlds_command_gets_default_signal_handling_back():
    done = subprocess.run([sys.executable, "-c", PARENT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["<built-in", "function", "default_int_handler>", "0"]  # 0: SIG_DFL
