"""What the built guide says about Corosync, read from the site as a reader gets it (issue 26).

Each wrong sentence below was once on a page of the guide; the facts that replaced it were checked
against Corosync's source at the tags the guide names (v1.4.2, v2.4.5, v3.1.7: exec/totemconfig.c,
exec/totemrrp.c, tools/corosync-keygen.c) and firewalld's services/high-availability.xml. None may
come back, on any page or picture of the site. The new parts of the path a newcomer walks (the
firewall step of the Quickstart, the "before you run" box of step 0, the exit codes) must be there.

Some of the sentences were written by the runbook's own generators (runbook/by_hand.py,
runbook/model/reference.py from runbook/model/types.py), whose pages a unit test keeps equal to
their output: those were fixed in the generators.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.docs.conftest import BuiltSite

# Tags after which a reader sees a break: their text must not run into the next element's.
_BLOCK = {
    "p", "div", "li", "td", "th", "tr", "table", "pre", "br", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "section", "article", "summary", "details", "dt", "dd", "text", "title", "nav",
}


class _Text(HTMLParser):
    """The visible text of a page (or an SVG): scripts, styles and permalink marks left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def text_of(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    return re.sub(r"\s+", " ", "".join(parser.parts).replace("¶", " ")).strip()


def page_html(site: BuiltSite, page: str) -> str:
    return (site.path / page / "index.html").read_text(encoding="utf-8")


def site_texts(site: BuiltSite) -> dict[str, str]:
    """Every page's text, and every picture's, by site path."""
    texts = {page or "/": text_of(page_html(site, page)) for page in site.pages}
    for svg in sorted((site.path / "assets" / "diagrams").glob("*.svg")):
        texts[str(svg.relative_to(site.path))] = text_of(svg.read_text(encoding="utf-8"))
    return texts


def where(texts: dict[str, str], phrase: str) -> list[str]:
    needle = phrase.lower()
    return [name for name, text in texts.items() if needle in text.lower()]


@pytest.fixture(scope="module")
def texts(built_site: BuiltSite) -> dict[str, str]:
    return site_texts(built_site)


# (item of the issue, the wrong sentence as a reader reads it, what is true instead)
WRONG = [
    ("1", "none (crypto_cipher/crypto_hash default to none)",
     "2.x with no crypto keys runs aes256/sha1 (secauth defaults to on) and needs the authkey"),
    ("2", "on 3.x with knet, crypto is on by default",
     "Corosync 3's own default is none; the runbook's crypto: auto turns it on"),
    ("2", "on by default with knet", "the key-map picture: whose default it is"),
    ("2", "with traffic encryption on (which is why step 3 matters)", "the runbook's crypto: auto, not 3.x"),
    ("3", "is marked faulty and stays out of use until someone resets it",
     "1.4 and 2.x rings recover by themselves (rrp_autorecovery_check_timeout)"),
    ("3", "stays marked faulty until corosync-cfgtool -r resets it", "1.4 and 2.x rings recover by themselves"),
    ("4", "2.x and 3.x: the chapter's file does not work", "2.4 reads member { memberaddr } with a warning"),
    ("5", "5405 unless set", "an unset knet link N listens on 5405 + N"),
    ("5", "mcastport (5405 when left out", "an unset knet link N listens on 5405 + N"),
    ("7", "opens the whole set (UDP 5404-5412, TCP 2224, 3121, 5403, 9929, 21064)",
     "firewalld's high-availability opens UDP 9929 too"),
    ("10", "keeps the file it replaces as FILE.runbook-YYYYmmddTHHMMSS",
     "backups are FILE.runbook-<UTC>-<run>.bak, and FILE.orig-runbook is kept for ever"),
    ("10", "replaces is kept as FILE.runbook-YYYYmmddTHHMMSS", "the real backup names"),
    ("11", "The same key digest on every node.", "a first run prints only the primary's digest"),
    ("12", "names the node whose key (or crypto_cipher / crypto_hash) differs from this node's",
     "both sides log it, each naming the other"),
    ("13", "in the parameters above", "the published page has no parameters cell"),
    ("13", "even though the text under it mentions .202", "the reader does not have the book"),
    ("ports", "one port receives, the other sends", "udpu binds only mcastport (totemudpu.c)"),
    ("ports", "with udpu or udp, 5404 and 5405", "udpu uses mcastport only"),
    ("6", "interface.knet_link_priority not written (0)", "runbook/cluster_reference.py: 1 on 3.1.7"),
    ("5", "interface.mcastport not written (Corosync: 5405)", "runbook/model/types.py: 5405 + N on 3.x"),
]


def test_the_1x_key_by_hand_reads_urandom_and_says_why(texts: dict[str, str]) -> None:
    """Item 8: 1.x's corosync-keygen blocks on /dev/random for minutes; the block says so."""
    assert "corosync-keygen # reads /dev/random: can wait minutes on an idle node; or: head -c 128 /dev/urandom > /etc/corosync/authkey" in " ".join(texts["by-hand/"].split())


@pytest.mark.parametrize(("item", "phrase", "instead"), WRONG, ids=[f"{i}:{p[:40]}" for i, p, _ in WRONG])
def test_no_page_says_the_wrong_thing(texts: dict[str, str], item: str, phrase: str, instead: str) -> None:
    found = where(texts, phrase)
    assert not found, f"item {item}: {phrase!r} is on {found}; instead: {instead}"


# --- what is right, where a reader looks for it ------------------------------------------------------


def test_the_ports_are_right_per_transport_and_link(texts: dict[str, str]) -> None:
    firewall = texts["firewall/"]
    assert "5405 + N" in firewall, "the firewall page does not say that link N defaults to 5405 + N"
    assert "5403" in firewall and "9929" in firewall
    # 5403 is corosync-qnetd's (TCP); 9929 is booth's: no sentence may give 9929 to qnetd.
    for sentence in re.split(r"(?<=[.;|])\s", firewall):
        if "9929" in sentence and "qnetd" in sentence.lower():
            assert "booth" in sentence.lower(), f"9929 given to qnetd: {sentence!r}"
    assert re.search(r"UDP [^.]*9929", firewall), "firewalld's high-availability service opens UDP 9929 too"


def sections_named(html: str, level: str) -> list[tuple[str, str, str]]:
    """(heading text, text, HTML) up to the next heading of that level, for every heading of that level."""
    pieces = re.split(rf"(<{level}\b[^>]*>.*?</{level}>)", html, flags=re.S)
    return [(text_of(pieces[i]), text_of(pieces[i + 1]), pieces[i + 1]) for i in range(1, len(pieces) - 1, 2)]


def test_the_quickstart_opens_the_firewall_before_the_first_run(built_site: BuiltSite) -> None:
    steps = sections_named(page_html(built_site, "quickstart/"), "h3")
    titles = [title for title, _, _ in steps]
    firewall = [i for i, t in enumerate(titles) if "firewall" in t.lower()]
    first_run = [i for i, (_, body, _) in enumerate(steps) if "runbook run clusters/" in body]
    assert firewall, f"no Quickstart step about the firewall among {titles}"
    assert first_run and firewall[0] < first_run[0], f"the firewall step comes after the first run: {titles}"
    body = steps[firewall[0]][1]
    for command in ("nft add rule", "firewall-cmd", "ufw allow"):
        assert command in body, f"the Quickstart's firewall step does not show {command!r}"
    assert "5405" in body and "5405 + N" in body


def test_step_0_has_a_before_you_run_box_with_the_commands(built_site: BuiltSite) -> None:
    html = page_html(built_site, "generated/00-preflight/")
    boxes = [m for m in re.finditer(r"<blockquote>(.*?)</blockquote>", html, re.S) if text_of(m.group(1)).startswith("Before you run")]
    assert len(boxes) == 1, "step 0 has no (or more than one) 'Before you run' box"
    box = text_of(boxes[0].group(1))
    for command in ("nft add rule", "firewall-cmd", "ufw allow"):
        assert command in box, f"the box does not show {command!r}"
    assert "5405 + N" in box and "UDP 5405" in box
    report = html.find('class="runbook-report"')
    assert report == -1 or boxes[0].start() < report, "the box comes after the step's report"


def test_the_quickstart_lists_every_exit_code_the_runbook_uses(built_site: BuiltSite) -> None:
    from runbook.errors import RunbookError, RunLocked, UsageError
    from runbook.run.runner import EXIT_INTERRUPTED, EXIT_TERMINATED

    sections = {title: html for title, _, html in sections_named(page_html(built_site, "quickstart/"), "h2")}
    assert "Exit codes" in sections, f"no 'Exit codes' section in the Quickstart: {sorted(sections)}"
    listed = {int(code) for code in re.findall(r"<tr>\s*<td>(\d+)</td>", sections["Exit codes"])}
    used = {0, RunbookError.exit_code, UsageError.exit_code, RunLocked.exit_code, EXIT_INTERRUPTED, EXIT_TERMINATED}
    assert used <= listed, f"the Quickstart's exit codes lack {sorted(used - listed)}"


def test_the_security_page_names_the_backups_of_the_key(texts: dict[str, str]) -> None:
    security = texts["security/"]
    from runbook.engine.backup_script import ORIGINAL_SUFFIX

    assert f"authkey{ORIGINAL_SUFFIX}" in security, "the old key kept for ever is not named"
    assert re.search(r"authkey\.runbook-\S*\.bak", security), "the per-replacement backups are not named as they are"


def test_step_5_says_rhel_leaves_corosync_disabled(texts: dict[str, str]) -> None:
    step = texts["generated/05-enable-at-boot/"]
    assert re.search(r"RHEL[^.]*dnf install corosync[^.]*disabled", step), "step 5 does not say RHEL's package leaves the unit disabled"


def test_the_quorum_device_page_shows_the_votes_before_after_and_the_split_from_a_real_run(texts: dict[str, str]) -> None:
    page = texts["quorum-device/"]
    assert re.search(r"Lab hosts on 20\d\d-\d\d-\d\d, Corosync Cluster Engine, version '3\.", page), "no dated real run"
    assert re.search(r"Flags:\s+2Node Quorate", page), "the votes before the device are not shown"
    assert re.search(r"Total votes:\s+3", page) and re.search(r"1\s+1\s+A,V,NMW node1 \(local\)", page), "the votes after"
    assert re.search(r"2\s+1\s+A,NV,NMW node2 \(local\)", page) and re.search(r"0\s+0\s+Qdevice \(votes 1\)", page), "the split"
    assert "PRIVATE KEY" not in page and "BEGIN CERTIFICATE" not in page


def test_step_7_by_hand_gives_the_certificate_order(texts: dict[str, str]) -> None:
    step = texts["generated/07-quorum-device/"]
    order = ["corosync-qnetd-certutil -i", "corosync-qdevice-net-certutil -i -c", "corosync-qdevice-net-certutil -r -n chapter",
             "corosync-qnetd-certutil -s -c", "corosync-qdevice-net-certutil -M -c", "corosync-qdevice-net-certutil -m -c"]
    where = [step.find(command) for command in order]
    assert -1 not in where and where == sorted(where), dict(zip(order, where))


def test_step_5_says_why_one_might_not_start_at_boot(texts: dict[str, str]) -> None:
    step = texts["generated/05-enable-at-boot/"]
    assert "Whether to start at boot at all." in step and re.search(r"fenced[^.]*stay out", step), "no start-at-boot policy on step 5"


def test_the_two_node_split_is_drawn_and_shown_from_a_real_run(texts: dict[str, str]) -> None:
    assert "both halves keep quorum" in texts["assets/diagrams/split.svg"], "the split picture is not drawn"
    page = texts["quorum-device/"]
    split = page[page.index("The split without a device."):page.index("The device added")]
    assert len(re.findall(r"Nodes:\s+1", split)) == 2 and len(re.findall(r"Quorate:\s+Yes", split)) == 2, split[:1500]


def test_after_corosync_shows_crm_mon_from_a_real_run_and_fencing_first(texts: dict[str, str]) -> None:
    page = texts["after-corosync/"]
    assert re.search(r"Lab hosts on 20\d\d-\d\d-\d\d: two booting Debian 12 hosts", page), "no dated real run"
    assert "Online: [ node1 node2 ]" in page, "crm_mon does not show both nodes online"
    assert page.index("Fencing first") < page.index("crm_mon -1"), "fencing does not come first"
    assert "Clusters from Scratch" in page and "RHEL HA guide" in page
    assert re.search(r"would replace /etc/corosync/corosync\.conf", page), "the next run's effect on a hand edit is not shown"
