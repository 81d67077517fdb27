# gr-specenc: the README's commands. Everything runs with the project's .venv python.
PY := $(CURDIR)/.venv/bin/python
GRC ?= examples/recorded_iq_alerts.grc

.PHONY: setup build test demo grc bench-psd setup-gui bind-hash clean

# apt packages (as root), .venv, pip requirements; skipped when already done
setup:
	@bash scripts/setup.sh --deps

# CMake configure (once), build, install into .venv; also refreshes build/test_modules
build: setup
	@bash scripts/setup.sh --build

# All tests against the BUILD TREE (build/test_modules), never an installed copy.
# pytest's exit 5 ("no tests collected") counts as a failure; a test running over 10 minutes (hung) prints every
# thread's traceback, naming it.
test: build
	@PYTHONPATH=$(CURDIR)/build/test_modules $(PY) -m pytest -q -o faulthandler_timeout=600 tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests collected" >&2; exit 1; fi; exit $$rc

# The main job: `specenc demo`
demo: build
	$(CURDIR)/.venv/bin/specenc demo

# GNU Radio Companion with the module's blocks and the venv python (GRC=examples/other.grc)
grc: build
	GRC_BLOCKS_PATH=$(CURDIR)/.venv/share/gnuradio/grc/blocks $(PY) /usr/bin/gnuradio-companion $(GRC)

bench-psd: build
	$(CURDIR)/.venv/bin/specenc bench psd

# optional: Xvfb, ImageMagick and GTK bits for GRC screenshots
setup-gui:
	@bash scripts/setup.sh --gui

# after editing a header in include/gnuradio/specenc/ AND its binding in python/specenc/bindings/
bind-hash:
	@for name in psd emission_tracker stream_tags; do \
	  h=$$(md5sum include/gnuradio/specenc/$$name.h | cut -d' ' -f1); \
	  sed -i "s/BINDTOOL_HEADER_FILE_HASH([^)]*)/BINDTOOL_HEADER_FILE_HASH($$h)/" python/specenc/bindings/$${name}_python.cc; \
	  echo "$${name}_python.cc hash -> $$h"; \
	done

clean:
	rm -rf build
