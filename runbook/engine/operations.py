"""Operations: the few kinds of change a step makes on a node, as data.

A step turns facts into a plan (runbook.engine.plan): per node, an ordered list of Operations, each with
the reason it is needed. One executor (runbook.engine.executor) applies plans, and check mode shows the same
plan without applying it, so `runbook plan` is what `runbook run` does by construction.

Each Operation carries three views of one change, made together here so they cannot drift:
- `command`: the shell command it amounts to, as the report shows it (never a secret: a key copy is
  `install -m 0400 ... /etc/corosync/authkey` with the bytes coming from the primary, not the key);
- `by_hand`: the lines an operator would type to make the same change without the runbook;
- `script`: what the executor runs on the node (POSIX sh, under `set -e`), more careful than the
  shown command (atomic, checked, backed up).

A write's bytes travel inside the node's script on SSH stdin (base64 in a here-document), never in
a command line, so `ps` on the node does not show them either. Pure module: no SSH here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from typing import Literal

STAGED = '"$f"'  # how a write's `validate` command names the staged file

Kind = Literal["install", "write", "keygen", "copy-key", "chmod", "enable", "restart", "reload", "rejoin", "remove", "run"]


@dataclass(frozen=True)
class Operation:
    """One change on one node: what it amounts to, why, and how it is done."""

    kind: Kind
    command: str
    reason: str
    script: str = ""
    by_hand: tuple[str, ...] = ()
    path: str | None = None  # the file a write/keygen/copy-key/chmod changes
    data: bytes | None = field(default=None, repr=False)  # a write's bytes (None for a key copy: read at run time)
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    validate: str | None = None  # for a write: a command run on the staged file ("$f"), e.g. corosync -t -c "$f"
    text: str | None = field(default=None, repr=False)  # a write's whole new text, for the page (never for a key)
    copy_from: str | None = None  # copy-key: the node whose file supplies the bytes
    copy_path: str | None = None  # copy-key: that file's path there (None: the same as `path`)
    copy_sha256: str | None = None  # copy-key: the digest of those bytes, when the facts know it
    timeout: float = 300.0
    diagnose: str | None = None  # run when the operation fails; its output joins the error (e.g. Corosync's log)
    diagnose_label: str = "log"
    fails_as: str = ""  # how the report names a failure of this operation ("Corosync did not start")

    @property
    def stages(self) -> bool:
        """Whether this operation puts a file in place (staged on every node first, then renamed)."""
        return self.kind in ("write", "copy-key")

    @property
    def copy_source(self) -> tuple[str, str]:
        """A copy's (host, path) that supplies its bytes."""
        return (self.copy_from or "", self.copy_path or self.path or "")

    def key(self) -> tuple[str, str]:
        """What `plan` and `run` compare: the kind and the command."""
        return (self.kind, self.command)


def write_file(
    path: str,
    data: bytes,
    reason: str,
    *,
    mode: int = 0o644,
    owner: str = "root",
    group: str = "root",
    by_hand: tuple[str, ...] | None = None,
    validate: str | None = None,
    validate_shown: str | None = None,
    show_text: bool = True,
) -> Operation:
    """Replace `path` with `data` atomically (temp file, checked, backup of the old file, rename)."""
    command = f"install -m {mode:04o} -o {owner} -g {group} /dev/stdin {shlex.quote(path)}"
    if validate:
        command = f"{validate_shown or validate.replace(STAGED, '<new file>')} && {command}"
    hand = by_hand if by_hand is not None else (
        f"# write the file shown below to {path}, then:",
        f"chown {owner}:{group} {shlex.quote(path)}",
        f"chmod {mode:o} {shlex.quote(path)}",
    )
    return Operation(
        kind="write",
        command=command,
        reason=reason,
        by_hand=hand,
        path=path,
        data=data,
        mode=mode,
        owner=owner,
        group=group,
        validate=validate,
        text=data.decode("utf-8", "replace") if show_text else None,
    )


def copy_key(path: str, source_node: str, reason: str, *, by_hand: tuple[str, ...], sha256: str | None = None) -> Operation:
    """The primary's key, byte for byte, root:root 0400; the bytes are read from `source_node` at run time."""
    op = copy_file(path, source_node, path, reason, mode=0o400, by_hand=by_hand, secret=False)
    return replace(op, copy_path=None, copy_sha256=sha256)


def copy_file(
    path: str, source_host: str, source_path: str, reason: str, *, mode: int, by_hand: tuple[str, ...], secret: bool
) -> Operation:
    """`source_host`'s file, byte for byte, at `path` here (root:root, `mode`); read at run time.

    The bytes pass through the controller's memory only, inside the staging script on SSH stdin, and
    no copy's bytes are ever shown or recorded; `secret` (a private key) only says so in the command."""
    what = "the secret bytes" if secret else "the bytes"
    return Operation(
        kind="copy-key",
        command=f"install -m {mode:04o} -o root -g root /dev/stdin {path}   # {what} of {source_host}:{source_path}",
        reason=reason,
        by_hand=by_hand,
        path=path,
        mode=mode,
        copy_from=source_host,
        copy_path=source_path,
    )


def run(
    kind: Kind,
    command: str,
    reason: str,
    *,
    script: str | None = None,
    by_hand: tuple[str, ...] | None = None,
    path: str | None = None,
    timeout: float = 300.0,
    diagnose: str | None = None,
    diagnose_label: str = "log",
    fails_as: str = "",
) -> Operation:
    """A command (install, enable, restart, ...); `script` when what runs differs from what is shown."""
    return Operation(
        fails_as=fails_as,
        diagnose=diagnose,
        diagnose_label=diagnose_label,
        kind=kind,
        command=command,
        reason=reason,
        script=script if script is not None else command,
        by_hand=by_hand if by_hand is not None else (command,),
        path=path,
        timeout=timeout,
    )
