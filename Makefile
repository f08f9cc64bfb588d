# NeoXProbe: `make demo` runs the main job on the default model, `make test` runs the tests.
# Both do all set-up on a fresh Debian machine (apt packages included; run as root or with sudo).

SWIFT      ?= swift
CONFIG     ?= release
SHARED     ?= ../shared
MODEL      ?= $(if $(wildcard $(SHARED)/models/pythia-mini),$(SHARED)/models/pythia-mini/step2000,Models/pythia-160m)
VENV       ?= ../venv
APT_PACKAGES = libopenblas-dev libsentencepiece-dev libzstd-dev pkg-config
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN         = .build/$(CONFIG)/neoxprobe
SWIFTFLAGS  = -c $(CONFIG) -Xswiftc -enable-testing

.PHONY: setup build test demo bench fixtures clean

## setup: install the Debian packages the build links against (skipped when present).
setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

build: setup
	$(SWIFT) build $(SWIFTFLAGS) --product neoxprobe

## test: every test target, built optimised (the parity tests run real forward passes).
test: setup
	$(SWIFT) build $(SWIFTFLAGS) --build-tests
	$(SWIFT) test $(SWIFTFLAGS) --skip-build --parallel --num-workers 2

## demo: the main job on the default model: capture every layer's residual stream for a real Pile row.
demo: build
	@mkdir -p demo
	$(BIN) run --model $(MODEL) --text README.md --hooks 'blocks.*.hook_resid_post' --out demo/activations.safetensors
	@echo "wrote demo/activations.safetensors"

## fixtures: regenerate the committed reference fixtures with HF transformers/tokenizers (needs $(VENV)).
fixtures:
	$(VENV)/bin/python Tests/Fixtures/generate.py

## venv: the PyTorch/HF reference environment, outside the repo (about 3.5 GB; never needed by CI).
venv:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install torch==2.5.1 transformers==4.49.0 tokenizers safetensors sentencepiece numpy
	printf 'torch==2.5.1\ntransformers==4.49.0\n' > $(VENV)/constraints.txt
	$(VENV)/bin/pip install lm_eval==0.4.5 -c $(VENV)/constraints.txt

clean:
	rm -rf .build demo
