"""The write path's backups, run for real by `sh` on this machine: the executor's own staging and commit
shell (the script a node runs), here run locally instead of over SSH; everything else is the real write:
temp file, checks, backups, pruning, rename.
"""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook.engine import backup_script, operations
from runbook.engine.executor import backups_in, commit_body, stage_body
from runbook.errors import ClusterFileError, CommandFailed
from runbook.local import RUN_ID_ENV
from runbook.model.backups import DEFAULT_KEEP, Backups, parse_backups
from runbook.model.load import load_cluster
from runbook.model.rules import cluster_from_mapping, to_parameters
from runbook.ssh.hosts import Result

ROOT = Path(__file__).resolve().parents[2]


class LocalHost:
    """Runs Host's shell scripts here, with an optional PATH prefix (for a failing `cp`)."""

    name = "local"

    def __init__(self, path_prefix: Path | None = None) -> None:
        self.env = dict(os.environ)
        if path_prefix is not None:
            self.env["PATH"] = f"{path_prefix}:{self.env['PATH']}"

    def run(self, command: str, *, input: bytes | None = None, display: str | None = None, check: bool = True, **_: object) -> Result:
        done = subprocess.run(["sh", "-c", command], input=input or b"", capture_output=True, env=self.env, timeout=60)
        result = Result(self.name, display or command, done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise CommandFailed(self.name, display or command, done.returncode, done.stderr.decode(), result.text)
        return result

    def write(self, path: Path, data: bytes, *, mode: int = 0o644, keep: int = DEFAULT_KEEP, timestamp: str | None = None) -> Written:
        """The executor's own staging and commit shell for one file (stage_body, commit_body), run by sh here."""
        op = operations.write_file(str(path), data, "a test write", mode=mode)
        script = "set -e\n" + stage_body(op, data, "t", 0, keep, timestamp or backup_script.backup_stamp()) + "\n" + commit_body(op, "t", 0)
        result = self.run(script, check=False)
        if not result.ok:  # the executor shows the operation's own output (stdout and stderr), as here
            raise CommandFailed(self.name, "stage and commit", result.exit_status, result.text + result.stderr.decode())
        [backup] = backups_in(result.text) or [None]
        return Written(backup)


@dataclass(frozen=True)
class Written:
    backup: str | None


def backups_of(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".runbook-*.bak"))


def test_the_first_write_over_a_file_keeps_the_original_and_a_named_backup(tmp_path: Path) -> None:
    conf = tmp_path / "corosync.conf"
    conf.write_bytes(b"the operator's own file\n")
    result = LocalHost().write(conf, b"runbook 1\n")
    assert conf.read_bytes() == b"runbook 1\n"
    assert (tmp_path / "corosync.conf.orig-runbook").read_bytes() == b"the operator's own file\n"
    [backup] = backups_of(conf)
    assert result.backup == str(backup) and backup.read_bytes() == b"the operator's own file\n"
    name = backup.name.removeprefix("corosync.conf.runbook-")
    assert len(name) == len("20261126T071502.123456Z-") + len(backup_script.run_id()) + len(".bak") and name[8] == "T" and name[22] == "Z"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["corosync.conf", "corosync.conf.orig-runbook", backup.name])


def test_a_new_file_has_no_backup(tmp_path: Path) -> None:
    result = LocalHost().write(tmp_path / "new.conf", b"x\n")
    assert result.backup is None and [p.name for p in tmp_path.iterdir()] == ["new.conf"]


def test_names_are_never_reused_and_the_original_is_never_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUN_ID_ENV, "samerun")
    conf = tmp_path / "corosync.conf"
    conf.write_bytes(b"original\n")
    host = LocalHost()
    first = host.write(conf, b"one\n", timestamp="20261126T071502.000000Z")
    second = host.write(conf, b"two\n", timestamp="20261126T071502.000000Z")  # the same instant, the same run
    assert first.backup and second.backup and first.backup != second.backup
    assert Path(first.backup).read_bytes() == b"original\n" and Path(second.backup).read_bytes() == b"one\n"
    assert second.backup.endswith("-samerun-2.bak")
    host.write(conf, b"three\n")
    assert (tmp_path / "corosync.conf.orig-runbook").read_bytes() == b"original\n"


