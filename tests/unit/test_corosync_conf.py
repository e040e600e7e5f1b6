"""corosync.conf rendering per generation, the chapter's files as golden output, and the parser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook.conf.parse import differences, parse, parse_entries, settings
from runbook.conf.render import render
from runbook.errors import ClusterFileError, ConfigParseError
from runbook.migrate.from_conf import detect_generation, migrate
from runbook.model.effective import resolve
from runbook.model.load import load_cluster
from runbook.model.rules import cluster_from_mapping, to_parameters, with_generation
from runbook.model.types import Cluster

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
CHAPTER_TEX = ROOT.parent / "shared" / "reference" / "corosync-setup.tex"  # shared/ sits beside the checkout
GOLDEN_FOR = {"node1": GOLDEN / "chapter-primary.conf", "node2": GOLDEN / "chapter-secondary.conf"}


@pytest.fixture(scope="module")
def chapter() -> Cluster:
    return load_cluster(ROOT / "clusters" / "chapter.yaml")


@pytest.fixture(scope="module")
def lab3() -> Cluster:
    return load_cluster(ROOT / "clusters" / "lab3.yaml")


def _meaningful(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- golden: generation 1 is the chapter's file --------------------------------------------------


@pytest.mark.parametrize("node", ["node1", "node2"])
def test_generation_1_is_the_chapters_file(chapter: Cluster, node: str) -> None:
    golden = GOLDEN_FOR[node].read_text()
    rendered = render(chapter, node, 1)
    # sections, keys, values and their order
    assert parse_entries(rendered) == parse_entries(golden)
    assert parse(rendered) == parse(golden)
    assert list(parse(rendered)) == ["totem", "amf", "service", "aisexec", "logging"]
    # and even line by line, comments included (only indentation and our header line differ)
    assert _meaningful(rendered)[1:] == _meaningful(golden)


def test_the_chapters_two_files_differ_only_in_bindnetaddr() -> None:
    primary = GOLDEN_FOR["node1"].read_text().splitlines()
    secondary = GOLDEN_FOR["node2"].read_text().splitlines()
    diff = [(a, b) for a, b in zip(primary, secondary) if a != b]
    assert len(primary) == len(secondary)
    assert diff == [("bindnetaddr: 10.0.66.201", "bindnetaddr: 10.0.66.202")]


@pytest.mark.skipif(not CHAPTER_TEX.exists(), reason="the chapter's source is not on this machine")
def test_golden_files_are_the_chapters_verbatim_blocks() -> None:
    blocks = re.findall(r"\\begin\{verbatim\}\n(.*?)\\end\{verbatim\}", CHAPTER_TEX.read_text(), re.S)
    confs = [b for b in blocks if b.startswith("# Please read")]
    assert confs == [GOLDEN_FOR["node1"].read_text(), GOLDEN_FOR["node2"].read_text()]


# --- golden: generations 2 and 3, byte for byte ----------------------------------------------------

GOLDEN_MODERN = [
    ("chapter.yaml", "node1", 2, "chapter-gen2-node1.conf"),
    ("chapter.yaml", "node1", 3, "chapter-gen3-node1.conf"),
    ("three-node-two-links-qdevice.yaml", "alpha", 2, "three-node-two-links-qdevice-gen2-alpha.conf"),
    ("three-node-two-links-qdevice.yaml", "alpha", 3, "three-node-two-links-qdevice-gen3-alpha.conf"),
]


@pytest.mark.parametrize(("cluster_file", "node", "generation", "golden"), GOLDEN_MODERN, ids=[g[3] for g in GOLDEN_MODERN])
def test_generation_2_and_3_renders_are_byte_for_byte_the_golden_files(
    cluster_file: str, node: str, generation: int, golden: str
) -> None:
    """A reordered key or a changed blank line would restart Corosync on every node at the next run.

    If a change is intended: `runbook render clusters/FILE --node NODE --generation G > tests/golden/GOLDEN`."""
    rendered = render(load_cluster(ROOT / "clusters" / cluster_file), node, generation)
    assert rendered == (GOLDEN / golden).read_text()


def test_the_two_link_qdevice_example_renders_every_link_and_the_device() -> None:
    cluster = load_cluster(ROOT / "clusters" / "three-node-two-links-qdevice.yaml")
    parsed = parse(render(cluster, "beta", 3))
    assert [i["linknumber"] for i in parsed["totem"][0]["interface"]] == [["0"], ["1"]]
    assert [n["ring1_addr"] for n in parsed["nodelist"][0]["node"]] == [["10.0.81.11"], ["10.0.81.12"], ["10.0.81.13"]]
    quorum = parsed["quorum"][0]
    assert "two_node" not in quorum and quorum["device"][0]["net"][0]["host"] == ["10.0.80.20"]
    assert parse(render(cluster, "beta", 2))["totem"][0]["rrp_mode"] == ["passive"]


def test_only_what_is_set_is_written() -> None:
    """Corosync's defaults are not written: a bare cluster gets only what the runbook must set."""
    bare = cluster_from_mapping({"cluster_name": "bare", "nodes": [{"name": "a", "address": "10.1.0.1"},
                                                                   {"name": "b", "address": "10.1.0.2"}]})
    totem = parse(render(bare, "a", 3))["totem"][0]
    assert list(totem) == ["version", "cluster_name", "transport", "crypto_cipher", "crypto_hash"]
    assert list(parse(render(bare, "a", 3))) == ["totem", "nodelist", "quorum"]
    one = parse(render(bare, "a", 1))
    assert list(one) == ["totem"] and "token" not in one["totem"][0]
    defaulted = cluster_from_mapping({**to_parameters(bare), "transport": "default", "crypto": "default"})
    assert list(parse(render(defaulted, "a", 3))["totem"][0]) == ["version", "cluster_name"]


