"""The published guide, as a reader gets it: built from a real run, opened in headless Chromium.

Every page is visited; every link on it is checked (internal ones must answer 200 from the local
server, with their #anchor present; external ones are listed, never fetched); the browser must load
nothing from anywhere but the local server; each step page must show its step's report from the
run; screenshots of the home page and of step 6 are kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

from tests.docs.conftest import ROOT, TEST_LAB, BuiltSite, Server

NOTEBOOKS = ROOT / "notebooks"
GENERATED = ROOT / "docs" / "generated"
ASSETS = ROOT / "docs" / "assets"
STEPS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
NODES = ("node1", "node2")  # clusters/chapter.yaml
OFF_NAV = {"benchmarks/": "papermill-ci/"}  # pages kept out of the reader's navigation -> a page that links them
STATUSES = {"ok", "changed", "unchanged", "skipped"}  # what a successful first run reports per node
# What each step's report says on a first run on fresh lab hosts (its own words, from runbook/steps/).
EXPECTED = {
    "00-preflight": r"ready: .*Debian",
    "01-install": r"Corosync \S+ (is already installed|with apt-get)|installed Corosync",
    "02-corosync-conf": r"/etc/corosync/corosync\.conf",
    "03-authkey": r"authkey|the key from node1",
    "04-cfgtool": r"Corosync 3: not needed|rc\.local",
    "05-enable-at-boot": r"at boot|START=yes",
    "06-start-and-verify": r"sees 2/2 members, quorate",
    "07-quorum-device": r"no quorum device in the cluster file",  # the chapter's cluster has none
}


# --- helpers -------------------------------------------------------------------------------------


def fetch(url: str) -> tuple[int, bytes]:
    assert urlsplit(url).hostname == "127.0.0.1", f"refusing to fetch {url}: only the local server"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only, checked above
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)


def anchors(html: bytes) -> set[str]:
    parser = _Ids()
    parser.feed(html.decode("utf-8", "replace"))
    return parser.ids


def open_page(driver, url: str) -> None:  # type: ignore[no-untyped-def]
    driver.get(url)
    driver.execute_script("return document.readyState")  # get() has waited for the load event


def requested_urls(driver) -> list[str]:  # type: ignore[no-untyped-def]
    """Every URL the browser asked for since the last call (Chromium's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def console_errors(driver) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def screenshot(driver, path: Path) -> Path:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
    assert path.stat().st_size > 10_000, f"{path} is suspiciously small: an empty page?"
    return path


def copy_if_changed(source: Path, target: Path) -> None:
    if not target.exists() or target.read_bytes() != source.read_bytes():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


# --- the build -----------------------------------------------------------------------------------


def test_build_is_strict_and_quiet(built_site: BuiltSite) -> None:
    """mkdocs build --strict passed, and said nothing but INFO (build_docs shows every other line)."""
    assert "build_docs: site built:" in built_site.log
    # What mkdocs said: the lines after build_docs starts it (before that, the run's own report, whose
    # notes may rightly warn the reader, e.g. of a 2-node cluster without a quorum device).
    mkdocs_said = built_site.log.partition("build_docs: building the site:")[2]
    assert mkdocs_said, "the build log does not show mkdocs starting"
    noisy = [line for line in mkdocs_said.splitlines() if re.search(r"\b(WARNING|ERROR)\b", line)]
    assert not noisy, "the build warned:\n" + "\n".join(noisy)
    assert "waiting" in built_site.log or built_site.seconds < 600, "the build took over 10 minutes without waiting for a lab"


def test_published_notebooks_are_the_run_and_name_no_machine_path(built_site: BuiltSite) -> None:
    published = sorted(p.stem for p in GENERATED.glob("*.ipynb"))
    assert published == STEPS, f"docs/generated/ has {published}, notebooks/ has {STEPS}"
    for stem in STEPS:
        text = (GENERATED / f"{stem}.ipynb").read_text(encoding="utf-8")
        notebook = json.loads(text)
        assert notebook["metadata"]["papermill"]["parameters"]["cluster_name"] == "chapter"
        assert notebook["metadata"]["papermill"]["input_path"] == f"notebooks/{stem}.ipynb"
        outputs = [o for c in notebook["cells"] for o in c.get("outputs", [])]
        assert outputs, f"{stem}: the published notebook has no outputs"
        assert not [o for o in outputs if o.get("output_type") == "error"], f"{stem}: an error output"
        for leak in (str(ROOT) + "/", "runbook-docs-run-", "/var/lib/corosync-runbook/labs/"):
            assert leak not in text, f"{stem}: the published notebook names {leak!r}"
        # The sources stay output-free: the executed copies are build output only.
        source = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8"))
        assert not [c for c in source["cells"] if c.get("outputs")], f"notebooks/{stem}.ipynb has outputs"


def test_the_build_took_its_lab_down(built_site: BuiltSite) -> None:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"rb-{TEST_LAB}-" not in netns


def test_nothing_in_the_site_loads_from_the_network(built_site: BuiltSite) -> None:
    fetched = re.compile(r"<(script|link|img|iframe|source)\b[^>]*\b(src|href)=\"(https?:)?//", re.I)
    offenders = [
        str(p.relative_to(built_site.path)) for p in built_site.path.rglob("*.html") if fetched.search(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, f"pages that refer to a remote script/style/font/image: {offenders}"


# --- in the browser ------------------------------------------------------------------------------


def test_every_page_renders_and_every_link_resolves(built_site: BuiltSite, server: Server, browser, report) -> None:  # type: ignore[no-untyped-def]
    prose = {"" if p.stem == "index" else f"{p.stem}/" for p in (ROOT / "docs").glob("*.md")}
    assert set(built_site.pages) == prose | {f"generated/{s}/" for s in STEPS}, built_site.pages
    open_page(browser, server.url(""))
    nav = {
        urldefrag(a.get_property("href"))[0]
        for a in browser.find_elements("css selector", "nav.md-nav--primary a.md-nav__link[href]")
    }
    expected = {server.url(p) for p in built_site.pages if p not in OFF_NAV}
    assert expected <= nav, f"pages not in the navigation: {sorted(expected - nav)}"
    assert not {server.url(p) for p in OFF_NAV} & nav, f"in the reader's navigation, though meant to be out of it: {OFF_NAV}"

    links: dict[str, set[str]] = {}  # link -> pages it is on
    remote_requests: list[str] = []
    errors: list[str] = []
    requested_urls(browser)  # drop what the first visit logged
    console_errors(browser)
    for page in built_site.pages:
        url = server.url(page)
        open_page(browser, url)
        title = browser.title
        heading = browser.find_elements("css selector", "article h1")
        assert heading and heading[0].text.strip(), f"{url}: no h1"
        assert "404" not in title, f"{url}: title {title!r}"
        for a in browser.find_elements("css selector", "a[href]"):
            href = a.get_property("href")
            if href and not href.startswith(("javascript:", "mailto:")):
                links.setdefault(href, set()).add(page or "/")
        remote_requests += [u for u in requested_urls(browser) if not u.startswith((server.base, "data:", "blob:"))]
        errors += [f"{page or '/'}: {e}" for e in console_errors(browser)]

    assert not remote_requests, f"the browser asked for something beyond the local site: {sorted(set(remote_requests))}"
    assert not errors, "console errors:\n" + "\n".join(errors)

    broken, external, checked = [], [], {}
    for href, pages in sorted(links.items()):
        if not href.startswith(server.base):
            external.append(f"{href}   (on {', '.join(sorted(pages))})")
            continue
        target, fragment = urldefrag(href)
        if target not in checked:
            checked[target] = fetch(target)
        status, body = checked[target]
        if status != 200:
            broken.append(f"{href}: HTTP {status} (on {', '.join(sorted(pages))})")
        elif fragment and target.endswith("/") and fragment not in anchors(body):
            broken.append(f"{href}: no #{fragment} on that page (on {', '.join(sorted(pages))})")
    (built_site.out / "external-links.txt").write_text("\n".join(external) + "\n")
    for page, linked_from in OFF_NAV.items():
        assert linked_from in links.get(server.url(page), set()), f"{page} is out of the navigation and not linked from {linked_from}"
    report["pages"] = f"{len(built_site.pages)} visited, {len(checked)} internal URLs checked, {len(external)} external links listed (not fetched)"
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("stem", STEPS)
def test_step_page_shows_the_runs_report(stem: str, server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    open_page(browser, server.url(f"generated/{stem}/"))
    reports = browser.find_elements("css selector", f'div.runbook-report[data-step="{stem}"]')
    assert len(reports) == 1, f"{stem}: {len(reports)} report divs for the step"
    report = reports[0]
    assert report.is_displayed()
    rows = report.find_elements("css selector", "table:not(.runbook-membership):not(.runbook-links):not(.runbook-matrix-grid) > tbody > tr")
    seen = {}
    for row in rows:
        cells = row.find_elements("css selector", ":scope > td")
        seen[cells[0].text.strip()] = cells[1].text.strip().lower()
    assert set(seen) == set(NODES), f"{stem}: report rows for {sorted(seen)}"
    assert set(seen.values()) <= STATUSES, f"{stem}: statuses {seen}"
    text = report.get_attribute("textContent")
    assert re.search(EXPECTED[stem], text), f"{stem}: the report does not say {EXPECTED[stem]!r}:\n{text[:2000]}"
    if stem == "00-preflight":  # every pair's link, proved before anything changed: row sends, column receives
        grid = report.find_elements("css selector", "table.runbook-matrix-grid > tbody > tr")
        cells = {row.find_elements("css selector", ":scope > th")[0].text.strip(): [c.text.strip() for c in row.find_elements("css selector", ":scope > td")]
                 for row in grid}
        assert set(cells) == set(NODES), f"link matrix rows for {sorted(cells)}"
        assert all(c in ("ok", "\u2014") for row in cells.values() for c in row), f"link matrix: {cells}"
    if stem == "06-start-and-verify":  # each node's links, as corosync-cfgtool saw them
        links = report.find_elements("css selector", "table.runbook-links > tbody > tr")
        states = {row.find_elements("css selector", ":scope > td")[0].text.strip(): row.text for row in links}
        assert set(states) == set(NODES), f"link rows for {sorted(states)}"
        assert all("up" in row.lower() and "down" not in row.lower() for row in states.values()), states
    page_text = browser.find_element("css selector", "article").get_attribute("textContent")
    assert "Traceback" not in page_text
    # Where the outputs come from, and the notebook to download (the executed one, as published).
    note = browser.find_element("css selector", ".runbook-provenance").text
    assert "chapter" in note and "10.0.66.201" in note
    downloads = {a.get_property("href") for a in browser.find_elements("css selector", f'a[download][href$="{stem}.ipynb"]')}
    assert downloads == {server.url(f"generated/{stem}/{stem}.ipynb")}, downloads
    status, body = fetch(downloads.pop())
    assert status == 200
    assert json.loads(body) == json.loads((GENERATED / f"{stem}.ipynb").read_text(encoding="utf-8"))


# What a first run on fresh hosts does on every node, step by step (the other steps change nothing
# there: Debian's package enables Corosync at boot, and the rc.local line is for 1.x/2.x), and a line
# of the "by hand" block each such step must show, from the same plan.
CHANGING = {
    "01-install": "apt-get install corosync",
    "02-corosync-conf": "chmod 644 /etc/corosync/corosync.conf",
    "03-authkey": "chmod 400 /etc/corosync/authkey",
    "06-start-and-verify": "systemctl restart corosync",
}


@pytest.mark.parametrize("stem", [s for s in STEPS if not s.startswith("00-")])
def test_step_page_shows_each_nodes_commands_and_the_by_hand_box(stem: str, server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    open_page(browser, server.url(f"generated/{stem}/"))
    report = browser.find_element("css selector", f'div.runbook-report[data-step="{stem}"]')
    for node in NODES:
        blocks = report.find_elements("css selector", f'.runbook-commands[data-node="{node}"]')
        assert len(blocks) == 1 and blocks[0].is_displayed(), f"{stem}: no commands shown for {node}"
        items = blocks[0].find_elements("css selector", "li")
        if stem in CHANGING:
            ran = [li for li in items if li.get_attribute("data-status") == "done"]
            assert ran, f"{stem}: {node} shows no command that ran: {blocks[0].text}"
            for li in ran:
                command = li.find_element("css selector", "code.runbook-command").text
                assert command.startswith("$ ") and len(command) > 4 and "exit 0" in li.text, li.text
        else:
            assert [li.get_attribute("data-status") for li in items] == ["none"], blocks[0].text
            assert "no command needed" in items[0].text
    if stem in CHANGING:  # this run's own commands, as an operator would type them
        typed = report.find_element("css selector", ".runbook-by-hand pre").get_attribute("textContent")
        assert CHANGING[stem] in typed and all(f"# on {node}" in typed for node in NODES), typed
    article = browser.find_element("css selector", "article").get_attribute("textContent")
    assert "By hand." in article and "On the chapter's Corosync 1.x (Ubuntu 12.04):" in article, f"{stem}: no by-hand box"
    if stem == "02-corosync-conf":  # each node's whole file, as written, shown open
        for node in NODES:
            shown = report.find_element("css selector", f'.runbook-file[data-node="{node}"][data-path="/etc/corosync/corosync.conf"]')
            assert shown.is_displayed() and shown.get_attribute("open") is not None
            text = shown.find_element("css selector", "pre").text
            assert text.count("totem {") == 1 and "nodelist {" in text and f"name: {node}" in text and "quorum {" in text, text


def test_verify_page_shows_the_membership(built_site: BuiltSite, server: Server, browser, report) -> None:  # type: ignore[no-untyped-def]
    open_page(browser, server.url("generated/06-start-and-verify/"))
    table = browser.find_element("css selector", 'div.runbook-report[data-step="06-start-and-verify"] table.runbook-membership')
    header = [th.text.strip().lower() for th in table.find_elements("css selector", "thead th")]
    rows = {}
    for tr in table.find_elements("css selector", "tbody tr"):
        cells = [td.text.strip() for td in tr.find_elements("css selector", "td")]
        rows[cells[0]] = dict(zip(header, cells))
    assert set(rows) == set(NODES), rows
    for node, row in rows.items():
        assert row["quorate"] == "Yes", (node, row)
        assert row["members"] == "2/2", (node, row)
        assert "node1" in row["member list"] and "node2" in row["member list"], (node, row)
        assert "Quorate" in row["flags"] and "2Node" in row["flags"], (node, row)
    assert len({row["ring id"] for row in rows.values()}) == 1, f"the nodes see different rings: {rows}"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", table)
    time.sleep(0.5)  # the header swaps the site name for the page title as the page scrolls: let it finish
    shot = screenshot(browser, built_site.out / "screenshots" / "06-start-and-verify.png")
    report["screenshot (step 6)"] = str(shot)


def test_home_page_screenshot(built_site: BuiltSite, server: Server, browser, report) -> None:  # type: ignore[no-untyped-def]
    open_page(browser, server.url(""))
    assert "Corosync setup runbook" in browser.title
    assert browser.find_element("css selector", "article h1").text.strip() == "Corosync setup runbook"
    shot = screenshot(browser, built_site.out / "screenshots" / "home.png")
    report["screenshot (home)"] = str(shot)
    if os.environ.get("RUNBOOK_UPDATE_ASSETS"):  # `make screenshots`: a plain test run changes no tracked file
        copy_if_changed(shot, ASSETS / "guide-home.png")  # the README's picture of the guide
        report["screenshot (home)"] += " (copied to docs/assets/guide-home.png)"


def test_dark_mode_toggle_and_search_work_offline(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, server.url(""))
    def toggle():  # type: ignore[no-untyped-def]
        labels = browser.find_elements("css selector", "form[data-md-component=palette] label")
        shown = [label for label in labels if label.is_displayed()]
        assert len(shown) == 1, f"{len(shown)} visible palette toggles"
        shown[0].click()

    def scheme() -> str:
        return browser.find_element("css selector", "body").get_attribute("data-md-color-scheme")

    before = scheme()
    toggle()
    WebDriverWait(browser, 10).until(lambda d: scheme() != before)
    assert {before, scheme()} == {"default", "slate"}
    toggle()  # and back
    WebDriverWait(browser, 10).until(lambda d: scheme() == before)

    box = browser.find_element("css selector", "input.md-search__input")
    assert box.is_displayed()
    box.click()
    box.send_keys("authkey")
    WebDriverWait(browser, 20).until(lambda d: d.find_elements("css selector", "li.md-search-result__item"))
    hits = [a.get_attribute("href") for a in browser.find_elements("css selector", "li.md-search-result__item a")]
    assert any("/security/" in h for h in hits), hits


# --- what a reader runs --------------------------------------------------------------------------


def executed_html(notebook: dict) -> str:  # type: ignore[type-arg]
    """Every HTML and text output of an executed notebook, joined."""
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            parts.append("".join(data.get("text/html", "")) + "".join(data.get("text/plain", "")) + "".join(output.get("text", "")))
    return "\n".join(parts)


def test_a_downloaded_notebook_runs_with_what_its_reader_sets(server: Server, chapter_lab: str, docs_out: Path) -> None:
    """The trap: a reader downloads step 0, sets `check = True` in its first code cell, runs it."""
    status, body = fetch(server.url("generated/00-preflight/00-preflight.ipynb"))
    assert status == 200
    notebook = json.loads(body)
    first = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    assert "parameters" in first["metadata"].get("tags", []), "the first code cell is not the parameters cell"
    source = "".join(first["source"])
    assert "check: bool = False" in source and "10.0.66.201" in source
    first["source"] = source.replace("check: bool = False", "check: bool = True")
    work = docs_out / "reader"
    work.mkdir(exist_ok=True)
    downloaded, executed = work / "00-preflight.ipynb", work / "00-preflight.out.ipynb"
    downloaded.write_text(json.dumps(notebook), encoding="utf-8")
    # As a reader runs it: papermill with no parameters, from a directory of their own.
    result = subprocess.run(
        [str(Path(sys.executable)), "-m", "papermill", str(downloaded), str(executed), "--cwd", str(work)],
        env=dict(os.environ, RUNBOOK_LAB_ONLY="1"), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ran = json.loads(executed.read_text(encoding="utf-8"))
    assert not [c for c in ran["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    text = executed_html(ran)
    assert 'data-step="00-preflight"' in text, text[-2000:]
    assert "check mode: nothing was changed" in text, f"the reader's check = True did not run in check mode:\n{text[-3000:]}"
    assert "ready: " in text and "10.0.66.201" in text


# --- step pages as a reader sees them: layout, colours, pictures ------------------------------------

PHONE, DESKTOP = 390, 1280
SCHEMES = ("default", "slate")  # mkdocs-material's light and dark palettes
ALL_STATUSES = ("ok", "changed", "unchanged", "skipped", "would-change", "failed")
DIAGRAMS = {"cluster", "steps", "keymap"}


def set_view(driver, width: int, scheme: str, height: int = 900) -> None:  # type: ignore[no-untyped-def]
    driver.set_window_size(width, height)
    driver.execute_script("document.body.setAttribute('data-md-color-scheme', arguments[0])", scheme)


def _rgb(css: str) -> tuple[float, float, float, float]:
    numbers = [float(x) for x in re.findall(r"[\d.]+", css)]
    return (numbers + [1.0])[:4] if len(numbers) >= 3 else (0.0, 0.0, 0.0, 0.0)


def contrast(fg: str, bg: str) -> float:
    """WCAG 2 contrast ratio of two opaque CSS rgb() colours."""
    def luminance(css: str) -> float:
        r, g, b, _ = _rgb(css)
        def channel(c: float) -> float:
            c /= 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    high, low = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# The colour of each status word and of the first opaque background behind it, as the browser paints them.
_STATUS_COLOURS = """
const report = document.querySelector('.runbook-report');
const probe = document.createElement('p');
probe.id = 'status-probe';
for (const s of arguments[0]) {
  const w = document.createElement('strong');
  w.className = 'runbook-status runbook-status--' + s; w.textContent = s; probe.appendChild(w);
}
report.appendChild(probe);
const out = [];
const words = [...document.querySelectorAll('.runbook-report table:not(.runbook-membership) > tbody > tr > td:nth-child(2) strong')];
for (const w of words.concat([...probe.children])) {
  let e = w, bg = 'rgba(0, 0, 0, 0)';
  while (e) { const b = getComputedStyle(e).backgroundColor; if (!/rgba\\(.*, 0\\)$/.test(b) && b !== 'transparent') { bg = b; break; } e = e.parentElement; }
  out.push([w.textContent.trim(), getComputedStyle(w).color, bg === 'rgba(0, 0, 0, 0)' ? 'rgb(255, 255, 255)' : bg, w.closest('#status-probe') ? 'probe' : 'run']);
}
probe.remove();
return out;
"""


# Status words of the report that a reader cannot see without scrolling something sideways.
_OFF_SCREEN = """
const out = [];
for (const w of document.querySelectorAll('.runbook-report table:not(.runbook-membership) > tbody > tr > td:nth-child(2) strong')) {
  window.scrollTo(0, w.getBoundingClientRect().top + window.scrollY - window.innerHeight / 2);
  const r = w.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (r.right > document.documentElement.clientWidth || !(hit === w || w.contains(hit))) out.push(w.textContent + ' at x=' + Math.round(r.left));
}
return out;
"""


@pytest.mark.parametrize("stem", STEPS)
def test_step_page_reads_well(stem: str, server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    """No parameter cell, status words at 4.5:1 in both palettes, no sideways scrolling of the page at 390 px."""
    url = server.url(f"generated/{stem}/")
    set_view(browser, DESKTOP, "default")
    open_page(browser, url)
    article = browser.find_element("css selector", "article").get_attribute("textContent")
    for parameter_line in ("cluster_name: str =", "check: bool =", "record_dir:", "# Parameters"):
        assert parameter_line not in article, f"{stem}: the page shows a parameter cell ({parameter_line!r})"
    assert not browser.find_elements("css selector", ".celltag_parameters, .celltag_injected-parameters")
    box = browser.find_element("css selector", ".runbook-run-yourself").text
    assert f"papermill notebooks/{stem}.ipynb" in box and "make notebook" in box, box

    for scheme in SCHEMES:
        set_view(browser, DESKTOP, scheme)
        low = []
        measured = browser.execute_script(_STATUS_COLOURS, list(ALL_STATUSES))
        assert [m for m in measured if m[3] == "run"], f"{stem}: no status word found in the report"
        for word, fg, bg, where in measured:
            ratio = contrast(fg, bg)
            if ratio < 4.5:
                low.append(f"{word} ({where}): {fg} on {bg} = {ratio:.2f}:1")
        assert not low, f"{stem}, {scheme}: status words below 4.5:1: {low}"

    for scheme in SCHEMES:
        set_view(browser, PHONE, scheme, 844)
        open_page(browser, url)
        widths = browser.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"{stem} at {PHONE} px ({scheme}): the page scrolls sideways ({widths[0]} > {widths[1]} px)"
        hidden = browser.execute_script(_OFF_SCREEN)
        assert not hidden, f"{stem} at {PHONE} px: status words not on screen without scrolling sideways: {hidden}"
    set_view(browser, DESKTOP, "default")


def test_step_6_shows_the_membership_lines_whole(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    """corosync-quorumtool -s as each node printed it: Quorum, Flags and the members, open and not cut short."""
    for width in (DESKTOP, PHONE):
        set_view(browser, width, "default")
        open_page(browser, server.url("generated/06-start-and-verify/"))
        outputs = [p for p in browser.find_elements("css selector", ".runbook-report details pre") if "corosync-quorumtool -s" in p.get_attribute("textContent")]
        assert len(outputs) == len(NODES), f"{len(outputs)} outputs of corosync-quorumtool -s at {width} px"
        for pre in outputs:
            assert pre.is_displayed(), f"the output is folded away at {width} px"
            text = pre.text  # what is rendered, not the DOM text
            for line in ("Quorate:          Yes", "Quorum:", "Flags:            2Node Quorate", "Membership information", "node1", "node2"):
                assert line in text, f"{line!r} not shown at {width} px:\n{text}"
            inner, shown = browser.execute_script("return [arguments[0].scrollHeight, arguments[0].clientHeight]", pre)
            assert inner <= shown + 1, f"at {width} px the output scrolls inside itself ({inner} > {shown} px): lines are hidden"
    set_view(browser, DESKTOP, "default")


@pytest.mark.parametrize("page", ["", "concepts/"])
def test_pictures_are_drawn_and_served_by_the_site(page: str, server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    open_page(browser, server.url(page))
    images = browser.find_elements("css selector", "article img[src*='assets/diagrams/']")
    assert images, f"{page or '/'}: no picture"
    names = set()
    for img in images:
        src = img.get_property("src")
        assert src.startswith(server.base), f"{src}: not from the site itself"
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100, f"{src} did not load"
        status, body = fetch(src)
        assert status == 200 and b"<svg" in body and b"http://" not in body.replace(b"http://www.w3.org/", b""), src
        names.add(Path(urlsplit(src).path).stem)
        assert img.get_attribute("alt"), f"{src}: no alt text"
    if page == "concepts/":
        assert names >= DIAGRAMS, f"the concepts page draws {sorted(names)}, not {sorted(DIAGRAMS)}"


SHOTS = [(stem, width, scheme) for stem in ("02-corosync-conf", "06-start-and-verify") for width in (DESKTOP, PHONE) for scheme in SCHEMES]


def test_step_screenshots(built_site: BuiltSite, server: Server, browser, report) -> None:  # type: ignore[no-untyped-def]
    """Steps 2 and 6 at 1280 and 390 px, light and dark, scrolled to the report; `make screenshots` keeps them."""
    taken = []
    for stem, width, scheme in SHOTS:
        set_view(browser, width, scheme, 900 if width == DESKTOP else 844)
        open_page(browser, server.url(f"generated/{stem}/"))
        browser.execute_script("document.body.setAttribute('data-md-color-scheme', arguments[0])", scheme)
        target = browser.find_element("css selector", ".runbook-report")
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -64)", target)
        time.sleep(0.5)  # the header swaps the site name for the page title as the page scrolls
        name = f"step{stem[:2]}-{width}-{'dark' if scheme == 'slate' else 'light'}.png"
        taken.append(screenshot(browser, built_site.out / "screenshots" / name))
    set_view(browser, DESKTOP, "default")
    report["screenshots (steps 2 and 6)"] = str(built_site.out / "screenshots")
    if os.environ.get("RUNBOOK_UPDATE_ASSETS"):  # `make screenshots`: a plain test run changes no tracked file
        for shot in taken:
            copy_if_changed(shot, ASSETS / "screenshots" / shot.name)
        report["screenshots (steps 2 and 6)"] += f" (copied to {ASSETS / 'screenshots'})"