def test_old_backups_are_pruned_to_keep_and_the_original_stays(tmp_path: Path) -> None:
    conf = tmp_path / "corosync.conf"
    conf.write_bytes(b"original\n")
    host = LocalHost()
    for n in range(6):
        host.write(conf, f"version {n}\n".encode(), keep=2)
    kept = backups_of(conf)
    assert [p.read_bytes() for p in kept] == [b"version 3\n", b"version 4\n"]
    assert (tmp_path / "corosync.conf.orig-runbook").read_bytes() == b"original\n"


def test_an_old_runbook_backup_is_taken_as_the_original(tmp_path: Path) -> None:
    conf = tmp_path / "corosync.conf"
    (tmp_path / "corosync.conf.runbook-20250101T120000").write_bytes(b"before any runbook\n")
    (tmp_path / "corosync.conf.runbook-20250102T120000").write_bytes(b"old runbook\n")
    conf.write_bytes(b"old runbook 2\n")
    LocalHost().write(conf, b"new\n")
    assert (tmp_path / "corosync.conf.orig-runbook").read_bytes() == b"before any runbook\n"


def test_a_secret_keeps_its_mode_in_every_backup(tmp_path: Path) -> None:
    key = tmp_path / "authkey"
    key.write_bytes(os.urandom(256))
    key.chmod(0o400)
    LocalHost().write(key, os.urandom(256), mode=0o400)
    for path in [tmp_path / "authkey.orig-runbook", *backups_of(key)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o400, path


def test_a_backup_that_cannot_be_made_whole_stops_the_write(tmp_path: Path) -> None:
    """A disk that fills while the backup is copied: no short or empty backup, the file as it was."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cp").write_text('#!/bin/sh\nfor last; do :; done\nhead -c 3 /dev/zero > "$last"\necho "cp: error writing: No space left on device" >&2\nexit 1\n')
    (bin_dir / "cp").chmod(0o755)
    work = tmp_path / "etc"
    work.mkdir()
    conf = work / "corosync.conf"
    conf.write_bytes(b"the operator's file\n")
    with pytest.raises(CommandFailed) as caught:
        LocalHost(bin_dir).write(conf, b"new\n")
    assert caught.value.exit_status == backup_script.BACKUP_FAILED_STATUS
    assert "cannot keep a whole backup of" in str(caught.value) and "the file was left as it was" in str(caught.value)
    assert conf.read_bytes() == b"the operator's file\n"
    assert [p.name for p in work.iterdir()] == ["corosync.conf"], "no partial backup, no temp file"


def test_a_symbolic_link_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    target = tmp_path / "shared.conf"
    target.write_bytes(b"shared\n")
    link = tmp_path / "corosync.conf"
    link.symlink_to(target)
    with pytest.raises(CommandFailed) as caught:
        LocalHost().write(link, b"new\n")
    assert caught.value.exit_status == backup_script.SYMLINK_STATUS
    assert f"{link} is a symbolic link to {target}; refusing to replace it" in str(caught.value)
    assert link.is_symlink() and target.read_bytes() == b"shared\n"


# --- backups.keep in the cluster file ----------------------------------------------------------------


def test_backups_keep_defaults_and_round_trips() -> None:
    cluster = load_cluster(ROOT / "clusters" / "chapter.yaml")
    assert cluster.backups == Backups(keep=5)
    params = to_parameters(cluster)
    assert params["backups"] == {"keep": 5}
    params["backups"] = {"keep": 12}
    assert cluster_from_mapping(params).backups.keep == 12
    del params["backups"]
    assert cluster_from_mapping(params).backups.keep == 5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"keep": 0}, "backups.keep: 0 must be a whole number of backups from 1 to 1000"),
        ({"keep": "5"}, "backups.keep: '5' must be a whole number"),
        ({"keep": True}, "backups.keep: true must be a whole number"),
        ({"keep": 10**6}, "backups.keep: 1000000 must be"),
        ({"kept": 3}, "backups.kept: unknown key; known keys: keep"),
        ([5], "backups: [5] is not a mapping (expected keys: keep)"),
    ],
)
def test_bad_backups_keep_is_named(value: object, message: str) -> None:
    assert message in "\n".join(parse_backups(value)[1])
    params = to_parameters(load_cluster(ROOT / "clusters" / "chapter.yaml"))
    params["backups"] = value
    with pytest.raises(ClusterFileError) as info:
        cluster_from_mapping(params, source="x.yaml")
    assert info.value.exit_code == 2 and message in str(info.value)
