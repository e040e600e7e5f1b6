"""corosync.conf per Corosync generation, and a parser for any existing corosync.conf.

Rendering writes what the cluster file sets, plus only what the runbook must set (`MUST_SET`, each
with its reason); a key the file leaves out is Corosync's own default and is not written. Generation 1
keeps the chapter's layout (its comments beside the keys it sets), so `clusters/chapter.yaml` gives
the book's two files byte for byte. Output is deterministic: same cluster, same bytes.

Parsing follows corosync's own reader: `name {` opens a section (`name: {` too), `}` closes it,
`key: value` splits at the first colon (so IPv6 values survive), lines starting with `#` are comments.
Two shapes:

- `parse_entries()` -> ordered tree `[(key, value), ...]`, a value is a `str` or a nested entry list.
  Exact order and repetition, for comparing files.
- `parse()` -> `{key: [occurrence, ...]}` with every key mapping to the LIST of its occurrences in file
  order (a value is a `str`, a section is again such a dict); keys keep first-appearance order.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator, Union

from runbook.cluster import Cluster, Link, Node
from runbook.cluster_model import Extra, QuorumDevice, extra_get
from runbook.errors import ClusterFileError, ConfigParseError

Entry = tuple[str, Union[str, "list[Entry]"]]
Parsed = dict[str, list[Any]]

MAX_CONF_BYTES = 1024 * 1024
MAX_DEPTH = 16
TIMING_KEYS = ("token", "token_retransmits_before_loss_const", "join", "consensus", "max_messages")
LOGGING_KEYS = ("to_syslog", "to_stderr", "to_logfile", "logfile", "debug", "timestamp")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# What the runbook writes although the cluster file does not set it, and why (docs/cluster-file.md).
MUST_SET: tuple[tuple[str, str, str], ...] = (
    ("totem.version", "all", "2: every Corosync generation requires it"),
    ("totem.cluster_name", "2, 3", "the cluster's name; the runbook checks the running Corosync by it "
     "(not written with name_in_conf: false)"),
    ("totem.transport", "all", "with transport: auto (the default): udpu on 1.x/2.x, knet on 3.x, unicast so the "
     "network needs no multicast (transport: default writes none)"),
    ("totem.secauth / crypto_cipher / crypto_hash", "all", "with crypto: auto or on/off and no cipher/hash/secauth "
     "set: the authkey step makes the key these use (crypto: default writes none)"),
    ("totem.ip_version", "2", "ipv6 when link 0's addresses are IPv6: Corosync 2 resolves IPv4 otherwise"),
    ("totem.nodeid", "1", "on IPv6, the rendered node's id: Corosync 1.x cannot derive one from an IPv6 address"),
    ("totem.interface (one per ring)", "1", "with member/memberaddr (udpu) and bindnetaddr (the node's own address "
     "unless the link sets one): Corosync 1.x finds its ring and peers there"),
    ("nodelist", "2, 3", "every node with nodeid and ringN_addr (name if given); nodelist: false writes none "
     "(multicast only)"),
    ("quorum.provider", "2, 3", "corosync_votequorum unless quorum.provider is none: the runbook verifies quorum"),
    ("quorum.two_node", "2, 3", "1 when two_node is unset, the cluster has exactly 2 nodes and no quorum device"),
)


# --- rendering -----------------------------------------------------------------------------------


class _Writer:
    """Tab-indented corosync syntax."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str) -> None:
        self.lines.append("\t" * self.depth + text if text else "")

    def kv(self, key: str, value: object) -> None:
        self.line(f"{key}: {value}")

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        self.line(f"{name} {{")
        self.depth += 1
        yield
        self.depth -= 1
        self.line("}")

    def extra(self, extra: Extra) -> None:
        """Verbatim keys and sections, in the order the cluster file gives them."""
        for key, value in extra:
            if isinstance(value, tuple):
                with self.section(key):
                    self.extra(value)
            else:
                self.kv(key, value)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _on(flag: bool | str) -> str:
    return flag if isinstance(flag, str) else ("on" if flag else "off")


def _one(flag: bool) -> int:
    return 1 if flag else 0


