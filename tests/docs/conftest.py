"""The built guide, served on 127.0.0.1 and opened in headless Chromium.

The site is built once per session by tools/build_docs.py, which runs every step notebook against real
lab hosts (lab `ptdocs`, at the chapter's addresses) and takes them down again: about a minute, more
when another lab holds the chapter's subnet (the build waits for it). Like the lab tests, these fail
(not skip) where the lab or Chromium is missing; RUNBOOK_SKIP_LAB=1 skips them on purpose.

The test's output (build log, screenshots, the list of external links) goes to a pytest temporary
directory, printed at the end of the run.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "build_docs.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TEST_LAB = "ptdocs"
BUILD_TIMEOUT = 1200  # the build waits up to 300 s for the chapter's subnet, then runs for about a minute

REPORT: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if REPORT:
        terminalreporter.section("the guide (tests/docs)")
        for key, value in REPORT.items():
            terminalreporter.write_line(f"{key}: {value}")


@dataclass
class BuiltSite:
    path: Path
    log: str
    seconds: float
    out: Path  # the test's output dir
    pages: list[str] = field(default_factory=list)  # site-relative URLs of every page, "" = home


@pytest.fixture(scope="session")
def report() -> dict[str, str]:
    """Lines for the end-of-run summary (a fixture: test modules may import this file a second time)."""
    return REPORT


@pytest.fixture(scope="session")
def docs_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs-site")
    REPORT["output"] = str(out)
    return out


def _test_lab_leftovers() -> list[str]:
    from runbook.lab import netns, state

    found = [ns for ns in netns.netns_list() if f"rb-{TEST_LAB}-" in ns]  # in a lab world: w<world>-rb-...
    if state.LabState.load(TEST_LAB) is not None:
        found.append(f"lab state {state.labs_root() / TEST_LAB}")
    if netns.link_exists(f"rb-{TEST_LAB}"):
        found.append(f"bridge rb-{TEST_LAB}")
    return found


@pytest.fixture(scope="session")
def built_site(docs_out: Path) -> BuiltSite:
    from runbook.errors import LabError
    from runbook.lab import netns, up

    try:
        netns.require_lab_support()
    except LabError as exc:
        pytest.fail(f"the guide is built from a run on lab hosts, and the lab cannot work here: {exc}")
    up.down(TEST_LAB)  # what a crashed earlier run of this test left
    site = docs_out / "site"
    log_path = docs_out / "build.log"
    env = dict(os.environ, RUNBOOK_LAB_ONLY="1")
    started = time.monotonic()
    with open(log_path, "w") as log:
        try:
            result = subprocess.run(
                [sys.executable, str(BUILD), "--site", str(site), "--lab", TEST_LAB],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            up.down(TEST_LAB)
            pytest.fail(f"tools/build_docs.py did not finish within {BUILD_TIMEOUT}s; log: {log_path}")
    seconds = time.monotonic() - started
    text = log_path.read_text()
    REPORT["build"] = f"{seconds:.0f}s (tools/build_docs.py: lab up, runbook run, mkdocs build --strict); log {log_path}"
    leftovers = _test_lab_leftovers()
    if leftovers:
        up.down(TEST_LAB)
    assert result.returncode == 0, f"tools/build_docs.py failed (exit {result.returncode}):\n" + "\n".join(text.splitlines()[-40:])
    assert not leftovers, f"the build left lab '{TEST_LAB}' behind: {leftovers}"
    pages = sorted(
        "" if p.parent == site else p.parent.relative_to(site).as_posix() + "/"
        for p in site.rglob("index.html")
        if not p.relative_to(site).as_posix().startswith(("assets/", "search/"))
    )
    return BuiltSite(path=site, log=text, seconds=seconds, out=docs_out, pages=pages)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT/
    root: Path

    def url(self, page: str) -> str:
        return self.base + page


@pytest.fixture(scope="session")
def server(built_site: BuiltSite) -> Iterator[Server]:
    """The built site over HTTP on 127.0.0.1 at a free port (file:// would hide broken directory links)."""
    handler = functools.partial(_QuietHandler, directory=str(built_site.path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="docs-http", daemon=True)
    thread.start()
    try:
        yield Server(base=f"http://127.0.0.1:{httpd.server_address[1]}/", root=built_site.path)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser(docs_out: Path, server: Server) -> Iterator[object]:
    """Headless Chromium through chromedriver (Debian's packages), cut off from every host but 127.0.0.1."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install chromium chromium-driver (make docs-deps)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = docs_out / "chromium-profile"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
        # Belt and braces: no name resolves, so nothing could leave the machine even if a page tried.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(docs_out / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


READER_LAB = "ptnb"  # lab hosts at the chapter's addresses for what a reader runs: a downloaded notebook, JupyterLab


@pytest.fixture(scope="module")
def chapter_lab(built_site: BuiltSite) -> Iterator[str]:
    """Fresh lab hosts at the chapter's addresses, after the build has taken its own lab down.

    Per module, not per session: the lab holds the chapter's subnet, which the lab tests after
    these need for labs of their own."""
    from runbook.lab import up
    from runbook.model.load import load_cluster

    cluster = load_cluster(str(ROOT / "clusters" / "chapter.yaml"))
    up.down(READER_LAB)
    up.up(READER_LAB, [(n.name, n.address) for n in cluster.nodes])
    try:
        yield READER_LAB
    finally:
        up.down(READER_LAB)
