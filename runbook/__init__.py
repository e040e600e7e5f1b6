"""Corosync runbook: the chapter's cluster set-up as idempotent steps over SSH."""

__version__ = "0.1.0"