def header(cluster: Cluster, node: Node, generation: int) -> str:
    """First line of every rendered file: what made it, for which cluster and node, and not to edit it.

    It names the cluster, not the file or notebook it was loaded from: the same cluster must give the
    same bytes whether a notebook, the CLI or a test renders it, or a node's file would look changed
    (and Corosync be restarted) only because someone else wrote it. The run record says which file.
    """
    return (
        f"# Generated by corosync-runbook for cluster {cluster.name}, node {node.name} (Corosync {generation}.x). "
        "Do not edit by hand: edit the cluster file and re-run."
    )


def render(cluster: Cluster, node_name: str, generation: int | None = None) -> str:
    """corosync.conf for one node. `generation` overrides the cluster's; one of them must be known."""
    if generation is None:
        generation = cluster.generation
    if generation is None:
        raise ClusterFileError(
            "generation: 'auto' must be resolved before rendering corosync.conf: "
            "set generation to 1, 2 or 3 in the cluster file, or detect it on the nodes",
            cluster.source,
        )
    node = cluster.node(node_name)
    cluster.transport_for(generation)  # validates generation and its rules (raises ClusterFileError)
    w = _Writer()
    w.line(header(cluster, node, generation))
    if generation == 1:
        _render_1(w, cluster, node)
    else:
        _render_modern(w, cluster, generation)
    return w.text()


def _transport_line(cluster: Cluster, generation: int) -> str | None:
    """The transport to write, or None (transport: default = Corosync's own)."""
    return None if cluster.transport == "default" else cluster.transport_for(generation)


def _crypto_set(cluster: Cluster) -> bool:
    t = cluster.totem
    return any(v is not None for v in (t.crypto_cipher, t.crypto_hash, t.crypto_model, t.secauth))


def _without(extra: Extra, *keys: str) -> Extra:
    return tuple((k, v) for k, v in extra if k not in keys)


def _section(extra: Extra, name: str) -> Extra:
    """The keys of section `name` inside an extra (merged if repeated)."""
    return tuple(pair for k, v in extra if k == name and isinstance(v, tuple) for pair in v)


def _legacy_kv(w: _Writer, legacy: Extra, key: str, comments: tuple[str, ...] = ()) -> None:
    for k, v in legacy:
        if k == key:
            for comment in comments:
                w.line(comment)
            if isinstance(v, tuple):
                with w.section(k):
                    w.extra(v)
            else:
                w.kv(k, v)