def test_ipv6_on_generation_2_says_ip_version() -> None:
    cluster = cluster_from_mapping({"cluster_name": "v6", "nodes": [{"name": "a", "address": "2001:db8::a"},
                                                                   {"name": "b", "address": "2001:db8::b"}]})
    assert parse(render(cluster, "a", 2))["totem"][0]["ip_version"] == ["ipv6"]
    assert "ip_version" not in parse(render(cluster, "a", 3))["totem"][0]  # 3.x: ipv6-4 by default


def test_hostnames_unnamed_nodes_and_unset_ids_render_as_given() -> None:
    cluster = cluster_from_mapping({
        "cluster_name": "h", "generation": 2, "name_in_conf": False,
        "nodes": [{"address": "rh7-1", "nodeid": None}, {"name": "rh7-2", "address": "rh7-2.example.com"}],
    })
    nodes = parse(render(cluster, "rh7-1", 2))["nodelist"][0]["node"]
    assert nodes == [{"ring0_addr": ["rh7-1"]}, {"name": ["rh7-2"], "nodeid": ["2"], "ring0_addr": ["rh7-2.example.com"]}]
    assert "cluster_name" not in parse(render(cluster, "rh7-1", 2))["totem"][0]


def test_extras_are_written_verbatim_in_their_sections() -> None:
    cluster = cluster_from_mapping({
        "cluster_name": "x", "generation": 3,
        "nodes": [{"name": "a", "address": "10.1.0.1"}, {"name": "b", "address": "10.1.0.2", "extra": {"tag": "b"}}],
        "totem": {"extra": {"config_version": 4, "knet_compression_model": "zlib"}},
        "links": [{"number": 0, "knet_link_priority": 5, "extra": {"knet_mtu": "1400"}}],
        "logging": {"extra": {"logger_subsys": [{"subsys": "QUORUM", "debug": "off"}, {"subsys": "CPG", "debug": "on"}]}},
        "extra": {"resources": {"system": {"memory_used": {"recovery": "reboot"}}}},
        "legacy_1x": {"amf": {"mode": "disabled"}},
    })
    parsed = parse(render(cluster, "a", 3))
    assert parsed["totem"][0]["config_version"] == ["4"] and parsed["totem"][0]["knet_compression_model"] == ["zlib"]
    assert parsed["totem"][0]["interface"] == [{"linknumber": ["0"], "knet_link_priority": ["5"], "knet_mtu": ["1400"]}]
    assert parsed["nodelist"][0]["node"][1]["tag"] == ["b"]
    assert [s["subsys"] for s in parsed["logging"][0]["logger_subsys"]] == [["QUORUM"], ["CPG"]]
    assert parsed["resources"] == [{"system": [{"memory_used": [{"recovery": ["reboot"]}]}]}]
    assert "amf" not in parsed  # legacy_1x: written on 1.x only
    one = cluster_from_mapping({**to_parameters(cluster), "generation": 1, "links": [], "totem": {}})
    assert parse(render(one, "a", 1))["amf"] == [{"mode": ["disabled"]}]


