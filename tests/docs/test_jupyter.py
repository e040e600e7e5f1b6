"""Step 0 in JupyterLab, as a reader runs it: `make notebook`'s server, headless Chromium, lab hosts.

JupyterLab is started by tools/notebook_server.py (what `make notebook` runs) against lab hosts at the
chapter's addresses. The test opens the printed URL, adds `check = True` at the end of the first code
cell as a reader would, runs all cells from the Run menu and waits for the step's report in the page.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.docs.conftest import ROOT

SERVER = ROOT / "tools" / "notebook_server.py"
STARTUP = 300  # JupyterLab's first start on a busy 2-core machine
RUN = 300  # the kernel's start and step 0 against two hosts


def _first_url(proc: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"notebook_server printed no URL within {timeout}s: {seen}") from None
        if line == "":
            raise AssertionError(f"notebook_server ended (exit {proc.wait()}) without a URL: {seen}")
        seen.append(line.rstrip())
        if line.strip().startswith("http://127.0.0.1:"):
            return line.strip()


def test_jupyterlab_runs_step_0_in_check_mode(chapter_lab: str, browser, docs_out: Path, report) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    workdir = docs_out / "jupyter"
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--lab", chapter_lab, "--port", "0", "--dir", str(workdir)],
        cwd=ROOT, env=dict(os.environ, RUNBOOK_LAB_ONLY="1"), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        url = _first_url(proc, STARTUP)
        assert "token=" in url and url.startswith("http://127.0.0.1:"), url
        browser.set_window_size(1280, 900)
        browser.get(url)
        wait = WebDriverWait(browser, STARTUP)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .cm-content")) >= 3)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")
                   or "Idle" in d.find_element(By.CSS_SELECTOR, "body").text)

        # The reader's edit: a line at the end of the first code cell (the parameters cell).
        editor = browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .cm-content")[0]
        editor.click()
        editor.send_keys(Keys.CONTROL, Keys.END)
        editor.send_keys(Keys.ENTER, "check = True")
        wait.until(lambda d: "check = True" in d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .cm-content")[0].text)

        # Run > Run All Cells
        menu = next(e for e in browser.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel") if e.text.strip() == "Run")
        menu.click()
        def run_all():  # type: ignore[no-untyped-def]
            return [e for e in browser.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-itemLabel") if e.text.strip() == "Run All Cells"]

        WebDriverWait(browser, 30).until(lambda d: run_all())
        run_all()[0].click()

        selector = ".jp-OutputArea-output .runbook-report[data-step='00-preflight']"
        WebDriverWait(browser, RUN).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, selector) or d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        )
        errors = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")]
        reports = browser.find_elements(By.CSS_SELECTOR, selector)
        assert reports, f"no report of step 0 in the page; errors: {errors}"
        text = reports[0].text
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", reports[0])
        shot = docs_out / "screenshots" / "jupyterlab-00-preflight.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(shot))
        report["screenshot (JupyterLab)"] = str(shot)
        assert "check mode: nothing was changed" in text, text
        assert "node1" in text and "node2" in text and "ready" in text, text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
