"""The executor's node scripts, run for real by a local `sh -s` on files in a temp directory.

What runs on a node is shell; these tests run that shell (no SSH, no mock) and check what an
operator would check afterwards: the file's bytes, its mode, the backup, what was left behind.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runbook.engine import operations
from runbook.engine.executor import abort_script, backups_in, commit_body, node_script, parse_marks, stage_body, staged_path

TAG = "testrun1"


def sh(script: str) -> str:
    done = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def stage(op: operations.Operation, index: int = 0) -> tuple[int, str]:
    marks = parse_marks(sh(node_script([(index, stage_body(op, op.data or b"", TAG, index, 5, "20261126T000000.000000Z"))])))
    return marks[index]


def test_a_staged_write_is_in_place_only_after_commit_with_its_mode_and_a_verified_backup(tmp_path: Path):
    target = tmp_path / "corosync.conf"
    target.write_text("old\n")
    op = operations.write_file(str(target), b"new settings\n", "differs", mode=0o640)
    status, output = stage(op)
    assert status == 0 and target.read_text() == "old\n"  # staged, not yet in place
    staged = Path(staged_path(str(target), TAG, 0))
    assert staged.read_bytes() == b"new settings\n" and oct(staged.stat().st_mode & 0o777) == "0o640"
    [backup] = backups_in(output)
    assert Path(backup).read_text() == "old\n" and (tmp_path / "corosync.conf.orig-runbook").read_text() == "old\n"
    marks = parse_marks(sh(node_script([(0, commit_body(op, TAG, 0))])))
    assert marks[0][0] == 0 and target.read_bytes() == b"new settings\n" and not staged.exists()


def test_a_failing_check_of_the_staged_file_leaves_the_file_and_no_temp(tmp_path: Path):
    target = tmp_path / "corosync.conf"
    target.write_text("old\n")
    op = operations.write_file(str(target), b"bad\n", "differs", validate='grep -q good "$f" || { echo "rejected: not good"; exit 8; }')
    status, output = stage(op)
    assert status == 8 and "rejected: not good" in output
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["corosync.conf"]


def test_a_symlink_is_refused_at_staging(tmp_path: Path):
    (tmp_path / "real").write_text("shared\n")
    (tmp_path / "corosync.conf").symlink_to(tmp_path / "real")
    status, output = stage(operations.write_file(str(tmp_path / "corosync.conf"), b"x\n", "differs"))
    assert status == 7 and "symbolic link" in output and (tmp_path / "real").read_text() == "shared\n"


def test_abort_removes_what_staging_made(tmp_path: Path):
    target = tmp_path / "f"
    target.write_text("old\n")
    op = operations.write_file(str(target), b"new\n", "differs")
    _, output = stage(op)
    made = [staged_path(str(target), TAG, 0), *backups_in(output)]
    sh(abort_script(made))
    assert target.read_text() == "old\n" and not any(Path(p).exists() for p in made)


def test_the_first_failing_operation_stops_the_node_and_each_result_is_its_own(tmp_path: Path):
    ops = [
        operations.run("run", f"echo one > {tmp_path}/1", "first"),
        operations.run("run", "echo half; exit 3", "second"),
        operations.run("run", f"echo three > {tmp_path}/3", "third"),
    ]
    marks = parse_marks(sh(node_script([(i, commit_body(op, TAG, i)) for i, op in enumerate(ops)])))
    assert marks == {0: (0, ""), 1: (3, "half")}
    assert (tmp_path / "1").exists() and not (tmp_path / "3").exists()


def test_an_operation_cannot_read_the_rest_of_the_script_from_stdin(tmp_path: Path):
    padding = "\n".join(f"# {i:06d} padding, so the script is longer than what the shell reads ahead" for i in range(4000))
    ops = [operations.run("run", "cat", "reads stdin"), operations.run("run", f"{padding}\ntouch {tmp_path}/after", "still runs")]
    marks = parse_marks(sh(node_script([(i, commit_body(op, TAG, i)) for i, op in enumerate(ops)])))
    assert marks == {0: (0, ""), 1: (0, "")} and (tmp_path / "after").exists()


def test_file_bytes_are_never_in_the_shown_command():
    secret = os.urandom(64)
    op = operations.write_file("/etc/corosync/authkey", secret, "differs", mode=0o400, show_text=False)
    assert secret.hex() not in op.command and op.text is None
    copy = operations.copy_key("/etc/corosync/authkey", "node1", "has no authkey", by_hand=())
    assert copy.command == "install -m 0400 -o root -g root /dev/stdin /etc/corosync/authkey   # the bytes of node1:/etc/corosync/authkey"


def test_an_output_without_a_last_newline_still_ends_its_operation():
    # Debian's init-d-script prints "Starting Corosync Qdevice Network daemon: corosync-qnetd" without a newline
    ops = [operations.run("run", "printf 'Starting daemon: corosync-qnetd'", "no newline"), operations.run("run", "echo next", "after")]
    marks = parse_marks(sh(node_script([(i, commit_body(op, TAG, i)) for i, op in enumerate(ops)])))
    assert marks == {0: (0, "Starting daemon: corosync-qnetd"), 1: (0, "next")}
