# One command for the main job (`make demo`) and one for the tests (`make test`); each sets itself up.
# Needs a Debian/Ubuntu machine and root (the lab makes network namespaces and mounts).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNBOOK := $(VENV)/bin/runbook
CLUSTER ?= clusters/chapter.yaml
# What the machine needs: sshd for the lab hosts, iproute2/util-linux for namespaces, venv for Python;
# sudo so that lab hosts (an overlay of this machine) can test logging in as a non-root sudoer; nftables
# so that a lab host can have a firewall (the link check and `firewall: manage` tests).
# Corosync itself is NOT installed on this machine: `runbook lab up` only downloads its packages so that
# the hosts install it offline (and the install step has real work to do).
APT_PACKAGES := openssh-server openssh-client iproute2 util-linux procps psmisc sudo python3-venv ca-certificates \
	systemd-container debootstrap nftables
# The docs test drives Debian's Chromium; fonts-dejavu-core gives it a font to render text with;
# graphviz draws the guide's pictures (overrides/hooks.py runs `dot` at build time).
DOCS_APT_PACKAGES := chromium chromium-driver fonts-dejavu-core graphviz

.PHONY: help setup system-deps docs-deps demo test test-unit docs notebook screenshots lab-down clean

help:
	@echo "make demo    set up, bring up lab hosts at the chapter's addresses, run the whole runbook"
	@echo "make test    set up and run the tests (unit, real lab hosts, docs)"
	@echo "make test-unit   the unit tests only (pure logic and the layout's contracts; no lab, no root): the quick loop"
	@echo "make docs    run the notebooks against lab hosts and build the guide into site/"
	@echo "make notebook   JupyterLab on the step notebooks against lab hosts (127.0.0.1, with a token)"
	@echo "make screenshots   retake the README's pictures of the guide (docs/assets/guide-home.png, docs/assets/screenshots/)"
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
	$(VENV)/bin/pip install -q -e '.[docs,test,notebook]'
	touch $@

setup: system-deps $(VENV)/.installed

demo: setup
	RUNBOOK_LAB_ONLY=1 $(RUNBOOK) lab up $(CLUSTER)
	RUNBOOK_LAB_ONLY=1 $(RUNBOOK) run $(CLUSTER)
	RUNBOOK_LAB_ONLY=1 $(RUNBOOK) membership $(CLUSTER)

# The tests make their labs in lab worlds of their own (a network namespace and lab root each), so a
# lab you left up (make demo) is neither in their way nor touched by them. The world has no route out,
# so what lab hosts install is fetched first. tools/run_tests.py runs the suite in TEST_SHARDS shards
# (default 3), each in its own world, at the same time: lab tests mostly wait. TEST_SHARDS=1 runs it
# as one pytest; `make test ARGS='-- -k boot'` passes pytest arguments on.
TEST_SHARDS ?= 3
test: setup docs-deps
	$(RUNBOOK) lab prepare --os host,debian12,debian13
	TEST_SHARDS=$(TEST_SHARDS) $(PY) tools/run_tests.py $(ARGS)

# The quick loop while changing code: pure logic, the layers contract, the notebooks' shape; no lab.
test-unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit $(ARGS)

# The guide: the notebooks run against lab hosts (lab 'docs'), executed copies in docs/generated/, site in site/.
docs: setup docs-deps
	$(RUNBOOK) lab prepare --os host,debian12
	$(RUNBOOK) lab world --world docs -- $(PY) tools/build_docs.py --site site

# JupyterLab on the step notebooks, against lab hosts at the chapter's addresses (lab 'lab', as make demo makes it, in
# this machine's own network namespace, like make demo, so that a browser here can reach it).
# Listens on 127.0.0.1 only, with a fresh token; prints the URL. Edits go to runs/jupyter/.
notebook: setup
	RUNBOOK_LAB_ONLY=1 $(PY) tools/notebook_server.py --cluster $(CLUSTER)

# The README's pictures of the guide (home page; steps 2 and 6 at 1280/390 px, light/dark): a test run never
# changes a tracked file; this does, on purpose.
screenshots: setup docs-deps
	$(RUNBOOK) lab prepare --os host,debian12
	RUNBOOK_LAB_ONLY=1 RUNBOOK_UPDATE_ASSETS=1 $(RUNBOOK) lab world --world docs -- $(PY) -m pytest tests/docs/test_site.py -k screenshot

lab-down: $(VENV)/.installed
	$(RUNBOOK) lab down --all

clean: lab-down
	rm -rf $(VENV) site docs/generated runs