def _render_1(w: _Writer, cluster: Cluster, node: Node) -> None:
    """The chapter's layout for what is set: same sections, keys, order and comments."""
    t = cluster.totem
    # The chapter's keys take the chapter's places, whether the file keeps them as 1.x-only or for every generation.
    legacy_totem = _section(cluster.legacy_1x, "totem") + t.extra
    placed = ("vsftype", "clear_node_high_bit", "threads", "nodeid")
    w.line("# Please read the openais.conf.5 manual page")
    with w.section("totem"):
        w.kv("version", 2)
        timing_comments = {
            "token": ("# How long before declaring a token lost (ms)",),
            "token_retransmits_before_loss_const": ("# How many token retransmits before", "# forming a new configuration"),
            "join": ("# How long to wait for join messages", "# in the membership protocol (ms)"),
            "consensus": ("# How long to wait for consensus to be achieved", "# before starting a new round of",
                          "# membership configuration (ms)"),
        }
        for key, comments in timing_comments.items():
            if getattr(t, key) is not None:
                for comment in comments:
                    w.line(comment)
                w.kv(key, getattr(t, key))
        _legacy_kv(w, legacy_totem, "vsftype", ("# Turn off the virtual synchrony filter",)
                   if extra_get(legacy_totem, "vsftype") == "none" else ())
        if t.max_messages is not None:
            w.line("# Number of messages that may be sent by one")
            w.line("# processor on receipt of the token")
            w.kv("max_messages", t.max_messages)
        _legacy_kv(w, legacy_totem, "clear_node_high_bit", ("# Limit generated nodeids to 31-bits", "# (positive signed integers)"))
        if t.secauth is not None or cluster.crypto != "default":
            crypto = cluster.crypto_for(1)
            w.line("# Enable encryption" if crypto else "# Disable encryption")
            w.kv("secauth", _on(crypto))
        _legacy_kv(w, legacy_totem, "threads", ("# How many threads to use for encryption/decryption",))
        w.line("# Optionally assign a fixed node id (integer)")
        fixed = extra_get(legacy_totem, "nodeid") is not None
        if ":" in node.address and node.nodeid is not None and not fixed:  # Corosync 1.x needs a fixed node id on IPv6
            w.kv("nodeid", node.nodeid)
        elif not fixed:
            w.line("#nodeid: 1234")
        _legacy_kv(w, legacy_totem, "nodeid")
        if cluster.rrp_mode is not None:
            w.kv("rrp_mode", cluster.rrp_mode)
        transport = _transport_line(cluster, 1)
        numbers = sorted(set(range(cluster.link_count)) | {link.number for link in cluster.links})
        for number in numbers:
            link = cluster.link(number) or Link(number=number)
            with w.section("interface"):
                if cluster.transport_for(1) == "udpu":
                    for member in cluster.nodes:
                        with w.section("member"):
                            w.kv("memberaddr", member.addresses[number])
                w.kv("ringnumber", number)
                own = node.addresses[number] if number < len(node.addresses) else None
                if link.bindnetaddr or own:
                    w.kv("bindnetaddr", link.bindnetaddr or own)  # each node's own address (unicast)
                _link_options(w, cluster, link, 1)
        if transport is not None:
            w.kv("transport", transport)
        if t.ip_version is not None:
            w.kv("ip_version", t.ip_version)
        w.extra(_without(legacy_totem, *placed))
    plugin_written = False
    for key, value in cluster.legacy_1x:
        if key in ("totem", "logging"):
            continue
        if key == "aisexec" and cluster.pacemaker_plugin and not plugin_written:
            _plugin(w)
            plugin_written = True
        w.extra(((key, value),))
    if cluster.pacemaker_plugin and not plugin_written:
        _plugin(w)
    lg = cluster.logging
    legacy_logging = _section(cluster.legacy_1x, "logging") + lg.extra
    if legacy_logging or lg != type(lg)():
        with w.section("logging"):
            _legacy_kv(w, legacy_logging, "fileline")
            if lg.to_stderr is not None:
                w.kv("to_stderr", _yes(lg.to_stderr))
            if lg.to_logfile is not None:
                w.kv("to_logfile", _yes(lg.to_logfile))
            if lg.logfile is not None:
                w.kv("logfile", lg.logfile)
            if lg.to_syslog is not None:
                w.kv("to_syslog", _yes(lg.to_syslog))
            _legacy_kv(w, legacy_logging, "syslog_facility")
            if lg.debug is not None:
                w.kv("debug", _on(lg.debug))
            if lg.timestamp is not None:
                w.kv("timestamp", _on(lg.timestamp))
            w.extra(_without(legacy_logging, "fileline", "syslog_facility"))
    _quorum(w, cluster, 1)
    w.extra(cluster.extra)


def _plugin(w: _Writer) -> None:
    with w.section("service"):
        w.line("# Load the Pacemaker Cluster Resource Manager")
        w.kv("ver", 0)
        w.kv("name", "pacemaker")


def _link_options(w: _Writer, cluster: Cluster, link: Link, generation: int) -> None:
    """One link's options after its number (and bindnetaddr on 1.x), in a fixed order."""
    if generation != 1 and link.bindnetaddr is not None:
        w.kv("bindnetaddr", link.bindnetaddr)
    if link.mcastaddr is not None:
        w.kv("mcastaddr", link.mcastaddr)
    port = link.mcastport if link.mcastport is not None else (cluster.totem.port if link.number == 0 else None)
    if port is not None:
        w.kv("mcastport", port)
    if link.ttl is not None:
        w.kv("ttl", link.ttl)
    if link.broadcast is not None:
        w.kv("broadcast", _yes(link.broadcast))
    for key in ("knet_link_priority", "knet_transport", "knet_ping_interval", "knet_ping_timeout",
                "knet_ping_precision", "knet_pong_count"):
        if getattr(link, key) is not None:
            w.kv(key, getattr(link, key))
    w.extra(link.extra)


