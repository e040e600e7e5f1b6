"""The link check's node side: a few lines of Python 3 that every node runs at once, over SSH.

Each node binds the UDP ports Corosync will use on its own link addresses, sends small and
MTU-sized datagrams to every peer's ports and answers each datagram it gets. What a node *received*
proves the direction peer -> node; nothing else is trusted. The program is Python 3 from the
node's own packages (Debian and RHEL both have it: `python3`, or RHEL's `platform-python`); nothing is
copied from the controller but this text. A port already held (Corosync runs there) is reported as
held, never probed: the probe must not disturb a running cluster.

`probe_script` and `parse_probe` are pure, so tests need no SSH.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MARK = "@@runbook-probe"
NO_PYTHON = "@@runbook-probe-no-python"
WINDOW = 3.0  # seconds a node sends and listens at most; a healthy cluster is done in well under one

# The program a node runs. Input: one JSON line (SPEC). Output: one JSON line after MARK.
PROGRAM = r'''
import errno, json, os, select, socket, sys, time
spec = json.loads(sys.argv[1])
me, run, window = spec["me"], spec["run"], float(spec["window"])
MAGIC = b"RUNBOOK-LINK-PROBE "
held, errors, socks = [], [], {}
def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET
for link, addr, port in spec["listen"]:
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    try:
        s.bind((addr, port))
    except OSError as exc:
        s.close()
        (held if exc.errno == errno.EADDRINUSE else errors).append([link, addr, port, os.strerror(exc.errno or 0)])
        continue
    s.setblocking(False)
    socks[(link, addr, port)] = s
def sender(link, addr, port):
    s = socks.get((link, addr, port))
    if s is None:
        s = socks.get(("out", link, addr))
    if s is None:
        s = socket.socket(family(addr), socket.SOCK_DGRAM)
        try:
            s.bind((addr, 0))
        except OSError as exc:
            errors.append([link, addr, 0, os.strerror(exc.errno or 0)])
        s.setblocking(False)
        socks[("out", link, addr)] = s
    return s
def path_mtu(src, dst, port):
    fam = family(dst)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.bind((src, 0))
        s.connect((dst, port))
        return s.getsockopt(socket.IPPROTO_IP, 14) if fam == socket.AF_INET else s.getsockopt(socket.IPPROTO_IPV6, 24)
    except OSError:
        return 1500
    finally:
        s.close()
todo = {}
for link, peer, src, sport, dst, dport in spec["send"]:
    overhead = 48 if ":" in dst else 28
    big = max(64, path_mtu(src, dst, dport) - overhead)
    for kind, size in (("small", 64), ("big", big)):
        todo[(link, peer, dst, dport, kind)] = (src, sport, size)
sent_size = {}
received, acked = set(), set()
expect = {(link, peer, port) for link, peer, port in spec["expect"]}
def packet(kind, link, peer, port, what, size):
    head = MAGIC + json.dumps({"run": run, "from": me, "to": peer, "link": link, "port": port, "kind": kind, "what": what, "size": size}).encode() + b"\n"
    return head + b"." * max(0, size - len(head))
def done():
    got = {(l, p, port) for l, p, port, k in received if k == "big"}
    return not (set(todo) - acked) and expect <= got
started = time.monotonic()
finished_at = None
last_send = 0.0
while time.monotonic() - started < window:
    now = time.monotonic()
    if finished_at is None and done():
        finished_at = now
    if finished_at is not None and now - finished_at > 0.3:
        break
    if now - last_send >= 0.1:
        last_send = now
        for key in set(todo) - acked:
            link, peer, dst, dport, kind = key
            src, sport, size = todo[key]
            s = sender(link, src, sport)
            if kind == "big" and s.family == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO: never fragment
            try:
                s.sendto(packet("probe", link, peer, dport, kind, size), (dst, dport))
                sent_size[key] = size
            except OSError as exc:
                sent_size[key] = "%s (%d bytes)" % (os.strerror(exc.errno or 0), size)
    ready, _, _ = select.select(list(socks.values()), [], [], 0.02)
    for s in ready:
        try:
            data, source = s.recvfrom(65535)
        except OSError:
            continue
        if not data.startswith(MAGIC):
            continue
        try:
            msg = json.loads(data[len(MAGIC):].split(b"\n", 1)[0])
        except ValueError:
            continue
        if msg.get("run") != run or msg.get("to") != me:
            continue
        if msg["kind"] == "probe":
            received.add((msg["link"], msg["from"], msg["port"], msg["what"]))
            try:
                s.sendto(packet("ack", msg["link"], msg["from"], msg["port"], msg["what"], 64), source[:2])
            except OSError:
                pass
        elif msg["kind"] == "ack":
            for key in todo:
                if key[0] == msg["link"] and key[1] == msg["from"] and key[3] == msg["port"] and key[4] == msg["what"]:
                    acked.add(key)
for s in socks.values():
    s.close()
print("@@runbook-probe")
print(json.dumps({"held": held, "errors": errors, "received": sorted(received),
                  "sizes": [[k[0], k[1], k[3], k[4], v] for k, v in sorted(sent_size.items())]}))
'''


@dataclass(frozen=True)
class ProbeSpec:
    """What one node does: bind `listen`, send to `send`, expect datagrams from `expect`.

    listen: (link, own address, port); send: (link, peer, own address, own port, peer address, peer port);
    expect: (link, peer, own port) for each datagram this node should get.
    """

    me: str
    run: str
    listen: tuple[tuple[int, str, int], ...]
    send: tuple[tuple[int, str, str, int, str, int], ...]
    expect: tuple[tuple[int, str, int], ...]
    window: float = WINDOW

    def to_json(self) -> str:
        return json.dumps({"me": self.me, "run": self.run, "window": self.window, "listen": self.listen,
                           "send": self.send, "expect": self.expect})


def probe_script(spec: ProbeSpec) -> str:
    """Pure: the shell command a node runs (Python 3 of its own; none found: says so and succeeds)."""
    quoted_spec = "'" + spec.to_json().replace("'", "'\"'\"'") + "'"
    return (
        'PY=$(command -v python3 || command -v /usr/libexec/platform-python) || { echo ' + NO_PYTHON + '; exit 0; }\n'
        '"$PY" - ' + quoted_spec + " <<'@@RUNBOOK_PROBE_END@@'\n" + PROGRAM + "\n@@RUNBOOK_PROBE_END@@\n"
    )


@dataclass(frozen=True)
class ProbeResult:
    """What one node saw: ports it could not bind (held: Corosync has them), and every datagram it got."""

    node: str
    python: bool = True
    held: tuple[tuple[int, str, int], ...] = ()
    errors: tuple[tuple[int, str, int, str], ...] = ()
    received: frozenset[tuple[int, str, int, str]] = frozenset()  # (link, from node, own port, small|big)
    sizes: tuple[tuple[int, str, int, str, object], ...] = ()  # (link, peer, port, kind, bytes sent or why not)
    unreadable: str = ""

    def got(self, link: int, peer: str, port: int, kind: str) -> bool:
        return (link, peer, port, kind) in self.received

    def is_held(self, link: int, port: int) -> bool:
        return any(l == link and p == port for l, _, p in self.held)

    def big_size(self, link: int, peer: str, port: int) -> object:
        return next((v for l, p, pt, k, v in self.sizes if (l, p, pt, k) == (link, peer, port, "big")), None)


def parse_probe(node: str, text: str) -> ProbeResult:
    """Pure: the program's output; anything else is kept as `unreadable` (the check then says so)."""
    if NO_PYTHON in text:
        return ProbeResult(node, python=False)
    _, found, body = text.partition(MARK + "\n")
    try:
        data = json.loads(body.strip().splitlines()[0]) if found else None
    except (ValueError, IndexError):
        data = None
    if not isinstance(data, dict):
        return ProbeResult(node, unreadable=text.strip()[-400:] or "no output")
    return ProbeResult(
        node,
        held=tuple((int(l), str(a), int(p)) for l, a, p, *_ in data.get("held", [])),
        errors=tuple((int(l), str(a), int(p), str(w)) for l, a, p, w in data.get("errors", [])),
        received=frozenset((int(l), str(f), int(p), str(k)) for l, f, p, k in data.get("received", [])),
        sizes=tuple((int(l), str(p), int(pt), str(k), v) for l, p, pt, k, v in data.get("sizes", [])),
    )
