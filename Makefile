# One command for the main job (`make demo`) and one for the tests (`make test`); each sets itself up.
# Needs a Debian/Ubuntu machine and root (the lab makes network namespaces and mounts).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNBOOK := $(VENV)/bin/runbook
CLUSTER ?= clusters/chapter.yaml
# What the machine needs: sshd for the lab hosts, iproute2/util-linux for namespaces, venv for Python;
# sudo so that lab hosts (an overlay of this machine) can test logging in as a non-root sudoer.
# Corosync itself is NOT installed on this machine: `runbook lab up` only downloads its packages so that
# the hosts install it offline (and the install step has real work to do).
APT_PACKAGES := openssh-server openssh-client iproute2 util-linux procps psmisc sudo python3-venv ca-certificates
# The docs test drives Debian's Chromium; fonts-dejavu-core gives it a font to render text with.
DOCS_APT_PACKAGES := chromium chromium-driver fonts-dejavu-core

.PHONY: help setup system-deps docs-deps demo test docs lab-down clean

help:
	@echo "make demo    set up, bring up lab hosts at the chapter's addresses, run the whole runbook"
	@echo "make test    set up and run the tests (unit, real lab hosts, docs)"
	@echo "make docs    run the notebooks against lab hosts and build the guide into site/"
	@echo "make lab-down   remove every lab host"

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

docs-deps:
	@missing=""; for p in $(DOCS_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[docs,test]'
	touch $@

setup: system-deps $(VENV)/.installed

demo: setup
	RUNBOOK_LAB_ONLY=1 $(RUNBOOK) lab up $(CLUSTER)
	RUNBOOK_LAB_ONLY=1 $(RUNBOOK) run $(CLUSTER)
	RUNBOOK_LAB_ONLY=1 $(RUNBOOK) membership $(CLUSTER)

test: setup docs-deps
	RUNBOOK_LAB_ONLY=1 $(PY) -m pytest

# The guide: the notebooks run against lab hosts (lab 'docs'), executed copies in docs/generated/, site in site/.
docs: setup
	$(PY) tools/build_docs.py --site site

lab-down: $(VENV)/.installed
	$(RUNBOOK) lab down --all

clean: lab-down
	rm -rf $(VENV) site docs/generated runs
