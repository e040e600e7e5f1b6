"""A lab world: a network namespace of its own, with a lab root of its own, to run a command in.

Why: the tests and the docs build need the chapter's addresses (10.0.66.0/24), and so does the lab a
user made with `make demo`. Two labs cannot route one subnet in one network namespace. Inside a
world, links and routes are the world's own, so the user's lab and the test labs coexist at the same
addresses; and the world's own lab root keeps `lab down --all` or a crashed test's clean-up from ever
touching the user's labs. The world is removed, with every lab made in it, when the command ends.

A world has no route off this machine, so whatever the labs must download (Corosync's packages) is
fetched before entering it (`runbook lab prepare`).
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from runbook.errors import LabError
from runbook.local import run_local

WORLD_ENV = "RUNBOOK_WORLD"
LAB_ROOT_ENV = "RUNBOOK_LAB_ROOT"
DEFAULT_WORLD = "test"
_WORLD_NAME = re.compile(r"[a-z][a-z0-9]{0,7}")

Progress = Callable[[str], None]


def current_world() -> str | None:
    """The world this process runs in (None: the machine's own network namespace)."""
    return os.environ.get(WORLD_ENV) or None


def world_netns(name: str) -> str:
    return f"rbw-{name}"


def world_root(name: str) -> Path:
    """The world's own state dir (its labs and its lock), beside the machine's own labs."""
    base = Path(os.environ.get(LAB_ROOT_ENV, "/var/lib/corosync-runbook/labs")).parent
    return base / "worlds" / name


def world_env(name: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a command in world `name`: its lab root, and the world's name."""
    env = dict(os.environ if environ is None else environ)
    env[WORLD_ENV] = name
    env[LAB_ROOT_ENV] = str(world_root(name) / "labs")
    return env


def check_name(name: str) -> str:
    if not _WORLD_NAME.fullmatch(name):
        raise LabError(f"world name {name!r}: use a lowercase letter, then up to 7 lowercase letters or digits")
    return name


def run_in_world(name: str, argv: Sequence[str], progress: Progress = lambda _: None) -> int:
    """Run argv inside world `name` and return its exit status; the world goes away afterwards.

    A second command for the same
    world at once is refused: it would share, and tear down, the first one's labs.
    """
    if not argv:
        raise LabError("lab world: give a command to run, e.g. `runbook lab world -- pytest`")
    check_name(name)
    if os.geteuid() != 0:
        raise LabError("a lab world needs root (it makes a network namespace); run as root")
    root = world_root(name)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise LabError(
                f"world '{name}' is in use by {holder}; wait for it, or use another name (--world NAME)"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        netns = world_netns(name)
        _remove(name, progress)  # what a killed earlier command in this world left
        progress(f"world '{name}': network namespace {netns}, labs under {root / 'labs'}")
        run_local(["ip", "netns", "add", netns])
        try:
            run_local(["ip", "-n", netns, "link", "set", "lo", "up"])
            return _call(["nsenter", f"--net=/run/netns/{netns}", "--", *argv], world_env(name))
        finally:
            _remove(name, progress)


def _hear_signals() -> None:
    """In the child: ^C and SIGTERM back to their defaults. A job a shell starts in the background
    (`make test &`, CI wrappers) inherits SIGINT *ignored*, and an ignored signal stays ignored across
    exec: then the ^C passed on below, and the ^C the tests send to `runbook run`, did nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _call(argv: list[str], env: dict[str, str]) -> int:
    """Run argv, passing ^C and SIGTERM on to it, so it can clean up its labs before the world goes."""
    proc = subprocess.Popen(argv, env=env, preexec_fn=_hear_signals)  # noqa: PLW1509 - no threads here yet
    forwarded: dict[int, object] = {}

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        forwarded[signum] = signal.signal(signum, forward)
    try:
        return proc.wait()
    finally:
        for signum, handler in forwarded.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _remove(name: str, progress: Progress) -> None:
    """Take down every lab of the world (from inside it), then the world's namespace."""
    netns = world_netns(name)
    if netns not in run_local(["ip", "netns", "list"], check=False).stdout.split():
        return
    labs = world_root(name) / "labs"
    if labs.is_dir() and any((entry / "state.json").exists() for entry in labs.iterdir()):
        progress(f"world '{name}': removing the labs left in it")
        # The lab's own clean-up, run inside the world with the world's lab root.
        code = subprocess.call(
            ["nsenter", f"--net=/run/netns/{netns}", "--", sys.executable, "-m", "runbook", "lab", "down", "--all"],
            env=world_env(name), stdout=sys.stderr,
        )
        if code != 0:
            progress(f"world '{name}': `runbook lab down --all` exited {code}; removing the namespace anyway")
    run_local(["ip", "netns", "delete", netns], check=False)