def _render_modern(w: _Writer, cluster: Cluster, generation: int) -> None:
    """Corosync 2.x/3.x: nodelist + votequorum; Pacemaker runs as its own daemon (no plugin)."""
    t = cluster.totem
    transport = _transport_line(cluster, generation)
    with w.section("totem"):
        w.kv("version", 2)
        if cluster.name_in_conf:
            w.kv("cluster_name", cluster.name)
        for key in TIMING_KEYS:
            if getattr(t, key) is not None:
                w.kv(key, getattr(t, key))
        if transport is not None:
            w.kv("transport", transport)
        if _crypto_set(cluster):
            if t.crypto_model is not None:
                w.kv("crypto_model", t.crypto_model)
            if t.crypto_cipher is not None:
                w.kv("crypto_cipher", t.crypto_cipher)
            if t.crypto_hash is not None:
                w.kv("crypto_hash", t.crypto_hash)
            if t.secauth is not None:
                w.kv("secauth", _on(t.secauth))
        elif cluster.crypto != "default":
            crypto = cluster.crypto_for(generation)
            w.kv("crypto_cipher", "aes256" if crypto else "none")
            w.kv("crypto_hash", "sha256" if crypto else "none")
            if generation == 2:
                w.kv("secauth", _on(crypto))
        ip_version = t.ip_version
        if ip_version is None and generation == 2 and any(":" in n.address for n in cluster.nodes):
            ip_version = "ipv6"  # Corosync 2 resolves IPv4 unless told
        if ip_version is not None:
            w.kv("ip_version", ip_version)
        if cluster.rrp_mode is not None:
            if generation == 2:
                w.kv("rrp_mode", cluster.rrp_mode)
            elif cluster.transport_for(generation) == "knet" and cluster.rrp_mode != "none":
                w.kv("link_mode", cluster.rrp_mode)  # knet's name for it; udpu/udp have one link only
        w.extra(t.extra)
        links = list(cluster.links)
        if cluster.link(0) is None and t.port is not None:
            links.insert(0, Link(number=0))
        for link in links:
            with w.section("interface"):
                w.kv("ringnumber" if generation == 2 else "linknumber", link.number)
                _link_options(w, cluster, link, generation)
    if cluster.nodelist:
        w.line("")
        with w.section("nodelist"):
            for node in (n for n in cluster.nodes if n.listed):
                with w.section("node"):
                    if node.named:
                        w.kv("name", node.name)
                    if node.nodeid is not None:
                        w.kv("nodeid", node.nodeid)
                    for number, address in enumerate(node.addresses):
                        w.kv(f"ring{number}_addr", address)
                    if node.quorum_votes is not None:
                        w.kv("quorum_votes", node.quorum_votes)
                    w.extra(node.extra)
    _quorum(w, cluster, generation)
    lg = cluster.logging
    if lg != type(lg)():
        w.line("")
        with w.section("logging"):
            if lg.to_logfile is not None:
                w.kv("to_logfile", _yes(lg.to_logfile))
            if lg.logfile is not None:
                w.kv("logfile", lg.logfile)
            if lg.to_syslog is not None:
                w.kv("to_syslog", _yes(lg.to_syslog))
            if lg.to_stderr is not None:
                w.kv("to_stderr", _yes(lg.to_stderr))
            if lg.timestamp is not None:
                w.kv("timestamp", _on(lg.timestamp))
            if lg.debug is not None:
                w.kv("debug", _on(lg.debug))
            w.extra(lg.extra)
    if cluster.extra:
        w.line("")
        w.extra(cluster.extra)


def two_node_for(cluster: Cluster, generation: int) -> bool | None:
    """two_node as written: the file's value, else 1 for exactly 2 nodes with votequorum and no device."""
    q = cluster.quorum
    if q.two_node is not None:
        return q.two_node
    if generation >= 2 and q.provider is None and q.device is None and len(cluster.nodes) == 2:
        return True
    return None