def test_generation_1_variants(chapter: Cluster) -> None:
    params = to_parameters(chapter)
    params.update(crypto="on", pacemaker_plugin=False,
                  logging={"to_logfile": True, "debug": True, "logfile": "/var/log/corosync/corosync.log"})
    text = render(cluster_from_mapping(params), "node1", 1)
    totem = parse(text)["totem"][0]
    assert totem["secauth"] == ["on"]
    assert "service" not in parse(text)
    logging = parse(text)["logging"][0]
    assert logging["to_logfile"] == ["yes"] and logging["logfile"] == ["/var/log/corosync/corosync.log"]
    assert logging["debug"] == ["on"]


def test_generation_1_ipv6_fixes_the_node_id(chapter: Cluster) -> None:
    params = to_parameters(chapter)
    params["nodes"][0]["address"], params["nodes"][1]["address"] = "2001:db8::1", "2001:db8::2"
    text = render(cluster_from_mapping(params), "node2", 1)
    assert parse(text)["totem"][0]["nodeid"] == ["2"]
    assert parse(text)["totem"][0]["interface"][0]["bindnetaddr"] == ["2001:db8::2"]


# --- stability and header ------------------------------------------------------------------------


@pytest.mark.parametrize("generation", [1, 2, 3])
def test_output_is_stable_and_has_the_header(chapter: Cluster, generation: int) -> None:
    first = render(chapter, "node1", generation)
    assert first == render(chapter, "node1", generation)
    assert first == render(load_cluster(ROOT / "clusters" / "chapter.yaml"), "node1", generation)
    assert first.endswith("\n") and "\r" not in first
    assert first.splitlines()[0] == (
        f"# Generated by corosync-runbook for cluster chapter, node node1 "
        f"(Corosync {generation}.x). Do not edit by hand: edit the cluster file and re-run."
    )


@pytest.mark.parametrize("source", [None, "papermill parameters", "/elsewhere/prod.yaml", "evil\n}\ntotem {"])
def test_the_same_cluster_renders_the_same_bytes_whoever_loads_it(chapter: Cluster, source: str | None) -> None:
    cluster = cluster_from_mapping(to_parameters(chapter), source=source)
    for generation in (1, 2, 3):
        assert render(cluster, "node2", generation) == render(chapter, "node2", generation)
    assert list(parse(render(cluster, "node1", 3))) == ["totem", "nodelist", "quorum", "logging"]


# --- generation 2 and 3 --------------------------------------------------------------------------


def test_generation_3_for_the_chapter(chapter: Cluster) -> None:
    text = render(chapter, "node1", 3)
    parsed = parse(text)
    assert list(parsed) == ["totem", "nodelist", "quorum", "logging"]
    totem = parsed["totem"][0]
    assert totem["transport"] == ["knet"]
    assert totem["crypto_cipher"] == ["aes256"] and totem["crypto_hash"] == ["sha256"]
    assert totem["link_mode"] == ["passive"] and "rrp_mode" not in totem and "secauth" not in totem
    assert totem["cluster_name"] == ["chapter"]
    assert totem["interface"] == [{"linknumber": ["0"], "mcastport": ["5405"]}]
    assert parsed["nodelist"][0]["node"] == [
        {"name": ["node1"], "nodeid": ["1"], "ring0_addr": ["10.0.66.201"]},
        {"name": ["node2"], "nodeid": ["2"], "ring0_addr": ["10.0.66.202"]},
    ]
    assert parsed["quorum"] == [{"provider": ["corosync_votequorum"], "two_node": ["1"]}]
    for word in ("service", "aisexec", "amf", "memberaddr", "bindnetaddr", "pacemaker"):
        assert word not in text
    # one file for all nodes on 2/3: nothing node-specific but the header
    assert text.splitlines()[1:] == render(chapter, "node2", 3).splitlines()[1:]


