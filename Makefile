# fer_perception: `make run` shows the graph working, `make test` runs the suite.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
SETUP_STAMP := install/local_setup.bash
PYTEST_ARGS ?=
ARGS ?=

.PHONY: setup run test bench clean

setup:
	bash scripts/setup.sh

$(SETUP_STAMP):
	bash scripts/setup.sh

# Runs the graph on a webcam if one is present, else on the bundled demo clip,
# in a window where a display is present (q stops); pass more graph arguments
# with ARGS="source:=my.mp4" (show:=never: no window).
run: $(SETUP_STAMP)
	$(ENV) fer-run monitor:=true $(ARGS)

# Sets up if needed, rebuilds the workspace, runs the whole suite.
test:
	bash scripts/setup.sh
	$(ENV) python -m pytest test $(PYTEST_ARGS)

clean:
	rm -rf build install log out .pytest_cache

# Benchmarks (see docs/benchmarks.md); QUICK=1 for the reduced set.
bench: $(SETUP_STAMP)
	$(ENV) python -m bench.run_bench $(if $(QUICK),--quick)
