"""Validating the cluster file's sections: links, totem, logging, quorum (and its device), ssh.

Each `*_of` reads one section into its model type, adding every problem to the shared `Problems`
(None when the section is unusable). Cross-section and per-generation rules are in `model/rules.py`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict
from typing import Any, Mapping

from runbook.model.problems import U32, UNSAFE_IN_CONF, Problems, check_address, field_names, verbatim
from runbook.model.types import CIPHERS, CRYPTO_MODELS, HASHES, IP_VERSIONS, KNET_TRANSPORTS, Extra, Link, Logging, NetDevice, Node, Quorum, QuorumDevice, SshSettings, Totem

_MIN_TOKEN_RETRANSMIT_MS = 30  # corosync refuses a token, and token / (retransmits + 0.2), below this
_DEFAULT_RETRANSMITS = 4  # token_retransmits_before_loss_const when the file sets none (every generation)
_SSH_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", re.ASCII)
# Keys a section's `extra` may not hold, because the model holds them (or the runbook writes them).
_TOTEM_OWN = ("version", "cluster_name", "transport", "rrp_mode", "link_mode", "interface", "port")
_LINK_OWN = ("ringnumber", "linknumber", "member", "number")


def links_of(p: Problems, value: Any, nodes: tuple[Node, ...]) -> tuple[Link, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or len(value) > 8:
        p.bad("links", value, "is not a list of at most 8 links (each the options of one interface { })")
        return None
    allowed = field_names(Link)
    result: list[Link] = []
    numbers: dict[int, int] = {}
    before = len(p.messages)
    for index, item in enumerate(value):
        path = f"links[{index}]"
        if not isinstance(item, Mapping):
            p.bad(path, item, "is not a mapping of link options (number, mcastport, knet_link_priority, ...)")
            continue
        p.unknown_keys(path, item, allowed)
        got: dict[str, Any] = {}
        number = item.get("number", index)
        got["number"] = p.integer(f"{path}.number", number, 0, 7, "is not a link number (0..7)")
        if got["number"] is not None:
            if got["number"] in numbers:
                p.bad(f"{path}.number", number, f"is also links[{numbers[got['number']]}].number")
            numbers[got["number"]] = index
        ints = {"mcastport": (1, 65535), "ttl": (0, 255), "knet_link_priority": (0, 255),
                "knet_ping_interval": (0, U32), "knet_ping_timeout": (0, U32),
                "knet_ping_precision": (0, U32), "knet_pong_count": (0, U32)}
        for key, (low, high) in ints.items():
            if item.get(key) is not None:
                got[key] = p.integer(f"{path}.{key}", item[key], low, high)
        for key in ("mcastaddr", "bindnetaddr"):
            if item.get(key) is not None:
                got[key] = _ip_text(p, f"{path}.{key}", item[key])
        if item.get("broadcast") is not None:
            got["broadcast"] = p.boolean(f"{path}.broadcast", item["broadcast"])
        if item.get("knet_transport") is not None:
            got["knet_transport"] = p.choice(f"{path}.knet_transport", item["knet_transport"], KNET_TRANSPORTS)
        got["extra"] = verbatim(p, f"{path}.extra", item.get("extra"), _LINK_OWN + allowed)
        if len(p.messages) == before:
            result.append(Link(**got))
    if len(p.messages) > before:
        return None
    return tuple(result)


def _ip_text(p: Problems, path: str, value: Any) -> str | None:
    text = value.strip() if isinstance(value, str) else value
    try:
        return str(ipaddress.ip_address(text))
    except (ValueError, TypeError):
        p.bad(path, value, "is not an IPv4 or IPv6 address")
        return None


def totem_of(p: Problems, value: Any) -> Totem | None:
    allowed = field_names(Totem)
    section = p.section("totem", value, allowed)
    result: dict[str, Any] = {}
    before = len(p.messages)
    for key in ("token", "join", "consensus"):
        if section.get(key) is not None:
            result[key] = p.integer(f"totem.{key}", section[key], 1, U32,
                                    f"must be a positive number of milliseconds (1..{U32})")
    for key in ("max_messages", "token_retransmits_before_loss_const"):
        if section.get(key) is not None:
            result[key] = p.integer(f"totem.{key}", section[key], 1, U32, f"must be a positive count (1..{U32})")
    if section.get("port") is not None:
        result["port"] = p.integer("totem.port", section["port"], 1, 65535, "is not a UDP port (1..65535)")
    for key, choices in (("crypto_cipher", CIPHERS), ("crypto_hash", HASHES), ("crypto_model", CRYPTO_MODELS),
                         ("ip_version", IP_VERSIONS)):
        if section.get(key) is not None:
            result[key] = p.choice(f"totem.{key}", section[key], choices)
    if section.get("secauth") is not None:
        result["secauth"] = p.boolean("totem.secauth", section["secauth"])
    result["extra"] = verbatim(p, "totem.extra", section.get("extra"), _TOTEM_OWN + allowed)
    token, consensus = result.get("token"), result.get("consensus")  # None where unset or already refused
    if token is not None and consensus is not None:
        if consensus * 5 < token * 6:
            minimum = token * 6 / 5
            shown = int(minimum) if minimum == int(minimum) else round(minimum, 1)
            p.bad("totem.consensus", consensus, f"is below 1.2 x totem.token ({shown})")
    retransmits = result.get("token_retransmits_before_loss_const")
    if token is not None and token < _MIN_TOKEN_RETRANSMIT_MS:
        p.bad("totem.token", token, f"is below Corosync's minimum of {_MIN_TOKEN_RETRANSMIT_MS} ms; raise it (Corosync refuses to start)")
    elif token is not None:
        counted = retransmits if retransmits is not None else _DEFAULT_RETRANSMITS
        retransmit = token / (counted + 0.2)
        if retransmit < _MIN_TOKEN_RETRANSMIT_MS:
            which = (f"totem.token_retransmits_before_loss_const {retransmits}" if retransmits is not None
                     else f"Corosync's default of {_DEFAULT_RETRANSMITS} token retransmits")
            p.bad(
                "totem.token", token,
                f"is too short for {which}: token / (retransmits + 0.2) = "
                f"{retransmit:.1f} ms, below Corosync's minimum of {_MIN_TOKEN_RETRANSMIT_MS} ms",
            )
    if len(p.messages) > before:
        return None
    return Totem(**result)


def logging_of(p: Problems, value: Any) -> Logging | None:
    allowed = field_names(Logging)
    section = p.section("logging", value, allowed)
    result: dict[str, Any] = {}
    before = len(p.messages)
    for key in ("to_syslog", "to_stderr", "to_logfile"):
        if section.get(key) is not None:
            result[key] = p.boolean(f"logging.{key}", section[key])
    for key, word in (("debug", "trace"), ("timestamp", "hires")):
        raw = section.get(key)
        if raw is not None and raw != word:
            result[key] = p.boolean(f"logging.{key}", raw) if isinstance(raw, bool) else None
            if not isinstance(raw, bool):
                p.bad(f"logging.{key}", raw, f"is not true or false (or '{word}')")
        elif raw is not None:
            result[key] = raw
    raw = section.get("logfile")
    if raw is not None:
        if not isinstance(raw, str) or not raw.startswith("/") or UNSAFE_IN_CONF.search(raw):
            p.bad("logging.logfile", raw, "is not an absolute path (no control characters or braces)")
        else:
            result["logfile"] = raw
    result["extra"] = verbatim(p, "logging.extra", section.get("extra"), allowed)
    return None if len(p.messages) > before else Logging(**result)


def quorum_of(p: Problems, value: Any) -> Quorum | None:
    allowed = field_names(Quorum)
    section = p.section("quorum", value, allowed)
    result: dict[str, Any] = {}
    before = len(p.messages)
    if section.get("provider") is not None:
        result["provider"] = p.choice("quorum.provider", section["provider"], ("corosync_votequorum", "none"))
    for key in ("two_node", "wait_for_all", "last_man_standing", "auto_tie_breaker", "fencing"):
        if section.get(key) is not None:
            result[key] = p.boolean(f"quorum.{key}", section[key])
    if section.get("last_man_standing_window") is not None:
        result["last_man_standing_window"] = p.integer("quorum.last_man_standing_window",
                                                       section["last_man_standing_window"], 1, U32)
    if section.get("expected_votes") is not None:
        result["expected_votes"] = p.integer("quorum.expected_votes", section["expected_votes"], 0, U32)
    node = section.get("auto_tie_breaker_node")
    if node is not None:
        text = str(node) if isinstance(node, int) and not isinstance(node, bool) else node
        if not isinstance(text, str) or not re.fullmatch(r"lowest|highest|[0-9]+( [0-9]+)*", text):
            p.bad("quorum.auto_tie_breaker_node", node, "is not lowest, highest or node ids separated by spaces")
        else:
            result["auto_tie_breaker_node"] = text
    if section.get("device") is not None:
        result["device"] = _device(p, section["device"])
    result["extra"] = verbatim(p, "quorum.extra", section.get("extra"), allowed)
    return None if len(p.messages) > before else Quorum(**result)


def _device(p: Problems, value: Any) -> QuorumDevice | None:
    allowed = field_names(QuorumDevice)
    section = p.section("quorum.device", value, allowed)
    if not isinstance(value, Mapping):
        return None
    result: dict[str, Any] = {}
    if section.get("model") is not None:
        result["model"] = p.choice("quorum.device.model", section["model"], ("net",))
    for key in ("votes", "timeout", "sync_timeout"):
        if section.get(key) is not None:
            result[key] = p.integer(f"quorum.device.{key}", section[key], 0 if key == "votes" else 1, U32)
    net = section.get("net")
    if net is None:
        p.add("quorum.device.net", "missing; model net needs net: {host: <the qnetd server>}")
    else:
        result["net"] = _net(p, net)
    net_result = result.get("net")
    if net_result is not None and net_result.algorithm == "ffsplit" and result.get("votes") not in (None, 1):
        p.bad("quorum.device.votes", result["votes"], "must be 1 with algorithm ffsplit (corosync-qdevice refuses any other)")
    result["heuristics"] = verbatim(p, "quorum.device.heuristics", section.get("heuristics"), ())
    result["extra"] = verbatim(p, "quorum.device.extra", section.get("extra"), allowed)
    return QuorumDevice(**result)


_SSH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", re.ASCII)


def _net(p: Problems, value: Any) -> NetDevice | None:
    allowed = field_names(NetDevice)
    section = p.section("quorum.device.net", value, allowed)
    if not isinstance(value, Mapping):
        return None
    host = section.get("host")
    if host is None:
        p.add("quorum.device.net.host", "missing; give the address or hostname of the corosync-qnetd server")
        host_text = None
    else:
        host_text = check_address(p, "quorum.device.net.host", host)
    result: dict[str, Any] = {"host": host_text or ""}
    name = section.get("name")
    if name is not None:
        if not isinstance(name, str) or not _SSH_NAME.fullmatch(name):
            p.bad("quorum.device.net.name", name, "is not a host name (letters, digits, '.' and '-')")
        else:
            result["name"] = name
    if section.get("port") is not None:
        result["port"] = p.integer("quorum.device.net.port", section["port"], 1, 65535)
    for key, choices in (("algorithm", ("ffsplit", "lms", "test", "2nodelms")), ("tls", ("on", "off", "required"))):
        raw = section.get(key)
        if isinstance(raw, bool):
            raw = "on" if raw else "off"
        if raw is not None:
            result[key] = p.choice(f"quorum.device.net.{key}", raw, choices)
    tie = section.get("tie_breaker")
    if tie is not None:
        text = str(tie) if isinstance(tie, int) and not isinstance(tie, bool) else tie
        if not isinstance(text, str) or not re.fullmatch(r"lowest|highest|[0-9]+", text):
            p.bad("quorum.device.net.tie_breaker", tie, "is not lowest, highest or a node id")
        else:
            result["tie_breaker"] = text
    if section.get("connect_timeout") is not None:
        result["connect_timeout"] = p.integer("quorum.device.net.connect_timeout", section["connect_timeout"], 1, U32)
    if section.get("force_ip_version") is not None:
        result["force_ip_version"] = p.choice("quorum.device.net.force_ip_version",
                                              str(section["force_ip_version"]), ("0", "4", "6"))
        if result["force_ip_version"] is not None:
            result["force_ip_version"] = int(result["force_ip_version"])
    result["extra"] = verbatim(p, "quorum.device.net.extra", section.get("extra"), allowed)
    return NetDevice(**result)


def legacy_of(p: Problems, value: Any) -> Extra | None:
    """legacy_1x: sections (and totem/logging keys) written on Corosync 1.x only."""
    return verbatim(p, "legacy_1x", value, ("nodelist", "quorum"))


def ssh_of(p: Problems, value: Any, nodes: tuple[Node, ...]) -> SshSettings | None:
    allowed = field_names(SshSettings)
    section = p.section("ssh", value, allowed)
    result: dict[str, Any] = asdict(SshSettings())
    before = len(p.messages)
    user = section.get("user")
    if user is not None:
        if isinstance(user, str) and _SSH_USER.fullmatch(user):
            result["user"] = user
        else:
            p.bad("ssh.user", user, "is not a user name")
    if section.get("port") is not None:
        result["port"] = p.integer("ssh.port", section["port"], 1, 65535, "is not a TCP port (1..65535)")
    for key in ("identity_file", "known_hosts", "config"):
        raw = section.get(key)
        if raw is None:
            continue
        if isinstance(raw, str) and raw.strip() and not re.search(r"[\x00-\x1f]", raw):
            result[key] = raw
        else:
            p.bad(f"ssh.{key}", raw, "is not a file path (or null)")
    if section.get("sudo") is not None:
        result["sudo"] = p.boolean("ssh.sudo", section["sudo"])
    timeout = section.get("connect_timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
            p.bad("ssh.connect_timeout", timeout, "is not a number of seconds in (0, 600]")
        else:
            result["connect_timeout"] = timeout
    trusted = section.get("trust_unknown_hosts")
    if trusted is not None:
        result["trust_unknown_hosts"] = _trusted(p, trusted, nodes)
    if len(p.messages) > before:
        return None
    return SshSettings(**result)


def _trusted(p: Problems, value: Any, nodes: tuple[Node, ...]) -> tuple[str, ...]:
    """Node names whose unknown host key may be accepted: an explicit opt-in, so names must exist."""
    if not isinstance(value, (list, tuple)):
        p.bad("ssh.trust_unknown_hosts", value, "is not a list of node names")
        return ()
    known = {n.name.lower(): n.name for n in nodes}
    names = []
    for index, item in enumerate(value):
        path = f"ssh.trust_unknown_hosts[{index}]"
        if not isinstance(item, str):
            p.bad(path, item, "is not a node name")
        elif nodes and item.lower() not in known:
            p.bad(path, item, f"is not a node of this cluster; known: {', '.join(known.values())}")
        else:
            names.append(known.get(item.lower(), item))
    return tuple(names)
