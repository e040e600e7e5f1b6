"""How the cluster file and ssh_config combine into a login (no connection made)."""

from runbook.cluster import cluster_from_mapping
from runbook.hosts import resolve_endpoint


def cluster(tmp_path, **ssh):
    return cluster_from_mapping(
        {
            "cluster_name": "c",
            "nodes": [{"name": "alpha", "address": "192.0.2.10"}, {"name": "beta", "address": "192.0.2.11"}],
            "ssh": ssh,
        }
    )


def test_ssh_config_user_port_key_and_jump(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
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


def test_cluster_file_wins_over_ssh_config(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "cfg"
    config.write_text("Host *\n  User admin\n  Port 2222\n")
    c = cluster(tmp_path, config=str(config), user="ops", port=22, identity_file="/keys/ops", known_hosts="/kh")
    ep = resolve_endpoint(c.nodes[0], c.ssh)
    assert (ep.user, ep.port, ep.identity_files) == ("ops", 22, ("/keys/ops",))
    assert ep.known_hosts_files[0] == "/kh"


def test_trust_is_per_named_node(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    c = cluster(tmp_path, trust_unknown_hosts=["beta"])
    assert not resolve_endpoint(c.nodes[0], c.ssh).trust_unknown
    assert resolve_endpoint(c.nodes[1], c.ssh).trust_unknown
