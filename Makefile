# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint install sample model bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,spark,postgres]"
	touch $(STAMP)

install: $(STAMP)

# The main job on the sample district: the nightly run with the shipped model.
run: $(STAMP)
	$(VENV)/bin/escalation-risk --key-file data/sample/SAMPLE_KEY validate data/sample
	$(VENV)/bin/escalation-risk --key-file data/sample/SAMPLE_KEY nightly data/sample --model models/default --as-of 2025-06-30 --store sqlite:///out/alerts.db --out out

# The linter and the type checker first: a red `make test` names what to fix in seconds.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src

# Two pytest-xdist workers (one per core here): groups marked xdist_group (the Spark tests, the desk
# and its browser) each run whole in one worker, so their session and module fixtures start once.
PYTEST_WORKERS ?= 2
test: lint
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-java-postgres.sh
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

# Regenerate the committed sample district and the shipped model.
sample: $(STAMP)
	$(VENV)/bin/escalation-risk sample data/sample --persons 20000 --seed 7

model: $(STAMP)
	$(VENV)/bin/escalation-risk --key-file data/sample/SAMPLE_KEY train data/sample --cutoff 2025-01-01 --rescore-every 30 --out models/default

bench: $(STAMP)
	$(PY) benchmarks/run.py --persons 100000

# The documentation site (docs/, mkdocs.yml), every warning an error, into site/.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict -d site

clean:
	rm -rf $(VENV) out site
