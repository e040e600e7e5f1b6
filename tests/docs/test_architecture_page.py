"""The contributors' page, as the guide publishes it: its picture and its table are today's code."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.docs.conftest import BuiltSite

ROOT = Path(__file__).resolve().parents[2]


def test_the_picture_has_every_layer_and_the_table_every_module(built_site: BuiltSite) -> None:
    page = (built_site.path / "architecture" / "index.html").read_text()
    svg = (built_site.path / "assets" / "diagrams" / "architecture.svg").read_text()
    assert "assets/diagrams/architecture.svg" in page
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    for package in (m.strip().removeprefix("runbook.") for layer in layers for m in layer.split("|")):
        assert f">{package}</text>" in svg, f"{package} is not in the picture"
    modules = [p for p in sorted((ROOT / "runbook").rglob("*.py")) if p.name != "__init__.py" or p.read_text().strip()]
    missing = [str(p.relative_to(ROOT)) for p in modules if f"<code>{p.relative_to(ROOT)}</code>" not in page]
    assert not missing, f"not in the table of modules: {missing}"
    assert "modules: drawn from" not in page, "the marker was not replaced"