def test_generation_3_with_three_nodes_has_no_two_node(lab3: Cluster) -> None:
    parsed = parse(render(lab3, "node3", 3))
    assert parsed["quorum"] == [{"provider": ["corosync_votequorum"]}]
    assert len(parsed["nodelist"][0]["node"]) == 3


def test_generation_3_udpu_has_no_crypto_and_no_link_mode(chapter: Cluster) -> None:
    cluster = cluster_from_mapping({**to_parameters(chapter), "transport": "udpu"})
    totem = parse(render(cluster, "node1", 3))["totem"][0]
    assert totem["transport"] == ["udpu"]
    assert totem["crypto_cipher"] == ["none"] and totem["crypto_hash"] == ["none"]
    assert "link_mode" not in totem


def test_generation_2_for_the_chapter(chapter: Cluster) -> None:
    parsed = parse(render(chapter, "node2", 2))
    totem = parsed["totem"][0]
    assert totem["transport"] == ["udpu"]
    assert totem["secauth"] == ["on"] and totem["crypto_cipher"] == ["aes256"]
    assert totem["rrp_mode"] == ["passive"] and "link_mode" not in totem
    assert totem["interface"] == [{"ringnumber": ["0"], "mcastport": ["5405"]}]
    assert parsed["quorum"][0]["two_node"] == ["1"]
    assert "service" not in parsed and "aisexec" not in parsed and "amf" not in parsed


def test_rrp_mode_none_writes_no_link_mode(chapter: Cluster) -> None:
    cluster = cluster_from_mapping({**to_parameters(chapter), "rrp_mode": "none"})
    assert "link_mode" not in parse(render(cluster, "node1", 3))["totem"][0]
    assert parse(render(cluster, "node1", 2))["totem"][0]["rrp_mode"] == ["none"]


def test_logging_writes_what_is_set_in_a_fixed_order(chapter: Cluster) -> None:
    params = to_parameters(chapter)
    params["logging"] = {"to_logfile": True, "logfile": "/var/log/cs.log", "to_syslog": True, "to_stderr": False,
                         "timestamp": "hires", "debug": "trace"}
    logging = parse(render(cluster_from_mapping(params), "node1", 3))["logging"][0]
    assert list(logging) == ["to_logfile", "logfile", "to_syslog", "to_stderr", "timestamp", "debug"]
    assert logging["logfile"] == ["/var/log/cs.log"] and logging["timestamp"] == ["hires"] and logging["debug"] == ["trace"]
    assert "logfile" not in parse(render(chapter, "node1", 3))["logging"][0]


# --- render errors -------------------------------------------------------------------------------


def test_render_needs_a_generation(chapter: Cluster) -> None:
    with pytest.raises(ClusterFileError) as info:
        render(chapter, "node1")
    assert "generation" in str(info.value) and "detect" in str(info.value)
    assert info.value.exit_code == 2


def test_render_uses_the_clusters_generation(chapter: Cluster) -> None:
    fixed = with_generation(chapter, 2)
    assert render(fixed, "node1") == render(chapter, "node1", 2)


def test_render_unknown_node(chapter: Cluster) -> None:
    with pytest.raises(ClusterFileError, match="node1, node2"):
        render(chapter, "node3", 3)


@pytest.mark.parametrize("generation", [0, 4, True, "3"])
def test_render_bad_generation(chapter: Cluster, generation: Any) -> None:
    with pytest.raises(ClusterFileError, match="generation"):
        render(chapter, "node1", generation)


@pytest.mark.parametrize(
    ("change", "generation", "message"),
    [
        ({"transport": "knet"}, 2, "transport: 'knet' needs Corosync 3"),
        ({"transport": "knet"}, 1, "transport: 'knet' needs Corosync 3"),
        ({"transport": "udp"}, 1, "transport: 'udp' (multicast) on Corosync 1.x"),
        ({"transport": "udpu", "crypto": "on"}, 3, "Corosync 3 cannot encrypt udpu/udp; use transport: knet"),
    ],
)
def test_render_refuses_what_the_generation_cannot_do(
    chapter: Cluster, change: dict[str, Any], generation: int, message: str
) -> None:
    cluster = cluster_from_mapping({**to_parameters(chapter), **change})
    with pytest.raises(ClusterFileError) as info:
        render(cluster, "node1", generation)
    assert message in str(info.value)


