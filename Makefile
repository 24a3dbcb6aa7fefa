# octvideo: `make demo` runs the main job on built-in data, `make test` runs the test suite.
# Both create .venv on their own; nothing needs to be installed by hand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test test-heavy lint format demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch/torchvision are pinned exactly: on these machines they install from local files.
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check octvideo tests tools
	$(VENV)/bin/ruff format --check octvideo tests tools

format: $(STAMP)
	$(VENV)/bin/ruff format octvideo tests tools
	$(VENV)/bin/ruff check --fix octvideo tests tools

# pytest-xdist: TEST_JOBS processes, each with one torch thread (tests/conftest.py); a test file
# stays in one process, so its fixtures are built once.
TEST_JOBS ?= 2

test: lint
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "not heavy"

# Cases too slow for every submission (whole-network compile, long training); run on demand.
test-heavy: $(STAMP)
	$(PY) -m pytest -q -m heavy

# Synthetic set -> train an Oct-I3D -> multi-view test -> predict one clip (configs/demo).
demo: $(STAMP)
	$(VENV)/bin/octvideo data synth --out data/synth --num-train 600 --quiet
# every `make demo` is a new run: train refuses to start over an earlier run's checkpoints
	rm -rf runs/demo
	$(VENV)/bin/octvideo train --cfg oct_i3d_synth.yaml --out runs/demo
	$(VENV)/bin/octvideo test --cfg oct_i3d_synth.yaml --ckpt runs/demo/checkpoints/best.ckpt --out runs/demo
	$(VENV)/bin/python tools/bench.py long-video data/synth --out runs/demo/long_video.mp4
	$(VENV)/bin/octvideo predict --ckpt runs/demo/checkpoints/best.ckpt runs/demo/long_video.mp4 \
		--window 2s --stride 1s --topk 3 --out runs/demo/predictions.jsonl
	@echo "results: runs/demo (config.yaml, checkpoints/, curves.png, logs/, test/summary.json,"
	@echo "         test/confusion.png, predictions.jsonl)"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