def _quorum(w: _Writer, cluster: Cluster, generation: int) -> None:
    q = cluster.quorum
    provider = q.provider if q.provider is not None else ("corosync_votequorum" if generation >= 2 else None)
    lines: list[tuple[str, object]] = []
    if provider not in (None, "none"):
        lines.append(("provider", provider))
    two_node = two_node_for(cluster, generation)
    if two_node is not None:
        lines.append(("two_node", _one(two_node)))
    if q.expected_votes is not None:
        lines.append(("expected_votes", q.expected_votes))
    for key in ("wait_for_all", "last_man_standing"):
        if getattr(q, key) is not None:
            lines.append((key, _one(getattr(q, key))))
    if q.last_man_standing_window is not None:
        lines.append(("last_man_standing_window", q.last_man_standing_window))
    if q.auto_tie_breaker is not None:
        lines.append(("auto_tie_breaker", _one(q.auto_tie_breaker)))
    if q.auto_tie_breaker_node is not None:
        lines.append(("auto_tie_breaker_node", q.auto_tie_breaker_node))
    if not lines and q.device is None and not q.extra:
        return
    if generation != 1:
        w.line("")
    with w.section("quorum"):
        for key, value in lines:
            w.kv(key, value)
        if q.device is not None:
            _device(w, q.device)
        w.extra(q.extra)


def _device(w: _Writer, device: QuorumDevice) -> None:
    with w.section("device"):
        if device.model is not None:
            w.kv("model", device.model)
        for key in ("votes", "timeout", "sync_timeout"):
            if getattr(device, key) is not None:
                w.kv(key, getattr(device, key))
        net = device.net
        if net is not None:
            with w.section("net"):
                w.kv("host", net.host)
                for key in ("port", "algorithm", "tls", "tie_breaker", "connect_timeout", "force_ip_version"):
                    if getattr(net, key) is not None:
                        w.kv(key, getattr(net, key))
                w.extra(net.extra)
        if device.heuristics:
            with w.section("heuristics"):
                w.extra(device.heuristics)
        w.extra(device.extra)


# --- parsing -------------------------------------------------------------------------------------


def parse_entries(text: str | bytes, source: str = "corosync.conf") -> list[Entry]:
    """Ordered tree of (key, value) entries; a section's value is its own entry list."""
    text = _as_text(text, source)
    root: list[Entry] = []
    stack: list[tuple[str, int, list[Entry]]] = [("", 0, root)]
    for number, raw in enumerate(text.split("\n"), start=1):
        if _CONTROL.search(raw):
            raise ConfigParseError("control character in line: not a text corosync.conf", source, number)
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, _, rest = line.partition("{")
            name = name.strip()
            name = name.strip().removesuffix(":").strip()  # corosync also reads `interface: {`
            if not name or rest.strip() or any(c in name for c in ":}"):
                raise ConfigParseError(f"bad section opening {_quote(line)}: expected 'name {{'", source, number)
            if len(stack) > MAX_DEPTH:
                raise ConfigParseError(f"sections nested deeper than {MAX_DEPTH}", source, number)
            body: list[Entry] = []
            stack[-1][2].append((name, body))
            stack.append((name, number, body))
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            if not key or "}" in key:
                raise ConfigParseError(f"bad line {_quote(line)}: expected 'key: value'", source, number)
            stack[-1][2].append((key, value.strip()))
        elif line == "}":
            if len(stack) == 1:
                raise ConfigParseError("'}' without an open section", source, number)
            stack.pop()
        else:
            raise ConfigParseError(
                f"cannot read {_quote(line)}: expected 'name {{', 'key: value', '}}' or a # comment", source, number
            )
    if len(stack) > 1:
        name, opened, _ = stack[-1]
        message = f"section {name!r} opened at line {opened} is never closed (missing '}}')"
        raise ConfigParseError(message, source, opened)
    return root


def parse(text: str | bytes, source: str = "corosync.conf") -> Parsed:
    """`{key: [occurrence, ...]}` (see module doc): every key holds the list of its values/sections."""
    return _to_dict(parse_entries(text, source))


def _to_dict(entries: list[Entry]) -> Parsed:
    result: Parsed = {}
    for key, value in entries:
        result.setdefault(key, []).append(_to_dict(value) if isinstance(value, list) else value)
    return result


