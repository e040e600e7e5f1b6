"""mkdocs hooks for the guide: step pages from executed notebooks, and a site that loads nothing remote.

- Before the build: every notebook named in `nav` must be in docs/generated/. They are the outputs of
  a real run and only `make docs` (tools/build_docs.py) puts them there; say so instead of mkdocs'
  generic "not found" warning.
- Step pages: mkdocs-jupyter's HTML carries a MathJax loader (a CDN URL by default, an empty
  `<script src="">` here) and a Mermaid loader that imports from a CDN when a page has a diagram.
  The notebooks have neither math nor diagrams, so both are removed. Under the page's title goes a
  note that says where the outputs come from (the run's date, cluster and nodes, read from the
  notebook's papermill metadata) with a link to download the notebook.
- Step pages are for reading: the `parameters` cell is left out (mkdocs.yml's remove_tag_config; the
  cluster file is shown once, on the home page), each node's status gets a class whose colours
  runbook.css sets for both palettes, diffs get a colour per line, and a "run this step yourself"
  box at the end says how (papermill, or JupyterLab through `make notebook`); the reports' diffs and
  command output are shown open.
- Pictures: every docs/assets/diagrams/*.dot, the chapter's cluster drawn from
  clusters/chapter.yaml, and the package's layers drawn from pyproject.toml's import contract and the
  imports in runbook/'s source (docs/architecture.md), are rendered with Graphviz (`dot -Tsvg`, Debian's graphviz package) into
  assets/diagrams/*.svg at build time. Nothing is drawn by hand and nothing is fetched.
- Every page: the build fails if a page would still fetch a script, stylesheet, font, image or frame
  from another host. Links (`<a href>`) to other sites are fine: they are only followed on a click.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

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
# The runbook's status badge (runbook/report.py): an inline colour picked for a light background.
_BADGE = re.compile(r'<strong style="color:\s*#[0-9a-fA-F]{3,6}">(ok|changed|unchanged|skipped|would change|FAILED)</strong>')
_DIFF_PRE = re.compile(r"(<summary>diff</summary>\s*<pre)([^>]*)>(.*?)</pre>", re.S)
ROOT = Path(__file__).resolve().parent.parent
DIAGRAMS = "assets/diagrams/"
CLUSTER_FILE = ROOT / "clusters" / "chapter.yaml"


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
        f'<code>make docs</code> makes this page again. Its parameters are the chapter\'s cluster file, shown once on the '
        f'<a href="../../#the-cluster-file">home page</a>. <a href="{name}" download>Download the notebook</a>: its first code '
        "cell holds the run's values, and what you set there is what runs.</p>"
        "</div>"
    )


# --- pictures --------------------------------------------------------------------------------------


def _dot(source: str, name: str) -> str:
    """SVG from Graphviz's `dot`; a missing graphviz or a bad source fails the build, naming the picture."""
    dot = shutil.which("dot")
    if dot is None:
        raise PluginError("the guide's pictures are drawn with Graphviz: apt-get install graphviz (make docs-deps)")
    result = subprocess.run([dot, "-Tsvg"], input=source, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise PluginError(f"dot could not draw {name}: {result.stderr.strip()}")
    svg = result.stdout
    # The DOCTYPE names the SVG DTD by URL; browsers never fetch it, but the page must not even name it.
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    return svg


def cluster_dot(cluster_file: Path = CLUSTER_FILE) -> str:
    """The chapter's cluster from its cluster file: nodes, addresses, the knet link and its port, SSH."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from runbook.model.load import load_cluster

    cluster = load_cluster(str(cluster_file))
    port = cluster.totem.port
    q = lambda text: '"' + str(text).replace('"', "'") + '"'  # noqa: E731 - a dot string literal
    lines = [
        "graph cluster {",
        '  graph [bgcolor="transparent", fontname="DejaVu Sans", fontsize=11, pad=0.2, nodesep=0.6, ranksep=0.9];',
        '  node [fontname="DejaVu Sans", fontsize=10, shape=box, style="rounded,filled", fillcolor="#e8eaf6", color="#3f51b5"];',
        '  edge [fontname="DejaVu Sans", fontsize=9, color="#3f51b5"];',
        '  controller [label="controller\\n(runbook run, papermill, Jupyter)", fillcolor="#fff8e1", color="#8a6d00"];',
    ]
    names = []
    for node in cluster.nodes:
        role = "\\nprimary: makes the authkey" if getattr(node, "role", "") == "primary" else ""
        lines.append(f"  {q(node.name)} [label={q(f'{node.name}  (nodeid {node.nodeid})' + chr(92) + 'n' + str(node.address) + role)}];")
        lines.append(f'  controller -- {q(node.name)} [label="SSH, TCP 22", style=dashed, color="#8a6d00"];')
        names.append(node.name)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            lines.append(
                f"  {q(a)} -- {q(b)} [label={q(f'link 0 (knet): UDP {port} both ways' + chr(92) + 'n' + f'(udp/udpu on 1.x/2.x: UDP {port - 1} and {port})')}, penwidth=2];"
            )
    lines.append("  {rank=same; " + "; ".join(q(n) for n in names) + "}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def package_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Which package of runbook/ imports which, read from the source (imports inside functions too)."""
    import ast

    def package(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 else module

    arrows: dict[str, set[str]] = {}
    for path in sorted((root / "runbook").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        me = package(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        arrows.setdefault(me, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("runbook"):
                names = [node.module] if node.module != "runbook" else [f"runbook.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("runbook")]
            arrows[me].update(package(n) for n in names if package(n) != me and package(n) != "runbook")
    return arrows


def architecture_dot(root: Path = ROOT) -> str:
    """The package's layers as pyproject.toml's import-linter contract states them (one rank per layer,
    top to bottom), with every import between packages as found in the source; the arrows into the
    leaves (errors, text, local), which every layer may use, are left out so the others can be read."""
    import tomllib

    contracts = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    arrows = package_imports(root)
    q = lambda text: '"' + text.removeprefix("runbook.") + '"'  # noqa: E731 - a dot string literal
    lines = [
        "digraph architecture {",
        '  graph [bgcolor="transparent", fontname="DejaVu Sans", fontsize=11, rankdir=TB, nodesep=0.35, ranksep=0.45, newrank=true];',
        '  node [fontname="DejaVu Sans", fontsize=10, shape=box, style="rounded,filled", fillcolor="#e8eaf6", color="#3f51b5"];',
        '  edge [color="#7986cb", arrowsize=0.6];',
    ]
    for index, layer in enumerate(layers):
        members = [m.strip() for m in layer.split("|")]
        lines.append(f'  subgraph "cluster_layer{index}" {{ label="layer {len(layers) - 1 - index}"; labeljust=l; style=dashed; color="#c5cae9"; fontsize=9;')
        lines.append("    rank=same; " + " ".join(f"{q(m)};" for m in members))
        lines.append("  }")
    firsts = [layer.split("|")[0].strip() for layer in layers]
    for upper, lower in zip(firsts, firsts[1:]):  # keeps the layers in the contract's order, top to bottom
        lines.append(f"  {q(upper)} -> {q(lower)} [style=invis];")
    placed = {m.strip() for layer in layers for m in layer.split("|")}
    leaves = {"runbook.errors", "runbook.text", "runbook.local"}
    for source in sorted(arrows):
        for target in sorted(arrows[source]):
            if source in placed and target in placed and target not in leaves:
                lines.append(f"  {q(source)} -> {q(target)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


MODULES_MARK = "<!-- modules: drawn from runbook/'s docstrings at build time -->"


def modules_table(root: Path = ROOT) -> str:
    """Every module of runbook/ with the first line of its docstring: where a thing lives, from the source."""
    import ast

    rows = ["| Module | What it is |", "|---|---|"]
    for path in sorted((root / "runbook").rglob("*.py")):
        if path.name == "__init__.py" and not path.read_text(encoding="utf-8").strip():
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")
        rows.append(f"| `{path.relative_to(root)}` | {first} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """The contributors' page gets its table of modules from the source, so it cannot go stale."""
    if MODULES_MARK in markdown:
        markdown = markdown.replace(MODULES_MARK, modules_table())
    return markdown


def on_files(files: Files, config: Any, **_: Any) -> Files:
    """Draw the pictures: docs/assets/diagrams/*.dot and the cluster file, as SVG files of the site."""
    docs = Path(config["docs_dir"])
    sources = {p.stem: p.read_text(encoding="utf-8") for p in sorted((docs / DIAGRAMS).glob("*.dot"))}
    sources["cluster"] = cluster_dot()
    sources["architecture"] = architecture_dot()
    for file in [f for f in files if f.src_uri.startswith(DIAGRAMS) and f.src_uri.endswith(".dot")]:
        files.remove(file)  # the source is in the repository; the site gets the picture
    for name, source in sources.items():
        files.append(File.generated(config, f"{DIAGRAMS}{name}.svg", content=_dot(source, f"{name}.dot")))
    return files


# --- step pages ------------------------------------------------------------------------------------


def _colour_diff(match: re.Match[str]) -> str:
    """One span per diff line, classed by its kind (runbook.css colours them); text stays escaped as it was."""
    head, attrs, body = match.group(1), match.group(2), match.group(3)
    out = []
    for line in body.split("\n"):
        kind = ""
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        out.append(f'<span class="runbook-diff-{kind}">{line}</span>' if kind else line)
    return f'{head} class="runbook-diff">' + "\n".join(out) + "</pre>"


def _badge(match: re.Match[str]) -> str:
    label = match.group(1)
    status = "failed" if label == "FAILED" else label.replace(" ", "-")
    return f'<strong class="runbook-status runbook-status--{status}">{label}</strong>'


def run_yourself_html(stem: str) -> str:
    """How to run this step yourself: papermill on a cluster file, or JupyterLab on the lab."""
    esc = html.escape
    name = esc(stem)
    return (
        '<div class="admonition tip runbook-run-yourself">'
        '<p class="admonition-title">Run this step yourself</p>'
        "<p><strong>With papermill</strong>, from the project's directory, on the nodes your cluster file "
        "describes (<code>-p check True</code>: a dry run that changes nothing; leave it out to make the changes):</p>"
        f'<pre><code>papermill notebooks/{name}.ipynb {name}.out.ipynb -f clusters/chapter.yaml -p check True</code></pre>'
        "<p><strong>In JupyterLab</strong>, against lab hosts at the chapter's addresses: "
        "<code>make notebook</code> brings the lab up, starts JupyterLab on 127.0.0.1 with a token and prints "
        f"its URL. Open <code>{name}.ipynb</code>, set <code>check = True</code> in its first code cell, "
        "then <em>Run &rsaquo; Run All Cells</em>. The notebook downloaded from this page works the same way: "
        "what you set in its first code cell is what runs, in JupyterLab or with "
        f"<code>papermill {name}.ipynb {name}.out.ipynb</code>. "
        '<a href="../../quickstart/#run-a-step-in-jupyterlab">More in the quickstart</a>, and on '
        '<a href="../../papermill-ci/#one-step-with-papermill">papermill, runs and CI</a>.</p>'
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
    content = _BADGE.sub(_badge, content)
    content = _DIFF_PRE.sub(_colour_diff, content)
    # A report's diffs and command output are what the page is for: shown open, never cut short.
    content = content.replace("<details><summary>diff</summary>", "<details open><summary>diff</summary>")
    content = content.replace("<details><summary>output</summary>", "<details open><summary>output</summary>")
    note = provenance_html(run_facts(page.file.abs_src_path))
    content, count = _FIRST_H1_END.subn("</h1>" + note, content, count=1)
    if not count:
        content = note + content
    return content + run_yourself_html(Path(page.file.src_uri).stem)


def on_post_page(output: str, page: Any, **_: Any) -> str:
    remote = sorted({f"<{m['tag'].lower()}> {m['url']}" for m in _FETCHED.finditer(output)})
    if remote:
        raise PluginError(
            f"page {page.file.src_uri} would load from the network: {'; '.join(remote)}; "
            "the guide must work with no network (see overrides/hooks.py)"
        )
    return output
