"""How the cluster file and ssh_config combine into a login (no connection made)."""

import pytest

from runbook.errors import ClusterFileError, SshConfigError
from runbook.model.rules import cluster_from_mapping
from runbook.ssh.endpoint import JumpHop, parse_proxy_jump, resolve_endpoint


@pytest.fixture(autouse=True)
def hermetic(tmp_path, monkeypatch):
    """No ~/.ssh/config, no $RUNBOOK_SSH_CONFIG and no lab of this machine takes part."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path / "labs"))
    monkeypatch.delenv("RUNBOOK_SSH_CONFIG", raising=False)


def cluster(tmp_path, **ssh):
    return cluster_from_mapping(
        {
            "cluster_name": "c",
            "nodes": [{"name": "alpha", "address": "192.0.2.10"}, {"name": "beta", "address": "192.0.2.11"}],
            "ssh": ssh,
        }
    )


def test_ssh_config_user_port_key_and_jump(tmp_path):
    config = tmp_path / "cfg"
    config.write_text(
        "Host alpha\n  HostName mgmt-alpha.example\n  User admin\n  Port 2222\n  IdentityFile ~/.ssh/alpha\n"
        "  ProxyJump bastion.example\n  UserKnownHostsFile /etc/ssh/cluster_known_hosts\n"
    )
    c = cluster(tmp_path, config=str(config))
    ep = resolve_endpoint(c.nodes[0], c.ssh)
    assert (ep.hostname, ep.user, ep.port) == ("mgmt-alpha.example", "admin", 2222)
    assert ep.identity_files == (str(tmp_path / ".ssh" / "alpha"),)
    assert ep.proxy_jump == "bastion.example"
    assert ep.known_hosts_files[0] == "/etc/ssh/cluster_known_hosts"
    assert ep.known_hosts_name == "[mgmt-alpha.example]:2222"
    other = resolve_endpoint(c.nodes[1], c.ssh)
    assert (other.hostname, other.user, other.port) == ("192.0.2.11", "root", 22)


def test_cluster_file_wins_over_ssh_config(tmp_path):
    config = tmp_path / "cfg"
    config.write_text("Host *\n  User admin\n  Port 2222\n")
    c = cluster(tmp_path, config=str(config), user="ops", port=22, identity_file="/keys/ops", known_hosts="/kh")
    ep = resolve_endpoint(c.nodes[0], c.ssh)
    assert (ep.user, ep.port, ep.identity_files) == ("ops", 22, ("/keys/ops",))
    assert ep.known_hosts_files[0] == "/kh"


def test_trust_is_per_named_node(tmp_path):
    c = cluster(tmp_path, trust_unknown_hosts=["beta"])
    assert not resolve_endpoint(c.nodes[0], c.ssh).trust_unknown
    assert resolve_endpoint(c.nodes[1], c.ssh).trust_unknown


# --- ProxyJump: every hop, each resolved through ssh_config as a host of its own ------------------


def endpoint(tmp_path, text, node=0, **ssh):
    config = tmp_path / "cfg"
    config.write_text(text)
    c = cluster(tmp_path, config=str(config), **ssh)
    return resolve_endpoint(c.nodes[node], c.ssh)


def test_every_hop_of_proxy_jump_is_followed_with_its_own_login(tmp_path):
    ep = endpoint(
        tmp_path,
        "Host alpha\n  User admin\n  IdentityFile ~/.ssh/alpha\n  ProxyJump jumpa,ops@jumpb:2200\n"
        "Host jumpa\n  HostName 198.51.100.1\n  User ja\n  Port 2201\n  IdentityFile ~/.ssh/ja\n  IdentitiesOnly yes\n"
        "  UserKnownHostsFile /kh/a\n"
        "Host jumpb\n  HostName 198.51.100.2\n  User ignored\n  IdentityFile ~/.ssh/jb\n  UserKnownHostsFile /kh/b\n",
    )
    first, second, node = ep.route
    assert node is ep and (ep.hostname, ep.user, ep.hop) == ("192.0.2.10", "admin", None)
    assert second is ep.jump and first is second.jump and first.jump is None
    assert (second.hop, second.hostname, second.user, second.port) == ("jumpb", "198.51.100.2", "ops", 2200)
    assert second.identity_files == (str(tmp_path / ".ssh" / "jb"),) and second.known_hosts_files[0] == "/kh/b"
    assert (first.hop, first.hostname, first.user, first.port) == ("jumpa", "198.51.100.1", "ja", 2201)
    assert first.identity_files == (str(tmp_path / ".ssh" / "ja"),) and first.identities_only
    assert first.known_hosts_files[0] == "/kh/a"
    assert all(hop.node == "alpha" and not hop.trust_unknown and not hop.sudo for hop in (first, second))


def test_the_first_hops_own_proxy_jump_is_followed_and_later_hops_go_through_the_earlier(tmp_path):
    ep = endpoint(
        tmp_path,
        "Host alpha\n  ProxyJump inner,last\nHost inner\n  ProxyJump outer\nHost last\n  ProxyJump elsewhere\n",
    )
    assert [hop.hop for hop in ep.route] == ["outer", "inner", "last", None]


def test_cluster_file_login_settings_are_for_the_nodes_not_the_jump_hosts(tmp_path):
    ep = endpoint(tmp_path, "Host alpha\n  ProxyJump bastion\n", user="ops", port=2222, identity_file="/keys/ops", known_hosts="/kh")
    assert (ep.user, ep.port, ep.identity_files) == ("ops", 2222, ("/keys/ops",))
    bastion = ep.jump
    assert (bastion.hostname, bastion.user, bastion.port, bastion.identity_files) == ("bastion", "root", 22, ())
    assert "/kh" in bastion.known_hosts_files, "the cluster file's known_hosts is trusted for jump hosts too"


def test_proxy_jump_none_means_no_jump_host(tmp_path):
    text = "Host alpha\n  ProxyJump none\nHost * !bastion\n  ProxyJump bastion\n"
    alpha = endpoint(tmp_path, text)
    assert alpha.jump is None and alpha.proxy_jump is None and alpha.route == (alpha,)
    beta = endpoint(tmp_path, text, node=1)
    assert [hop.hop for hop in beta.route] == ["bastion", None]


def test_a_jump_host_loop_is_named(tmp_path):
    with pytest.raises(SshConfigError) as caught:
        endpoint(tmp_path, "Host *\n  ProxyJump bastion\n")
    assert (caught.value.path, caught.value.host, caught.value.key) == (str(tmp_path / "cfg"), "bastion", "ProxyJump")
    assert "alpha -> bastion -> bastion" in str(caught.value) and "Host * !bastion" in str(caught.value)


@pytest.mark.parametrize(
    "value, hops",
    [
        ("bastion", [JumpHop("bastion")]),
        ("a,b", [JumpHop("a"), JumpHop("b")]),
        (" admin@a:2200 , b ", [JumpHop("a", "admin", 2200), JumpHop("b")]),
        ("[2001:db8::1]:22", [JumpHop("2001:db8::1", None, 22)]),
        ("user@[2001:db8::1]:2222", [JumpHop("2001:db8::1", "user", 2222)]),
        ("[2001:db8::1]", [JumpHop("2001:db8::1")]),
        ("ssh://ops@[2001:db8::2]:2022/,b", [JumpHop("2001:db8::2", "ops", 2022), JumpHop("b")]),
        ("none", []),
        ("NONE", []),
    ],
)
def test_proxy_jump_syntax(value, hops):
    assert list(parse_proxy_jump(value)) == hops


@pytest.mark.parametrize(
    "value, says",
    [
        ("2001:db8::1", "an IPv6 jump host goes in brackets, e.g. [2001:db8::1]"),
        ("[2001:db8::1", "write an IPv6 jump host as [address]"),
        ("[2001:db8::1]22", "write an IPv6 jump host as [address]"),
        ("bastion:abc", "'abc' is not a port number (1-65535)"),
        ("bastion:70000", "'70000' is not a port number (1-65535)"),
        ("[2001:db8::1]:0", "'0' is not a port number (1-65535)"),
        ("@bastion", "'@bastion' is not a jump host"),
        ("a,,b", "'' is not a jump host"),
        ("admin@", "'admin@' is not a jump host"),
    ],
)
def test_bad_proxy_jump_values_are_named(value, says):
    with pytest.raises(SshConfigError) as caught:
        parse_proxy_jump(value, path="/etc/ssh/cfg", host="alpha")
    assert str(caught.value).startswith("/etc/ssh/cfg: host alpha: ProxyJump: ") and says in str(caught.value)
    assert caught.value.exit_code == 2


def test_an_ipv6_jump_host_resolves(tmp_path):
    ep = endpoint(tmp_path, "Host alpha\n  ProxyJump user@[2001:db8::1]:2222\n")
    assert (ep.jump.hostname, ep.jump.user, ep.jump.port) == ("2001:db8::1", "user", 2222)
    assert ep.jump.known_hosts_name == "[2001:db8::1]:2222"
    ep = endpoint(tmp_path, "Host alpha\n  ProxyJump [2001:db8::1]:22\n")
    assert (ep.jump.hostname, ep.jump.port, ep.jump.known_hosts_name) == ("2001:db8::1", 22, "2001:db8::1")


@pytest.mark.parametrize("port", ["abc", "70000", "0", "-1", "22x", "\u00b2\u00b2"])
def test_a_bad_port_names_the_file_the_host_and_the_key(tmp_path, port):
    with pytest.raises(SshConfigError) as caught:
        endpoint(tmp_path, f"Host alpha\n  Port {port}\n")
    assert str(caught.value) == f"{tmp_path / 'cfg'}: host alpha: Port: {port!r} is not a port number (1-65535)"
    with pytest.raises(SshConfigError) as caught:  # a jump host's own Port too
        endpoint(tmp_path, f"Host alpha\n  ProxyJump bastion\nHost bastion\n  Port {port}\n")
    assert (caught.value.host, caught.value.key) == ("bastion", "Port")


def test_a_missing_ssh_config_is_bad_input_even_when_another_exists(tmp_path, monkeypatch):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host *\n  User someone\n")
    c = cluster(tmp_path, config=str(tmp_path / "missing"))
    with pytest.raises(ClusterFileError, match=r"ssh.config: '.*missing' does not exist or is not a file"):
        resolve_endpoint(c.nodes[0], c.ssh)
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(tmp_path / "also-missing"))
    with pytest.raises(SshConfigError, match=r"also-missing: does not exist or is not a file \(named by \$RUNBOOK_SSH_CONFIG\)"):
        resolve_endpoint(cluster(tmp_path).nodes[0], cluster(tmp_path).ssh)


def test_entries_for_the_name_and_the_address_combine_first_value_wins(tmp_path):
    """One pass over the file, as ssh reads it: the first value for a key wins, whichever name matched."""
    ep = endpoint(tmp_path, "Host 192.0.2.10\n  User admin\nHost alpha\n  Port 2200\n  User other\nHost *\n  User root\n  Port 22\n")
    assert (ep.hostname, ep.user, ep.port) == ("192.0.2.10", "admin", 2200)
    ep = endpoint(tmp_path, "Host alpha\n  HostName mgmt.example\nHost 192.0.2.10\n  HostName ignored.example\n")
    assert ep.hostname == "mgmt.example"
