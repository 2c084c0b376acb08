# avsep: the two commands a newcomer runs are `make demo` and `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all
# pip's local mirrors print one warning per package; keep them in a log instead.
PIP_LOG := $(VENV)/pip-install.log

.PHONY: demo test test-slurm lint format bench bench-scale weights music-lists lock clean help

help:
	@echo "make demo   - install into .venv, generate the demo dataset and run the workflow"
	@echo "make test   - install into .venv (or reuse it) and run the test suite"
	@echo "make test-slurm - start a one-node SLURM cluster here (root, Debian) and run the demo on it"
	@echo "make bench  - NMF against scikit-learn, vision speed, memory on a 30-min video, deep separation speed, BSS Eval codes, fetch speed on local files, the demo from scratch"
	@echo "make bench-scale - the seed's testset25 size (25 x 60 s mixtures, 1 h of training audio), per stage"
	@echo "make weights NAMES=\"resnet18 ...\" - fetch torchvision ImageNet weights into resources/weights (needs internet)"
	@echo "make music-lists - fetch MUSIC's and MUSIC-21's video id lists into data/ (needs internet)"
	@echo "make lint   - snakemake --lint and snakefmt --check"
	@echo "make lock   - refreeze envs/requirements.txt from envs/requirements.in"

$(STAMP): envs/requirements.txt envs/requirements-nodeps.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned environment into $(VENV) (log: $(PIP_LOG))"
	@$(BIN)/pip install -q -r envs/requirements.txt > $(PIP_LOG) 2>&1 || { tail -n 30 $(PIP_LOG); exit 1; }
	@$(BIN)/pip install -q --no-deps -r envs/requirements-nodeps.txt >> $(PIP_LOG) 2>&1 || { tail -n 30 $(PIP_LOG); exit 1; }
	@$(BIN)/pip install -q --no-deps --no-build-isolation -e . >> $(PIP_LOG) 2>&1 || { tail -n 30 $(PIP_LOG); exit 1; }
	@touch $@

DEMO_CONFIG := --configfile config/config.yaml config/demo.yaml

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(DEMO_CONFIG)
	$(BIN)/snakemake --cores 1 --report results/report.html $(DEMO_CONFIG)
	@echo "report: results/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest

# A real single-node SLURM cluster on this machine (Debian, root), the demo run through
# profiles/slurm and locally, compared; tests/cluster/cluster.sh stops its daemons after.
test-slurm: $(STAMP)
	AVSEP_TEST_SLURM=1 $(BIN)/python -m pytest -s tests/cluster

bench: $(STAMP)
	$(BIN)/python -m avsep.bench.nmf --threads 2
	$(BIN)/python -m avsep.bench.vision --threads 2
	$(BIN)/python -m avsep.bench.memory --minutes 30 --threads 2
	$(BIN)/python -m avsep.bench.deep --threads 2
	$(BIN)/python -m avsep.bench.bsseval --threads 2
	$(BIN)/python -m avsep.bench.fetch --cores 2
	$(BIN)/python -m avsep.bench --cores 2

# A testset25-sized workload (config/scale.yaml), stage by stage; about 15 minutes on 2 cores.
bench-scale: $(STAMP)
	$(BIN)/python -m avsep.bench.scale --cores 2

# torchvision's ImageNet weights for the other backbones, fetched once by hand (the pipeline
# never downloads); then set vision.weights: resources/weights/<name>.pth.
NAMES ?= resnet18
weights: $(STAMP)
	$(BIN)/python -m avsep.vision.weights --dest resources/weights $(NAMES)

# The MUSIC and MUSIC-21 id lists into data/ (needs internet), for config/music.yaml and
# config/music21.yaml; then `snakemake fetch` (README, "Real data").
music-lists: $(STAMP)
	$(BIN)/python -m avsep.fetch --dest data

lint: $(STAMP)
	$(BIN)/snakemake --lint --cores 1
	$(BIN)/snakefmt --check .

format: $(STAMP)
	$(BIN)/snakefmt .

lock: $(STAMP)
	$(BIN)/pip install -q -r envs/requirements.in
	{ echo "# Frozen lock of envs/requirements.in (Python 3.11, Linux x86_64). Regenerate with 'make lock'."; \
	  $(BIN)/pip freeze --exclude-editable | grep -viE '^(tinysoundfont|avsep)='; } > envs/requirements.txt

clean:
	rm -rf results/* logs benchmarks .snakemake
	touch results/.gitkeep