# --- round trip: render -> migrate -> render gives the same settings -----------------------------

VARIANTS: dict[str, dict[str, Any]] = {
    "chapter": {},
    "crypto-off-udpu": {"transport": "udpu", "crypto": "off"},
    "ids-port-timings": {
        "nodes": [
            {"name": "alpha", "address": "192.168.1.10", "nodeid": 10},
            {"name": "beta", "address": "192.168.1.20", "nodeid": 7, "role": "primary"},
            {"name": "gamma", "address": "192.168.1.30", "nodeid": 300},
        ],
        "totem": {"token": 3000, "consensus": 3600, "join": 60, "max_messages": 17,
                  "token_retransmits_before_loss_const": 4, "port": 5420},
        "rrp_mode": "active",
        "logging": {"to_logfile": True, "logfile": "/var/log/c.log", "debug": True, "timestamp": False},
    },
    "ipv6": {"nodes": [{"name": "a", "address": "2001:db8::a"}, {"name": "b", "address": "2001:db8::b"}]},
    "rrp-none": {"rrp_mode": "none"},
    "no-plugin": {"pacemaker_plugin": False},
    "two-links-quorum": {
        "nodes": [{"name": "a", "addresses": ["10.2.0.1", "10.3.0.1"]}, {"name": "b", "addresses": ["10.2.0.2", "10.3.0.2"]}],
        "quorum": {"wait_for_all": True, "last_man_standing": True, "last_man_standing_window": 20000,
                   "auto_tie_breaker": True, "auto_tie_breaker_node": "lowest", "expected_votes": 2},
    },
}


@pytest.mark.parametrize("generation", [1, 2, 3])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_round_trip(chapter: Cluster, variant: str, generation: int) -> None:
    cluster = cluster_from_mapping({**to_parameters(chapter), **VARIANTS[variant]})
    for node in cluster.nodes:
        text = render(cluster, node.name, generation)
        assert detect_generation(parse_entries(text))[0] == generation
        output, migration = migrate(text, f"{node.name}.conf")
        again = cluster_from_mapping(yaml.safe_load(output))
        assert differences(settings(text), settings(render(again, again.primary.name, generation))) == []
        # what the model holds comes back as it was
        assert [n.addresses for n in again.nodes] == [n.addresses for n in cluster.nodes]
        if generation > 1:
            assert [n.nodeid for n in again.nodes] == [n.nodeid for n in cluster.nodes]
            assert [n.name for n in again.nodes] == [n.name for n in cluster.nodes]
        for key in ("token", "token_retransmits_before_loss_const", "join", "consensus", "max_messages"):
            assert getattr(again.totem, key) == getattr(cluster.totem, key)
        assert resolve(again, generation).transport == resolve(cluster, generation).transport
        assert resolve(again, generation).crypto == resolve(cluster, generation).crypto
        if generation > 1:
            assert again.quorum.wait_for_all == cluster.quorum.wait_for_all
            assert again.quorum.expected_votes == cluster.quorum.expected_votes


# --- parser --------------------------------------------------------------------------------------


def test_parse_shapes() -> None:
    text = (
        "# comment\n"
        "totem {\n"
        "  version: 2\n"
        "  interface {\n"
        "    member {\n      memberaddr: 10.0.0.1\n    }\n"
        "    member {\n      memberaddr: 10.0.0.2\n    }\n"
        "  }\n"
        "}\n"
        "nodelist {\n  node {\n    ring0_addr: fe80::1:2\n  }\n}\n"
        "  \t\n"
    )
    parsed = parse(text)
    assert parsed == {
        "totem": [{"version": ["2"], "interface": [{"member": [{"memberaddr": ["10.0.0.1"]}, {"memberaddr": ["10.0.0.2"]}]}]}],
        "nodelist": [{"node": [{"ring0_addr": ["fe80::1:2"]}]}],
    }
    assert parse_entries(text)[1] == ("nodelist", [("node", [("ring0_addr", "fe80::1:2")])])


def test_parse_keeps_order_and_repetition_in_entries() -> None:
    entries = parse_entries("a: 1\nb {\n}\na: 2\n")
    assert entries == [("a", "1"), ("b", []), ("a", "2")]
    assert parse("a: 1\nb {\n}\na: 2\n") == {"a": ["1", "2"], "b": [{}]}


