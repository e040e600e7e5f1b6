"""Hostile cluster files: every bad value of every key ends in one clear error naming the field.

Property-based (hypothesis). One field of a valid cluster is broken at a time, with random and
hostile values (wrong types, unicode, control characters, huge and negative numbers, reserved and
duplicate addresses, ...). Each case must end:

* in-process, in exactly one ClusterFileError problem that starts with the field's path;
* through the CLI (`runbook validate|run|plan|facts|membership FILE`), in exit 2 and one
  `runbook: error:` message naming the field, with no traceback, no run directory made, and no
  connection attempted to any host (sockets and paramiko are watched).

YAML-level hostility (not a mapping, aliases and alias bombs, duplicate keys, deep nesting, huge
integers, bad bytes) ends the same way, naming the line or what is wrong with the file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runbook.cli import main
from runbook.errors import ClusterFileError
from runbook.model.load import load_cluster
from runbook.model.rules import cluster_from_mapping
from runbook.model.types import KNET_MAX_NODEID, MAX_NODEID, MAX_NODES

REPO = Path(__file__).resolve().parents[2]
U32 = 2**32 - 1


def base() -> dict[str, Any]:
    return {
        "cluster_name": "chapter",
        "nodes": [
            {"name": "node1", "address": "10.0.66.201", "nodeid": 1, "role": "primary"},
            {"name": "node2", "address": "10.0.66.202", "nodeid": 2},
        ],
        "generation": "auto",
        "transport": "auto",
        "crypto": "auto",
        "rrp_mode": "passive",
        "pacemaker_plugin": True,
        "totem": {"token": 5000, "token_retransmits_before_loss_const": 20, "join": 1000, "consensus": 7500, "max_messages": 20, "port": 5405},
        "logging": {"to_syslog": True, "to_stderr": True, "to_logfile": False, "logfile": "/var/log/corosync/corosync.log", "debug": False, "timestamp": True},
        "ssh": {"user": None, "port": None, "identity_file": None, "known_hosts": None, "config": None, "sudo": False, "connect_timeout": 10, "trust_unknown_hosts": []},
    }


def test_the_base_is_valid() -> None:
    cluster_from_mapping(base())


# --- hostile values ------------------------------------------------------------------------------

huge = st.one_of(st.integers(min_value=U32 + 1), st.integers(max_value=-1), st.just(10**400), st.just(-(10**400)))
floats = st.floats(allow_nan=True, allow_infinity=True)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
    st.sampled_from(
        ["", " ", "\x1b[31mred\x1b[0m", "\x00", "a\nb", "é", "ノード", "node1\u200b", "-x", "{", "}", "$(reboot)", "; rm -rf /", "x" * 300]
    ),
)
containers = st.one_of(
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=3), st.just([[[[]]]])
)
not_str = st.one_of(st.booleans(), st.integers(), floats, containers)
not_int = st.one_of(st.booleans(), floats, hostile_text, containers)
not_bool = st.one_of(st.integers(), floats, hostile_text, containers)
any_value = st.one_of(st.booleans(), st.integers(), floats, hostile_text, containers, huge)


def not_in(choices: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return any_value.filter(lambda v: isinstance(v, (list, dict)) or v not in choices)


BAD_ADDRESSES = [
    "127.0.0.1", "::1", "0.0.0.0", "::", "224.0.0.1", "239.192.0.1", "ff02::1", "255.255.255.255",
    "240.0.0.1", "0.1.2.3", "fe80::1%eth0", "::ffff:10.0.66.203", "10.0.66.256", "10.0.66", "10.0.66.201/24",
    "node_1.example.com", "node1..example.com", "2001:db8::1",  # IPv6 in an IPv4 ring
]


@st.composite
def broken(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(the field path the error must name, a cluster mapping with exactly that field broken)."""
    data = base()
    kind = draw(st.sampled_from(sorted(BREAKERS)))
    path, setter = BREAKERS[kind]
    named = setter(draw, data)
    return named or path, data


