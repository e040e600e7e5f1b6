"""Reports: hostile text from nodes never reaches a terminal or a notebook raw."""

from runbook.report.outcome import NodeOutcome, StepReport, unified_diff
from runbook.text import clean


def test_terminal_escapes_and_controls_are_removed():
    assert clean("ok\x1b[31mRED\x1b[0m\x1b]0;title\x07 \x00bell\x07") == "okRED bell"
    assert clean("a\r\nb\tc") == "a\nb\tc"


def test_html_output_is_escaped():
    report = StepReport("02", "Write", False, [NodeOutcome("n1", "changed", "<script>alert(1)</script>\x1b[2J", diff="+<b>")])
    html = report._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "\x1b" not in html and "&lt;b&gt;" in html


def test_changed_and_failed():
    report = StepReport("x", "X", False, [NodeOutcome("a", "unchanged", ""), NodeOutcome("b", "failed", "down")])
    assert not report.changed and [o.node for o in report.failed] == ["b"]
    assert report.to_dict()["outcomes"][1] == {"node": "b", "status": "failed", "summary": "down", "operations": []}


def test_diff_names_the_file_and_is_empty_when_same():
    assert unified_diff("a\n", "a\n", "/etc/x") == ""
    diff = unified_diff("a\n", "b\n", "/etc/x")
    assert "--- /etc/x (current)" in diff and "-a" in diff and "+b" in diff


def test_bidi_controls_and_zero_width_characters_are_removed():
    # RLO makes "ok" display reversed; isolates, marks, zero-width space/joiners and the BOM hide text
    hostile = "status: \u202eko\u202c \u2066x\u2069 a\u200bb\u200dc\u2060d\ufeffe \u200fmark\u061c"
    assert clean(hostile) == "status: ko x abcde mark"
    report = StepReport("x", "X", False, [NodeOutcome("n1", "failed", hostile, diff="+\u202eevil\n")])
    for text in (str(report), report._repr_html_(), str(report.to_dict())):
        assert not any(ch in text for ch in "\u202e\u202c\u2066\u2069\u200b\u200d\u2060\ufeff\u200f\u061c")


def test_long_lines_are_cut_with_a_marker_that_says_how_much():
    line = "x" * 1_000_111
    text = clean(f"short\n{line}\nend")
    first, cut, last = text.split("\n")
    assert (first, last) == ("short", "end")
    assert cut == "x" * 2000 + "… [998,111 more characters cut]"
    assert clean("y" * 2000) == "y" * 2000
    assert len(unified_diff("a\n", line + "\n", "/etc/x")) < 3000


def test_a_nodes_commands_show_with_status_output_and_the_whole_file_and_hostile_text_is_cleaned():
    from runbook.report.outcome import OperationResult

    op = OperationResult("write", "install -m 0644 -o root -g root /dev/stdin /etc/corosync/corosync.conf", "no file yet", "done", 0, "backup x\x1b[2J")
    failed = OperationResult("restart", "systemctl restart corosync", "conf changed", "failed", 4, "corosync is failed\u202e")
    report = StepReport("02-corosync-conf", "Write corosync.conf", False, planned=True)
    report.outcomes = [
        NodeOutcome("node1", "changed", "wrote", operations=[op], files={"/etc/corosync/corosync.conf": "totem {\n\tversion: 2\n}\n# <b>x</b>\n"}),
        NodeOutcome("node2", "failed", "no", operations=[failed]),
        NodeOutcome("node3", "unchanged", "already the file"),
    ]
    report.by_hand = ["# on node1", "chmod 644 /etc/corosync/corosync.conf"]
    page = report._repr_html_()
    assert '<div class="runbook-commands" data-node="node1">' in page and "[exit 0]" in page and "[FAILED, exit 4]" in page
    assert "no command needed: already the file" in page  # a node without operations says so
    assert '<span class="nt">totem</span>' in page and '<span class="k">version</span>' in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "\x1b" not in page and "\u202e" not in page
    assert '<div class="runbook-by-hand">' in page and "chmod 644 /etc/corosync/corosync.conf" in page
    text = str(report)
    assert "$ install -m 0644 -o root -g root /dev/stdin /etc/corosync/corosync.conf   # no file yet [exit 0]" in text
    data = report.to_dict()
    assert data["outcomes"][0]["operations"][0] == {
        "kind": "write", "command": op.command, "reason": "no file yet", "status": "done", "exit_status": 0, "output": "backup x",
    }
    assert data["files"] == {"node1": {"/etc/corosync/corosync.conf": "totem {\n\tversion: 2\n}\n# <b>x</b>\n"}}
    assert report.operations() == {"node1": [("write", op.command)], "node2": [("restart", "systemctl restart corosync")], "node3": []}
