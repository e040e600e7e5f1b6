"""The chapter's hand edits, as pure functions: rc.local and /etc/default/corosync."""

from runbook.conf.edits import CFGTOOL_LINE, has_cfgtool_line, start_setting, with_cfgtool_line, with_start_yes

UBUNTU_RC_LOCAL = """#!/bin/sh -e
#
# rc.local
#
# By default this script does nothing.

exit 0
"""


def test_line_goes_just_before_exit_0():
    new, how = with_cfgtool_line(UBUNTU_RC_LOCAL)
    lines = new.splitlines()
    assert lines[-2:] == [CFGTOOL_LINE, "exit 0"]
    assert "before `exit 0`" in how
    assert has_cfgtool_line(new)


def test_adding_twice_changes_nothing():
    once, _ = with_cfgtool_line(UBUNTU_RC_LOCAL)
    twice, how = with_cfgtool_line(once)
    assert twice == once and "already" in how


def test_missing_rc_local_is_created_with_the_line_before_exit_0():
    new, _ = with_cfgtool_line(None)
    assert new.startswith("#!/bin/sh")
    assert new.index(CFGTOOL_LINE) < new.index("exit 0")


def test_rc_local_without_exit_0_gets_the_line_at_the_end():
    new, how = with_cfgtool_line("#!/bin/sh\necho hi\n")
    assert new.endswith(CFGTOOL_LINE + "\n") and "no `exit 0`" in how


def test_line_after_exit_0_or_commented_does_not_count():
    assert not has_cfgtool_line(f"#!/bin/sh\nexit 0\n{CFGTOOL_LINE}\n")
    assert not has_cfgtool_line(f"#!/bin/sh\n# {CFGTOOL_LINE}\nexit 0\n")
    new, _ = with_cfgtool_line(f"#!/bin/sh\n# {CFGTOOL_LINE}\nexit 0\n")
    assert has_cfgtool_line(new)


def test_exit_0_inside_a_block_is_not_the_scripts_end():
    text = "#!/bin/sh\nif [ -e /x ]; then\n  exit 0\nfi\necho tail\nexit 0\n"
    new, _ = with_cfgtool_line(text)
    assert new.splitlines()[-2:] == [CFGTOOL_LINE, "exit 0"]


def test_start_no_becomes_start_yes_and_nothing_else_changes():
    text = "# defaults for corosync\nSTART=no\n#OPTIONS=\"\"\n"
    new, how = with_start_yes(text)
    assert new == "# defaults for corosync\nSTART=yes\n#OPTIONS=\"\"\n"
    assert how == "START=no -> START=yes"
    assert with_start_yes(new)[0] == new


def test_debian_12_file_has_no_start_line():
    assert start_setting('# Command line options\n#OPTIONS=""\n') is None
    assert start_setting(None) is None
    assert start_setting('START="yes"\n') == "yes"
