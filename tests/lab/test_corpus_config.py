"""Corosync's own check on a real host: the generation-3 render of every corpus file the runbook accepts.

Each accepted file of `../shared/corpus/` is migrated with `--generation 3` and rendered for its first
node, with the node addresses mapped into the lab's subnets (node i on link k -> 10.0.(93+k).(11+i)),
so the lab host cx1 (10.0.93.11) holds the rendered node's address. `corosync -t` (3.1.7, installed
offline by the install step) must accept every one. Log directories a file names are made first, as an
admin would; the authkey is made by corosync-keygen, as step 03 does.
"""

from __future__ import annotations

import posixpath
import shlex

import pytest

from runbook import steps
from runbook.conf.parse import parse
from runbook.model.rules import cluster_from_mapping
from runbook.ssh.hosts import hosts_for
from tests.lab.conftest import running_lab
from tests.unit.test_corpus import ACCEPTED, CORPUS, generation_3_render

TEST = 't=$(mktemp); cat > "$t"; corosync -t -c "$t" 2>&1; echo "exit=$?"; rm -f "$t"'
HOSTS = [("cx1", "10.0.93.11"), ("cx2", "10.0.93.12")]

pytestmark = pytest.mark.skipif(not ACCEPTED, reason=f"the corpus of real corosync.conf files is not at {CORPUS}")


def _logfiles(section: dict) -> list[str]:
    found = [v for v in section.get("logfile", []) if isinstance(v, str)]
    for value in section.values():
        for item in value:
            if isinstance(item, dict):
                found += _logfiles(item)
    return found


def test_corosync_t_accepts_the_generation_3_render_of_every_accepted_corpus_file() -> None:
    with running_lab("ptcorp", HOSTS) as state:
        cluster = cluster_from_mapping({"cluster_name": "corpus", "nodes": [{"name": n, "address": a} for n, a in HOSTS]},
                                       str(state.cluster_file))
        with hosts_for(cluster) as hosts:
            assert [o.status for o in steps.install_corosync(cluster, hosts).outcomes] == ["changed", "changed"]
            host = hosts["cx1"]
            host.run("[ -e /etc/corosync/authkey ] || corosync-keygen -l >/dev/null 2>&1")
            refused = {}
            for path in ACCEPTED:
                text = generation_3_render(path, lambda node, link: f"10.0.{93 + link}.{11 + node}")
                dirs = {posixpath.dirname(f) for f in _logfiles(parse(text))}
                if dirs:
                    host.run("mkdir -p " + " ".join(shlex.quote(d) for d in sorted(dirs)))
                out = host.run(TEST, input=text.encode()).text
                if not out.strip().endswith("exit=0"):
                    refused[path.name] = out.strip()[-300:]
            assert refused == {}, refused