def test_parse_accepts_bytes_and_crlf() -> None:
    assert parse(b"totem {\r\n\ttoken: 5000\r\n}\r\n") == {"totem": [{"token": ["5000"]}]}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("totem {\n  token: 1\n", 1, "never closed"),
        ("totem {\n}\n}\n", 3, "without an open section"),
        ("totem {\n  token 5000\n}\n", 2, "cannot read"),
        ("totem { token: 1 }\n", 1, "bad section opening"),
        ("{\n}\n", 1, "bad section opening"),
        (": value\n", 1, "expected 'key: value'"),
        ("a\x00b: 1\n", 1, "control character"),
        ("ok: 1\n\x1b[31m: 2\n", 2, "control character"),
        ("a {\n" * 20 + "}\n" * 20, 17, "nested deeper"),
    ],
)
def test_parse_errors_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigParseError) as info:
        parse(text, "node1:/etc/corosync/corosync.conf")
    assert info.value.line == line
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"node1:/etc/corosync/corosync.conf:{line}: ")
    assert info.value.exit_code == 2


@pytest.mark.parametrize("junk", [b"\xff\xfe\x00garbage", bytes(range(256)), None, 42, ["totem {"]])
def test_parse_garbage_is_a_parse_error(junk: Any) -> None:
    with pytest.raises(ConfigParseError):
        parse(junk)


def test_parse_refuses_huge_input() -> None:
    with pytest.raises(ConfigParseError, match="larger than"):
        parse("a: b\n" * 300_000)


# --- settings: two files compared as Corosync reads them --------------------------------------------


@pytest.mark.parametrize("generation", [1, 2, 3])
def test_generation_is_read_from_the_files_own_keys(chapter: Cluster, lab3: Cluster, generation: int) -> None:
    assert detect_generation(parse_entries(render(chapter, "node1", generation)))[0] == generation
    assert detect_generation(parse_entries(render(lab3, "node2", generation)))[0] == generation
    leftovers = "totem {\n transport: udpu\n}\nnodelist {\n node {\n ring0_addr: 10.0.0.1\n }\n}\namf {\n mode: disabled\n}\n"
    assert detect_generation(parse_entries(leftovers)) == (2, "a nodelist without knet keys")


def test_settings_normalize_only_what_corosync_reads_alike() -> None:
    a = "totem {\n secauth: on\n token: 1\n token: 2\n}\nquorum {\n}\nlogging {\n to_syslog: yes\n}\n"
    b = "# other\nlogging {\n\tto_syslog: true\n}\ntotem {\n token: 2\n}\ntotem {\n secauth: 1\n}\n"
    assert differences(settings(a), settings(b)) == []
    c = "totem {\n secauth: off\n token: 2\n}\nlogging {\n to_syslog: yes\n fileline: off\n}\n"
    assert differences(settings(a), settings(c)) == ["totem.secauth: 1 -> 0", "logging.fileline: (absent) -> off"]


try:
    from hypothesis import given
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test extra
    given = None  # type: ignore[assignment]

if given is not None:
    pieces = st.sampled_from(["totem {", "}", "token: 5", "# c", "", "node {", "a:b:c", "x", "{", ":", "\t", "\x00"])

    @hypothesis_settings(max_examples=300, deadline=None)
    @given(st.one_of(st.text(max_size=200), st.binary(max_size=200), st.lists(pieces, max_size=30).map("\n".join)))
    def test_parse_never_crashes(text: Any) -> None:
        try:
            parsed = parse(text)
        except ConfigParseError:
            return
        settings(text)  # whatever parses, settings can be read from


def test_equivalent_ignores_comments_and_indentation_only(chapter: Cluster) -> None:
    from runbook.conf.parse import equivalent

    from_file = render(chapter, "node1", 3)
    hand_formatted = "# kept by hand\n" + "\n".join("    " + line.strip() for line in from_file.splitlines()[1:]) + "\n"
    assert from_file != hand_formatted and equivalent(from_file, hand_formatted)
    assert equivalent(render(chapter, "node1", 1), GOLDEN_FOR["node1"].read_text())
    assert not equivalent(render(chapter, "node1", 1), GOLDEN_FOR["node2"].read_text())
    assert not equivalent(from_file, "totem {\n")
