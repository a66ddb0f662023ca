# otwamp developer entry points. Each target works on a fresh machine by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: all venv sysdeps lint typecheck unit test demo ipsec-demo bench bench-fidelity bench-sustained soak netem mesh clean

all: test

$(STAMP): pyproject.toml src/otwamp/drivers/_stampsend.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,agent]'
	touch $@

venv: $(STAMP)

# Debian packages the tests and the demo need (tshark, tcpdump, iproute2).
sysdeps:
	bash scripts/install-debian-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest -q -m "not tshark and not netns"

test: $(STAMP) sysdeps lint typecheck
	$(BIN)/pytest -q

demo: $(STAMP)
	bash scripts/demo.sh
	$(BIN)/python scripts/demo_web.py   # three agents on loopback; ends with the dashboard's URL

# As root: TWAMP in a strongSwan ESP tunnel and beside it, keyed by its IKE SA (docs/IPSEC.md).
ipsec-demo: $(STAMP)
	bash scripts/ipsec-demo.sh

bench: $(STAMP)
	$(BIN)/python -m bench

# How far T1..T4 are from the wire, against a loopback capture (root); one JSON object.
bench-fidelity: $(STAMP)
	$(BIN)/python -m bench.fidelity

# A million packets at 20,000 pps, TWAMP and OWAMP: loss, both ends' RSS, the records' cost
# at 10,000,000 packets (bench/sustained.py); one JSON object, about 6 minutes.
bench-sustained: $(STAMP)
	$(BIN)/python -m bench.sustained

# 10 minutes of mixed load against one otwamp server; prints one JSON object (bench/soak.py).
soak: $(STAMP)
	$(BIN)/python -m bench.soak --duration 600

# The link-emulator ground-truth tests with ten times the packets, printing their figures (docs/EMULATOR.md).
netem: $(STAMP)
	OTWAMP_NETEM_SCALE=10 $(BIN)/pytest -q -s -m netns tests/netem

# As root: 16 agents in network namespaces, one PostgreSQL, Prometheus, 10 minutes; one JSON
# object (bench/mesh.py, docs/SCALING.md).
mesh: $(STAMP)
	$(BIN)/python -m bench.mesh --agents 16 --duration 600

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