def _set(section: str | None, key: str, strategy: st.SearchStrategy[Any]) -> Any:
    def setter(draw: st.DrawFn, data: dict[str, Any]) -> None:
        value = draw(strategy)
        (data[section] if section else data)[key] = value

    return setter


def _node_set(key: str, strategy: st.SearchStrategy[Any]) -> Any:
    def setter(draw: st.DrawFn, data: dict[str, Any]) -> None:
        data["nodes"][1][key] = draw(strategy)

    return setter


def _nodes_count(draw: st.DrawFn, data: dict[str, Any]) -> None:
    count = draw(st.sampled_from([0, 1, MAX_NODES + 1]))
    data["nodes"] = [{"name": f"n{i}", "address": f"10.1.{i // 200}.{i % 200 + 1}"} for i in range(count)]


def _nodes_not_list(draw: st.DrawFn, data: dict[str, Any]) -> None:
    data["nodes"] = draw(st.one_of(hostile_text.filter(bool), st.integers(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.booleans(), floats))


def _node_not_mapping(draw: st.DrawFn, data: dict[str, Any]) -> None:
    data["nodes"][1] = draw(st.one_of(hostile_text, st.integers(), st.lists(st.integers(), max_size=2), st.booleans(), floats))


def _duplicate(key: str) -> Any:
    def setter(draw: st.DrawFn, data: dict[str, Any]) -> None:
        first = data["nodes"][0][key]
        data["nodes"][1][key] = first.upper() if key == "name" and draw(st.booleans()) else first

    return setter


def _two_primaries(draw: st.DrawFn, data: dict[str, Any]) -> None:
    data["nodes"][1]["role"] = "primary"


def _unknown_node_key(draw: st.DrawFn, data: dict[str, Any]) -> str:
    key = draw(st.sampled_from(["ring0_addr", "ip", "hostname", "id"]))
    data["nodes"][1][key] = draw(any_value)
    return f"nodes[1].{key}: unknown key"


def _unknown_top_key(draw: st.DrawFn, data: dict[str, Any]) -> str:
    key = draw(st.sampled_from(["clustername", "node", "token", "bindnetaddr", "mcastport", "secauth"]))
    data[key] = draw(any_value)
    return f"{key}: unknown key"


def _secret_key(draw: st.DrawFn, data: dict[str, Any]) -> str:
    where = draw(st.sampled_from([None, "ssh", "totem"]))
    key = draw(st.sampled_from(["password", "sudo_password", "passphrase", "private_key", "authkey", "secret"]))
    (data[where] if where else data)[key] = "Hunter2-" + draw(st.text(st.characters(min_codepoint=65, max_codepoint=90), min_size=6, max_size=12))
    return (f"{where}.{key}" if where else key) + ": secrets never go in the cluster file"


def _consensus_low(draw: st.DrawFn, data: dict[str, Any]) -> None:
    token = draw(st.integers(min_value=1000, max_value=100000))
    data["totem"]["token"] = token
    data["totem"]["consensus"] = draw(st.integers(min_value=1, max_value=(token * 6) // 5 - 1))


def _token_short(draw: st.DrawFn, data: dict[str, Any]) -> None:
    data["totem"]["token"] = draw(st.integers(min_value=1, max_value=29 * 20))
    data["totem"]["consensus"] = U32  # keep consensus out of it


def _section_not_mapping(section: str) -> Any:
    def setter(draw: st.DrawFn, data: dict[str, Any]) -> None:
        data[section] = draw(st.one_of(hostile_text.filter(bool), st.integers(), st.lists(st.integers(), max_size=2), st.booleans(), floats))

    return setter


def _trust_unknown(draw: st.DrawFn, data: dict[str, Any]) -> None:
    data["ssh"]["trust_unknown_hosts"] = draw(
        st.one_of(
            hostile_text.filter(bool), st.integers(), st.booleans(),
            st.lists(st.sampled_from(["node3", "nodeX", "10.0.66.201"]), min_size=1, max_size=1),
            st.lists(st.one_of(st.integers(), st.booleans(), st.none()), min_size=1, max_size=1),
        )
    )


def _knet_nodeid(draw: st.DrawFn, data: dict[str, Any]) -> None:
    data["generation"] = 3
    data["nodes"][1]["nodeid"] = draw(st.integers(min_value=KNET_MAX_NODEID + 1, max_value=MAX_NODEID))


BREAKERS: dict[str, tuple[str, Any]] = {
    "cluster_name.type": ("cluster_name", _set(None, "cluster_name", not_str)),
    "cluster_name.text": (
        "cluster_name",
        _set(None, "cluster_name", hostile_text.filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", s, re.ASCII))),
    ),
    "nodes.type": ("nodes", _nodes_not_list),
    "nodes.count": ("nodes", _nodes_count),
    "nodes[1]": ("nodes[1]", _node_not_mapping),
    "nodes[1].name.type": ("nodes[1].name", _node_set("name", not_str)),
    "nodes[1].name.text": (
        "nodes[1].name",
        _node_set("name", hostile_text.filter(lambda s: not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,252}", s, re.ASCII | re.I))),
    ),
    "nodes[1].name.duplicate": ("nodes[1].name", _duplicate("name")),
    "nodes[1].address.type": ("nodes[1].address", _node_set("address", not_str)),
    "nodes[1].address.text": (
        "nodes[1].address",
        _node_set("address", st.one_of(st.sampled_from(BAD_ADDRESSES), hostile_text.filter(lambda s: not re.search(r"\d", s) and not re.fullmatch(r"[A-Za-z.-]+", s)))),
    ),
    "nodes[1].address.duplicate": ("nodes[1].address", _duplicate("address")),
    "nodes[1].nodeid.type": ("nodes[1].nodeid", _node_set("nodeid", not_int)),
    "nodes[1].nodeid.range": ("nodes[1].nodeid", _node_set("nodeid", st.one_of(huge, st.just(0)))),
    "nodes[1].nodeid.duplicate": ("nodes[1].nodeid", _duplicate("nodeid")),
    "nodes[1].nodeid.knet": ("nodes[1].nodeid", _knet_nodeid),
    "nodes[1].role": ("nodes[1].role", _node_set("role", not_in(("primary",)))),
    "nodes[1].role.two_primaries": ("nodes[1].role", _two_primaries),
    "nodes[1].unknown": ("", _unknown_node_key),
    "unknown": ("", _unknown_top_key),
    "secret": ("", _secret_key),
    "generation": ("generation", _set(None, "generation", not_in((1, 2, 3, "1", "2", "3", "auto")))),
    "transport": ("transport", _set(None, "transport", not_in(("auto", "udpu", "udp", "knet")))),
    "crypto": ("crypto", _set(None, "crypto", not_in(("auto", "on", "off", True, False)))),
    "rrp_mode": ("rrp_mode", _set(None, "rrp_mode", not_in(("none", "passive", "active")))),
    "pacemaker_plugin": ("pacemaker_plugin", _set(None, "pacemaker_plugin", not_bool)),
    "totem": ("totem", _section_not_mapping("totem")),
    "logging": ("logging", _section_not_mapping("logging")),
    "ssh": ("ssh", _section_not_mapping("ssh")),
    "totem.consensus.low": ("totem.consensus", _consensus_low),
    "totem.token.short": ("totem.token", _token_short),
    "ssh.user": ("ssh.user", _set("ssh", "user", st.one_of(not_str, hostile_text.filter(lambda s: not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", s, re.ASCII))))),
    "ssh.port": ("ssh.port", _set("ssh", "port", st.one_of(not_int, huge, st.just(0), st.integers(min_value=65536)))),
    "ssh.sudo": ("ssh.sudo", _set("ssh", "sudo", not_bool)),
    "ssh.connect_timeout": (
        "ssh.connect_timeout",
        _set("ssh", "connect_timeout", st.one_of(hostile_text, st.booleans(), containers, huge, st.floats(max_value=0), st.floats(min_value=600.001), st.just(math.nan))),
    ),
    "ssh.trust_unknown_hosts": ("ssh.trust_unknown_hosts", _trust_unknown),
}
for _key in ("token", "token_retransmits_before_loss_const", "join", "consensus", "max_messages", "port"):
    _limit = 65535 if _key == "port" else U32
    BREAKERS[f"totem.{_key}"] = (
        f"totem.{_key}",
        _set("totem", _key, st.one_of(not_int, huge, st.just(0), st.integers(max_value=0), st.integers(min_value=_limit + 1))),
    )
for _key in ("to_syslog", "to_stderr", "to_logfile", "debug", "timestamp"):
    BREAKERS[f"logging.{_key}"] = (f"logging.{_key}", _set("logging", _key, not_bool))
BREAKERS["logging.logfile"] = (
    "logging.logfile",
    _set("logging", "logfile", st.one_of(not_str, hostile_text.filter(lambda s: not s.startswith("/")), st.sampled_from(["/var/log/{x}", "/var/log/a\nb", "/x\x1b[2J"]))),
)
for _key in ("identity_file", "known_hosts", "config"):
    BREAKERS[f"ssh.{_key}"] = (f"ssh.{_key}", _set("ssh", _key, st.one_of(not_str, st.sampled_from(["", "  ", "a\nb", "\x00", "/tmp/x\x1b[31m"]))))


# --- in-process: exactly one problem, naming the field ------------------------------------------


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken())
def test_one_broken_field_gives_one_problem_naming_it(case: tuple[str, dict[str, Any]]) -> None:
    path, data = case
    with pytest.raises(ClusterFileError) as info:
        cluster_from_mapping(data, source="hostile.yaml")
    error = info.value
    assert error.exit_code == 2
    assert len(error.problems) == 1, error.problems
    problem = error.problems[0]
    assert problem.startswith(path), f"{problem!r} does not name {path!r}"
    assert "\x1b" not in str(error) and "\x00" not in str(error)
    assert len(str(error)) < 600, "a message stays readable, whatever the value"
    if "Hunter2-" in repr(data):
        assert "Hunter2-" not in str(error), "a secret-looking value is never echoed"


# --- through the CLI: exit 2, one message, no traceback, nothing contacted -----------------------


class _NoNetwork:
    """Records (and refuses) every attempt to open a connection while a CLI command runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[str] = []
        import paramiko

        def refuse(name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> Any:
                self.attempts.append(f"{name}{args[1:2]}")
                raise OSError(f"test: {name} attempted")

            return fail

        monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
        monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
        monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
        monkeypatch.setattr(paramiko.SSHClient, "connect", refuse("paramiko.SSHClient.connect"))


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main.main(argv)
    return code, out.getvalue(), err.getvalue()


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


COMMANDS = ["validate", "run", "plan", "facts", "membership"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=broken(), command=st.sampled_from(COMMANDS))
def test_cli_exits_2_naming_the_field_and_contacts_nobody(
    case: tuple[str, dict[str, Any]], command: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = case
    where = tmp_path_factory.mktemp("hostile")
    cluster_file = where / "cluster.yaml"
    cluster_file.write_text(_dump(data), encoding="utf-8")
    # A value that YAML reads back differently (e.g. a float that round-trips to a valid int) is not this test's case.
    try:
        reread = yaml.safe_load(cluster_file.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        reread = None
    assume(reread == data or _nan_equal(reread, data))
    network = _NoNetwork(monkeypatch)
    argv = [command, str(cluster_file)] + (["--out", str(where / "runs")] if command in ("run", "plan") else [])
    code, out, err = run_cli(argv)
    assert code == 2, (code, out, err)
    assert network.attempts == []
    assert "Traceback" not in out + err
    assert err.startswith(f"runbook: error: {cluster_file}: "), err
    assert path in err
    assert not (where / "runs").exists(), "nothing is started for a bad file"
    assert "\x1b" not in err


def _nan_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_nan_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_nan_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# --- YAML-level hostility ------------------------------------------------------------------------

VALID_YAML = (REPO / "clusters" / "chapter.yaml").read_text()


def _alias_bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


YAML_CASES = {
    "a list": ("- node1\n- node2\n", "must be a mapping"),
    "a scalar": ("just text\n", "must be a mapping"),
    "a number": ("42\n", "must be a mapping"),
    "empty": ("", "is empty"),
    "alias bomb": (_alias_bomb(), "aliases"),
    "one alias": (VALID_YAML.replace("totem:\n", "totem: &t\n") + "logging_copy: *t\n", "aliases"),
    "merge key": (VALID_YAML + "x: &x {a: 1}\ny:\n  <<: *x\n", "aliases"),
    "duplicate key": (VALID_YAML + "cluster_name: again\n", "duplicate key 'cluster_name'"),
    "deep nesting": ("[" * 5000 + "]" * 5000 + "\n", "invalid YAML"),
    "python tag": ("cluster_name: !!python/object/apply:os.system ['true']\n", "invalid YAML at line 1"),
    "unhashable key": ("? [a, b]\n: 1\n", "invalid YAML at line 1"),
    "tab indentation": ("cluster_name: x\nnodes:\n\t- name: a\n", "invalid YAML at line 3"),
    "bad bytes": (b"cluster_name: \xff\xfe\n", "not UTF-8"),
    "NUL byte": ("cluster_name: a\x00b\n", "invalid YAML"),
    "huge integer nodes": ("cluster_name: x\nnodes: " + "9" * 6000 + "\n", "nodes: "),
    "huge integer token": (VALID_YAML.replace("token: 5000", "token: " + "9" * 5000), "totem.token: "),
    "huge negative port": (VALID_YAML.replace("port: 5405", "port: -" + "9" * 5000), "totem.port: "),
}


@pytest.mark.parametrize("name", sorted(YAML_CASES))
def test_hostile_yaml_ends_in_one_clear_error(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, expected = YAML_CASES[name]
    cluster_file = tmp_path / "cluster.yaml"
    cluster_file.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    network = _NoNetwork(monkeypatch)
    code, out, err = run_cli(["run", str(cluster_file), "--out", str(tmp_path / "runs")])
    assert code == 2, err
    assert network.attempts == []
    assert "Traceback" not in out + err
    assert err.startswith(f"runbook: error: {cluster_file}: ") and expected in err, err
    assert len(err) < 1000 and err.count("runbook: error:") == 1
    assert not (tmp_path / "runs").exists()


@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda s: s.encode("utf-8", "surrogatepass")))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_bytes_end_in_a_cluster_or_a_cluster_file_error(tmp_path: Path, raw: bytes) -> None:
    cluster_file = tmp_path / "c.yaml"
    cluster_file.write_bytes(raw)
    try:
        load_cluster(cluster_file)
    except ClusterFileError as error:
        assert str(error).startswith(str(cluster_file))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("- a\n- b\n", "must be a mapping"),
        ("cluster_name: x\nnodes: " + "9" * 6000 + "\n", "nodes: "),
        (VALID_YAML.replace("10.0.66.202", "255.255.255.255"), "nodes[1].address: '255.255.255.255'"),
        (_alias_bomb(), "aliases"),
    ],
    ids=["list", "huge-int", "broadcast", "alias-bomb"],
)
def test_the_real_command_exits_2_without_a_traceback(text: str, expected: str, tmp_path: Path) -> None:
    """The same through a real process: what a user's shell sees."""
    cluster_file = tmp_path / "cluster.yaml"
    cluster_file.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "runbook", "run", str(cluster_file), "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.startswith("runbook: error: ") and expected in result.stderr
    assert not (tmp_path / "runs").exists()


def test_papermill_parameters_are_validated_the_same_way() -> None:
    """A notebook run with hostile parameters (papermill -p / -f) gets the same one-field error."""
    from runbook import notebook

    params = copy.deepcopy(base())
    params["totem"]["port"] = -1
    with pytest.raises(ClusterFileError) as info:
        notebook.setup({**params, "check": False, "record_dir": None})
    assert info.value.problems == ["totem.port: -1 is not a UDP port (1..65535)"]
