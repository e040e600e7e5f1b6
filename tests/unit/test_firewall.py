"""A node's firewall as preflight reads it, the rule that lets Corosync in from the peers, and what
`firewall: manage` plans from it (nft rulesets as nft 1.0.6 on Debian 12 prints them)."""

from __future__ import annotations

from runbook.steps.firewall import hints, parse_firewall, rule_commands
from runbook.steps.firewall_rules import SCRIPT_PATH, UNIT, Present, parse_present, plan_firewall, script_text

PEERS = ["10.0.61.11", "10.0.61.13"]
DROP_ONE = """@firewalld 
@ufw 
@nft
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		ip saddr 10.0.61.11 udp dport 5405 drop
	}
}
@end
"""
OPENED = """@firewalld 
@ufw 
@nft
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		jump corosync-runbook
		ip saddr 10.0.61.11 udp dport 5405 drop
	}

	chain corosync-runbook {
		ip saddr { 10.0.61.11, 10.0.61.13 } udp dport 5405 accept
	}
}
@end
"""
IPTABLES_NFT = """@firewalld 
@ufw 
@nft
table ip filter {
	chain INPUT {
		type filter hook input priority filter; policy drop;
		ct state established,related counter packets 0 bytes 0 accept
	}
}
@end
"""
DEBIAN_DEFAULT = "@firewalld \n@ufw \n@nft\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter;\n\t}\n}\n@end\n"


def test_nothing_that_drops_is_no_firewall_and_no_rule() -> None:
    wall = parse_firewall(DEBIAN_DEFAULT)  # Debian's /etc/nftables.conf as shipped: accept everything
    assert wall.kind is None and rule_commands(wall, PEERS, [5405]) == []
    assert hints({"n": wall}, {"n": PEERS}, [5405]) == {}


def test_an_nft_drop_rule_is_named_and_answered_with_a_chain_of_our_own_jumped_to_first() -> None:
    wall = parse_firewall(DROP_ONE)
    assert wall.kind == "nftables" and wall.describe() == "nftables: chain inet filter input (drop/reject rules)"
    assert rule_commands(wall, PEERS, [5405]) == [
        "nft add chain inet filter corosync-runbook",
        "nft flush chain inet filter corosync-runbook",
        "nft add rule inet filter corosync-runbook ip saddr { 10.0.61.11, 10.0.61.13 } udp dport { 5405 } accept",
        "nft list chain inet filter input | grep -q 'jump corosync-runbook' || nft insert rule inet filter input jump corosync-runbook",
    ]
    [hint] = hints({"n2": wall}, {"n2": PEERS}, [5405]).values()
    assert "n2's firewall is the first suspect" in hint and "firewall: manage" in hint


def test_iptables_nft_chains_get_iptables_rules_so_iptables_save_still_reads_them() -> None:
    wall = parse_firewall(IPTABLES_NFT)
    assert wall.kind == "iptables"
    assert rule_commands(wall, ["10.0.0.2"], [5405, 5404])[0] == (
        "iptables -I INPUT -p udp -s 10.0.0.2 --dport 5404 -m comment --comment corosync-runbook -j ACCEPT")
    script = script_text(wall, ["10.0.0.2"], [5405])
    assert "iptables -C INPUT -p udp -s 10.0.0.2 --dport 5405 -m comment --comment corosync-runbook -j ACCEPT 2>/dev/null || iptables -I INPUT" in script


def test_firewalld_and_ufw_come_first_and_get_their_own_commands() -> None:
    firewalld = parse_firewall("@firewalld running\n@ufw \n@nft\ntable inet firewalld {\n}\n@end\n")
    assert firewalld.kind == "firewalld"
    lines = rule_commands(firewalld, ["10.0.0.2"], [5405])
    assert lines == ["firewall-cmd --permanent --add-rich-rule='rule family=\"ipv4\" source address=\"10.0.0.2\" port port=\"5405\" protocol=\"udp\" accept'",
                     "firewall-cmd --reload"]
    ufw = parse_firewall("@firewalld \n@ufw Status: active\n")
    assert rule_commands(ufw, ["10.0.0.2"], [5405]) == ["ufw allow proto udp from 10.0.0.2 to any port 5405 comment corosync-runbook"]


def test_manage_on_nftables_writes_the_script_runs_it_and_enables_the_unit_on_systemd() -> None:
    wall = parse_firewall(DROP_ONE)
    plan = plan_firewall(wall, Present(), PEERS, [5405], systemd=True)
    assert [(op.kind, op.command.split("   #")[0]) for op in plan.operations] == [
        ("write", f"sh -n <new file> && install -m 0755 -o root -g root /dev/stdin {SCRIPT_PATH}"),
        ("run", f"sh {SCRIPT_PATH}"),
        ("write", f"install -m 0644 -o root -g root /dev/stdin /etc/systemd/system/{UNIT}"),
        ("enable", f"systemctl daemon-reload && systemctl enable {UNIT}"),
    ]
    assert plan.operations[0].text == script_text(wall, PEERS, [5405])


def test_manage_again_with_the_rules_live_and_the_script_unchanged_plans_nothing() -> None:
    wall = parse_firewall(OPENED)
    state = f"@script\n{script_text(wall, PEERS, [5405])}@end-script\n@unit enabled\n"
    assert parse_present(state).script == script_text(wall, PEERS, [5405])
    assert plan_firewall(wall, parse_present(state), PEERS, [5405], systemd=True).operations == []
    # the same script, but the running ruleset lost our chain (someone ran `nft flush ruleset`): run it again
    lost = plan_firewall(parse_firewall(DROP_ONE), parse_present(state), PEERS, [5405], systemd=True)
    assert [op.command.split("   #")[0] for op in lost.operations] == [f"sh {SCRIPT_PATH}"]


def test_firewalld_and_ufw_rules_already_there_are_not_added_again() -> None:
    firewalld = parse_firewall("@firewalld running\n@ufw \n")
    rich = 'rule family="ipv4" source address="10.0.0.2" port port="5405" protocol="udp" accept\n'
    have = plan_firewall(firewalld, Present(rich=rich), ["10.0.0.2", "10.0.0.3"], [5405], systemd=True)
    assert [op.command.split("   #")[0] for op in have.operations] == [
        "firewall-cmd --permanent --add-rich-rule='rule family=\"ipv4\" source address=\"10.0.0.3\" port port=\"5405\" protocol=\"udp\" accept'",
        "firewall-cmd --reload",
    ]
    ufw = parse_firewall("@firewalld \n@ufw Status: active\n")
    status = "Status: active\n\nTo                         Action      From\n--                         ------      ----\n5405/udp                   ALLOW       10.0.0.2                   # corosync-runbook\n"
    assert plan_firewall(ufw, Present(ufw=status), ["10.0.0.2"], [5405], systemd=True).operations == []
