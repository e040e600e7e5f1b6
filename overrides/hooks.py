"""mkdocs hooks for the guide: step pages from executed notebooks, and a site that loads nothing remote.

- Before the build: every notebook named in `nav` must be in docs/generated/. They are the outputs of
  a real run and only `make docs` (tools/build_docs.py) puts them there; say so instead of mkdocs'
  generic "not found" warning.
- Step pages: mkdocs-jupyter's HTML carries a MathJax loader (a CDN URL by default, an empty
  `<script src="">` here) and a Mermaid loader that imports from a CDN when a page has a diagram.
  The notebooks have neither math nor diagrams, so both are removed. Under the page's title goes a
  note that says where the outputs come from (the run's date, cluster and nodes, read from the
  notebook's papermill metadata) with a link to download the notebook.
- Every page: the build fails if a page would still fetch a script, stylesheet, font, image or frame
  from another host. Links (`<a href>`) to other sites are fine: they are only followed on a click.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from mkdocs.exceptions import PluginError

GENERATED = "generated/"
BUILD_HINT = "run `make docs` (or `python tools/build_docs.py --from-record RUNDIR` for an existing run record)"

_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_EMPTY_SCRIPT = re.compile(r"<script src=\"\">\s*</script>")
_MODULE_SCRIPTS = re.compile(r"<script type=\"module\">.*?</script>", re.S)
# Elements whose src/href the browser fetches as soon as the page loads.
_FETCHED = re.compile(
    r"<(?P<tag>script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?\b(?:src|href|data)\s*=\s*[\"']?(?P<url>(?:https?:)?//[^\"'\s>]+)",
    re.I,
)
_FIRST_H1_END = re.compile(r"</h1>", re.I)


def _nav_notebooks(nav: Any) -> list[str]:
    found: list[str] = []
    if isinstance(nav, str):
        if nav.endswith(".ipynb"):
            found.append(nav)
    elif isinstance(nav, list):
        for item in nav:
            found += _nav_notebooks(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            found += _nav_notebooks(value)
    return found


def on_config(config: Any, **_: Any) -> Any:
    docs = Path(config["docs_dir"])
    missing = [nb for nb in _nav_notebooks(config["nav"]) if not (docs / nb).is_file()]
    if missing:
        where = docs / GENERATED
        raise PluginError(
            f"the step pages are missing from {where}/ ({', '.join(PurePosixPath(m).name for m in missing)}): "
            f"they are executed notebooks from a real run, not sources; {BUILD_HINT}"
        )
    return config


def _is_step_page(page: Any) -> bool:
    return page.file.src_uri.startswith(GENERATED) and page.file.src_uri.endswith(".ipynb")


def run_facts(notebook_path: str | Path) -> dict[str, str]:
    """Where a step page's outputs come from, from the executed notebook's papermill metadata."""
    data = json.loads(Path(notebook_path).read_text(encoding="utf-8"))
    papermill = data.get("metadata", {}).get("papermill", {}) or {}
    parameters = papermill.get("parameters", {}) or {}
    facts = {"notebook": Path(notebook_path).name}
    started = papermill.get("start_time")
    if started:
        moment = datetime.fromisoformat(str(started)).astimezone(timezone.utc)
        facts["started"] = moment.strftime("%Y-%m-%d %H:%M UTC")
    if papermill.get("duration") is not None:
        facts["seconds"] = f"{float(papermill['duration']):.1f}"
    if parameters.get("cluster_name"):
        facts["cluster"] = str(parameters["cluster_name"])
    nodes = [n for n in parameters.get("nodes") or [] if isinstance(n, dict)]
    if nodes:
        facts["hosts"] = {1: "one lab host", 2: "two lab hosts", 3: "three lab hosts"}.get(len(nodes), f"{len(nodes)} lab hosts")
        facts["nodes"] = ", ".join(f"{n.get('name')} ({n.get('address')})" for n in nodes)
    facts["check"] = "yes" if parameters.get("check") else "no"
    return facts


def provenance_html(facts: dict[str, str]) -> str:
    esc = html.escape
    when = f" on {esc(facts['started'])}" if "started" in facts else ""
    took = f" in {esc(facts['seconds'])} s" if "seconds" in facts else ""
    cluster = f" for cluster <code>{esc(facts['cluster'])}</code>" if "cluster" in facts else ""
    nodes = f" ({esc(facts['nodes'])})" if "nodes" in facts else ""
    mode = " in check mode (nothing was changed)" if facts.get("check") == "yes" else ""
    name = esc(facts["notebook"])
    return (
        '<div class="admonition info runbook-provenance">'
        '<p class="admonition-title">Real output from lab hosts</p>'
        f"<p>This page is the executed notebook <code>{name}</code>: <code>runbook run</code> ran it{when}{took}"
        f"{cluster} against {esc(facts.get('hosts', 'lab hosts'))}{nodes}{mode}. Every output below is as the run recorded it; "
        f'<code>make docs</code> makes this page again. <a href="{name}" download>Download the notebook</a>.</p>'
        "</div>"
    )


def on_page_content(content: str, page: Any, **_: Any) -> str:
    if not _is_step_page(page):
        return content
    # A notebook has no second-level headings to list: give its outputs the table of contents' width.
    hide = page.meta.setdefault("hide", [])
    if "toc" not in hide:
        hide.append("toc")
    content = _MATHJAX.sub("", content)
    content = _EMPTY_SCRIPT.sub("", content)
    content = _MODULE_SCRIPTS.sub(lambda m: "" if "mermaid" in m.group(0) else m.group(0), content)
    note = provenance_html(run_facts(page.file.abs_src_path))
    content, count = _FIRST_H1_END.subn("</h1>" + note, content, count=1)
    if not count:
        content = note + content
    return content


def on_post_page(output: str, page: Any, **_: Any) -> str:
    remote = sorted({f"<{m['tag'].lower()}> {m['url']}" for m in _FETCHED.finditer(output)})
    if remote:
        raise PluginError(
            f"page {page.file.src_uri} would load from the network: {'; '.join(remote)}; "
            "the guide must work with no network (see overrides/hooks.py)"
        )
    return output