def _as_text(text: str | bytes, source: str) -> str:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigParseError(f"not UTF-8 text (bad byte at offset {error.start})", source) from None
    if not isinstance(text, str):
        raise ConfigParseError(f"expected the file's text, got {type(text).__name__}", source)
    if len(text) > MAX_CONF_BYTES:
        raise ConfigParseError(f"larger than {MAX_CONF_BYTES} characters: not a corosync.conf", source)
    return text


def _quote(line: str) -> str:
    return repr(line if len(line) <= 60 else line[:57] + "...")


def equivalent(text_a: str | bytes, text_b: str | bytes) -> bool:
    """Same sections, keys, values and order, comments and indentation aside (e.g. our header line).

    The header names the cluster file (or 'parameters'), so the same cluster rendered from the CLI
    and from a notebook differs in that comment only; idempotency checks should compare with this.
    """
    try:
        return parse_entries(text_a) == parse_entries(text_b)
    except ConfigParseError:
        return False


# --- comparing two files' settings ---------------------------------------------------------------

# Keys whose value is a yes/no switch: Corosync reads yes/on/true/1 alike (and no/off/false/0).
BOOLEAN_KEYS = frozenset((
    "secauth", "to_syslog", "to_stderr", "to_logfile", "debug", "timestamp", "broadcast", "two_node",
    "wait_for_all", "last_man_standing", "auto_tie_breaker",
))
_MERGED = ("totem", "logging", "quorum", "nodelist")


def settings(text: str | bytes, source: str = "corosync.conf") -> dict[str, Any]:
    """A file's settings as Corosync reads them, for comparing two files key by key.

    Normalized only where Corosync itself makes no difference (each is truly equivalent):
    comments, indentation, blank lines and key order; repeated top-level sections (merged, as
    Corosync does); a repeated key (the last value wins, as in Corosync); an empty section (= none);
    yes/on/true/1 and no/off/false/0 in `BOOLEAN_KEYS`; the order of repeated sections other than
    `node` (interface, member, logger_subsys: each is identified by its own keys); and two keys whose
    absence Corosync reads as their only or default value: totem.version (2, the only valid one) and an
    interface's ringnumber/linknumber (0).
    """
    result = _normal(parse_entries(text, source), top=True)
    totem = result.get("totem")
    if isinstance(totem, dict):
        totem.setdefault("version", "2")
        for interface in totem.get("interface", []):
            if "ringnumber" not in interface and "linknumber" not in interface:
                interface["ringnumber" if "member" in interface or "bindnetaddr" in interface else "linknumber"] = "0"
        if isinstance(totem.get("interface"), list):
            totem["interface"].sort(key=lambda n: repr(sorted(n.items())))
    return result


def _normal(entries: list[Entry], top: bool = False) -> dict[str, Any]:
    scalars: dict[str, str] = {}
    sections: dict[str, list[list[Entry]]] = {}
    for key, value in entries:
        if isinstance(value, list):
            sections.setdefault(key, []).append(value)
        else:
            scalars[key] = _normal_value(key, value)
    result: dict[str, Any] = dict(scalars)
    for key, bodies in sections.items():
        if top and key in _MERGED:
            merged = _normal([pair for body in bodies for pair in body])
            if merged:
                result[key] = merged
            continue
        normals = [n for n in (_normal(body) for body in bodies) if n]
        if not normals:
            continue
        if key != "node":
            normals.sort(key=lambda n: repr(sorted(n.items())))
        result[key] = normals
    return result


def _normal_value(key: str, value: str) -> str:
    lowered = value.strip().lower()
    if key in BOOLEAN_KEYS:
        if lowered in ("yes", "on", "true", "1"):
            return "1"
        if lowered in ("no", "off", "false", "0"):
            return "0"
    return value.strip()


def differences(before: dict[str, Any], after: dict[str, Any], path: str = "") -> list[str]:
    """`path: before -> after` for every setting that differs between two `settings()`."""
    found = []
    for key in list(before) + [k for k in after if k not in before]:
        where = f"{path}.{key}" if path else key
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            found.extend(differences(a, b, where))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b)):
                found.extend(differences(x, y, f"{where}[{index}]"))
        else:
            found.append(f"{where}: {_brief(a)} -> {_brief(b)}")
    return found


def _brief(value: Any) -> str:
    if value is None:
        return "(absent)"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
