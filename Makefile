# Two commands: `make demo` and `make test`. Each creates or refreshes .venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mulligan-installed

.PHONY: demo test venv lint clean

# Re-install when the project's dependencies change.
$(STAMP): pyproject.toml scripts/ensure_llama_cpp.sh scripts/ensure_system.sh
	bash scripts/ensure_system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,ray]'
	$(PY) -m pip install -q --disable-pip-version-check -e '.[alfworld]' \
		|| echo "[make] alfworld did not install here: the ALFWorld tests skip"
	bash scripts/ensure_llama_cpp.sh $(PY)
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

test: venv
	bash scripts/install_models.sh $(PY) tiny
	bash scripts/ensure_browser.sh $(PY)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q -p no:cacheprovider

# The main job on the embedded default: Qwen2.5-Coder-0.5B on a HumanEval slice, k=5.
# --resume makes a second `make demo` reuse the finished episodes instead of failing.
# Concurrency 1: llama.cpp reuses the KV cache of the previous call's prefix, which only
# helps when consecutive calls continue the same conversation.
DEMO_LIMIT ?= 8
demo: venv
	bash scripts/install_models.sh $(PY) default
	$(VENV)/bin/mulligan run --suite humaneval --limit $(DEMO_LIMIT) --turns 5 --proposals 2 \
		--model local/qwen2.5-coder-0.5b --concurrency 1 --out .demo/humaneval-k5 --resume
	@echo "trajectories, curves and CIs: .venv/bin/mulligan report .demo/humaneval-k5 --html demo.html"

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
