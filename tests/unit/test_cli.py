"""The CLI's exit codes, end to end: 2 for bad input of any kind, before anything is made or sent.

Run as a user runs it (`python -m runbook` in a subprocess) wherever that cannot make lab hosts; the
`lab up` cases run in-process with `lab.up` replaced by a tripwire, so a regression fails the test
instead of making hosts on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.cli import main
from runbook.lab import plan, state
from runbook.lab import up as lab_up

REPO = Path(__file__).resolve().parents[2]
CHAPTER = REPO / "clusters" / "chapter.yaml"


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    """No ssh_config, no lab and no network: only lab hosts may be reached, and there are none."""
    home = tmp_path / "home"
    home.mkdir()
    environ = {k: v for k, v in os.environ.items() if k != "RUNBOOK_SSH_CONFIG"}
    return {**environ, "HOME": str(home), "RUNBOOK_LAB_ROOT": str(tmp_path / "labs"), "RUNBOOK_LAB_ONLY": "1"}


def runbook(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False
    )


def cluster_file(tmp_path: Path, ssh_config: str | None = None, config_path: Path | None = None) -> Path:
    path = config_path or tmp_path / "ssh_config"
    if ssh_config is not None:
        path.write_text(ssh_config)
    cluster = tmp_path / "c.yaml"
    cluster.write_text(
        "cluster_name: c\nnodes:\n  - name: alpha\n    address: 192.0.2.10\n  - name: beta\n    address: 192.0.2.11\n"
        f"ssh:\n  config: {path}\n"
    )
    return cluster


# --- argparse's usage errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, says",
    [
        ([], "the following arguments are required: COMMAND"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["lab", "bogus"], "invalid choice: 'bogus'"),
        (["render", str(CHAPTER)], "the following arguments are required: --node"),
        (["run", str(CHAPTER), "--timeout", "soon"], "invalid float value: 'soon'"),
        (["lab", "down", "--lab", "BAD"], "lab name 'BAD': use 1-8 lower-case letters and digits"),
        (["lab", "status", "--lab", "no-dash"], "lab name 'no-dash'"),
    ],
)
def test_usage_errors_exit_2(env: dict[str, str], args: list[str], says: str) -> None:
    result = runbook(env, *args)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "usage: runbook" in result.stderr and "Traceback" not in result.stderr


# --- bad ssh_config: named by file, host and key -------------------------------------------------


@pytest.mark.parametrize(
    "ssh_config, says",
    [
        ("Host alpha\n  Port abc\n", "host alpha: Port: 'abc' is not a port number (1-65535)"),
        ("Host *\n  Port 70000\n", "host alpha: Port: '70000' is not a port number (1-65535)"),
        ("Host beta\n  ProxyJump 2001:db8::1\n", "host beta: ProxyJump: '2001:db8::1': an IPv6 jump host goes in brackets"),
        ("Host alpha\n  ProxyJump [2001:db8::1]:http\n", "host alpha: ProxyJump: 'http' is not a port number"),
        ("Host alpha\n  ProxyJump bastion\nHost bastion\n  Port 0\n", "host bastion: Port: '0' is not a port number"),
    ],
)
def test_a_bad_ssh_config_value_exits_2_naming_file_host_and_key(env: dict[str, str], tmp_path: Path, ssh_config: str, says: str) -> None:
    cluster = cluster_file(tmp_path, ssh_config)
    result = runbook(env, "facts", str(cluster))
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"runbook: error: {tmp_path / 'ssh_config'}: {says}" + result.stderr.split(says, 1)[1]
    assert "Traceback" not in result.stderr and "unreachable" not in result.stdout


def test_a_missing_ssh_config_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    cluster = cluster_file(tmp_path, config_path=tmp_path / "nowhere")
    result = runbook(env, "facts", str(cluster))
    assert result.returncode == 2, result.stderr
    assert f"ssh.config: '{tmp_path / 'nowhere'}' does not exist or is not a file" in result.stderr


def test_run_refuses_a_bad_ssh_config_before_any_step_starts(env: dict[str, str], tmp_path: Path) -> None:
    cluster = cluster_file(tmp_path, "Host alpha\n  Port abc\n")
    result = runbook(env, "run", str(cluster), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    assert "host alpha: Port: 'abc' is not a port number" in result.stderr
    assert not (tmp_path / "runs").exists(), "nothing was started, so there is no run record"


# --- migrate -o ----------------------------------------------------------------------------------


def test_migrate_never_overwrites_and_says_so_with_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    existing = tmp_path / "legacy.yaml"
    existing.write_text("mine\n")
    conf = REPO / "tests" / "golden" / "chapter-primary.conf"
    result = runbook(env, "migrate", str(conf), "-o", str(existing))
    assert result.returncode == 2, result.stderr
    assert f"-o {existing}: the file exists; migrate never overwrites" in result.stderr and "Traceback" not in result.stderr
    assert existing.read_text() == "mine\n"
    result = runbook(env, "migrate", str(conf), "-o", str(tmp_path / "no" / "such" / "dir.yaml"))
    assert result.returncode == 2 and "cannot write it: No such file or directory" in result.stderr


# --- lab: bad input is refused before anything is made -------------------------------------------


@pytest.fixture()
def no_lab_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[object, ...]]:
    """`lab.up` replaced by a tripwire: these cases must never reach it."""
    calls: list[tuple[object, ...]] = []
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path / "labs"))
    monkeypatch.setattr(lab_up, "up", lambda *a, **k: calls.append(a) or pytest.fail(f"lab.up was called with {a}"))
    return calls


@pytest.mark.parametrize(
    "args, says",
    [
        (["--nodes", "0"], "--nodes: 0 is out of range (1..200)"),
        (["--nodes", "500"], "--nodes: 500 is out of range (1..200)"),
        (["--nodes", "3", "--subnet", "10.0.0.0/16"], "the lab uses IPv4 /24 networks"),
        (["--subnet", "nonsense"], "--subnet: 'nonsense' is not an IPv4 network"),
        ([str(CHAPTER), "--nodes", "2"], "give a cluster file or --nodes N [--subnet CIDR], not both"),
        ([str(CHAPTER), "--subnet", "10.0.99.0/24"], "--subnet is for nodes named by hostnames"),
    ],
)
def test_lab_up_with_bad_input_exits_2_and_makes_nothing(
    no_lab_up: list[tuple[object, ...]], capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main.main(["lab", "up", *args]) == 2
    assert says in capsys.readouterr().err and not no_lab_up


def test_lab_up_with_a_bad_lab_name_is_a_usage_error(no_lab_up: list[tuple[object, ...]], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main.main(["lab", "up", "--nodes", "2", "--lab", "Bad_Name"])
    assert exited.value.code == 2 and "lab name 'Bad_Name'" in capsys.readouterr().err and not no_lab_up


def test_lab_ssh_to_a_host_the_lab_does_not_have_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    planned = plan.plan_lab("zz", [("node1", "10.0.250.11")])
    monkeypatch.setattr(state.LabState, "load", classmethod(lambda cls, name: planned))
    monkeypatch.setattr(os, "execvp", lambda *a: pytest.fail(f"exec {a}"))
    assert main.main(["lab", "ssh", "node9", "--lab", "zz"]) == 2
    assert "lab 'zz' has no host 'node9' (hosts: node1)" in capsys.readouterr().err
