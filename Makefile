# NeoXProbe: `make demo` runs the main job on the default model, `make test` runs the tests.
# Both do all set-up on a fresh Debian machine (apt packages included; run as root or with sudo).

SWIFT      ?= swift
CONFIG     ?= release
SHARED     ?= ../shared
MODEL      ?= $(if $(wildcard $(SHARED)/models/pythia-mini),$(SHARED)/models/pythia-mini/step2000,Models/pythia-160m)
VENV       ?= ../venv
SUITE      ?= $(SHARED)/models/pythia-mini
DATA       ?= $(SHARED)/data/minipile/document
# pythia-mini trained 2000 steps of 4 rows: its last batch is 0-based step 1999.
BATCH_STEP ?= 1999
BATCH_SIZE ?= 4
APT_PACKAGES = libopenblas-dev libsentencepiece-dev libzstd-dev pkg-config
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN         = .build/$(CONFIG)/neoxprobe
SWIFTFLAGS  = -c $(CONFIG) -Xswiftc -enable-testing

.PHONY: setup build test test-cluster lint demo bench fixtures tokenizer venv clean fuzz fuzz-ci fuzz-seeds install

## setup: install the Debian packages the build links against (skipped when present).
setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

build: setup
	$(SWIFT) build $(SWIFTFLAGS) --product neoxprobe

## test: every test target, built optimised (the parity tests run real forward passes), then the
##   Slurm cluster test (test-cluster, about a minute once the apt packages are in).
test: setup
	$(SWIFT) build $(SWIFTFLAGS) --build-tests
	$(SWIFT) test $(SWIFTFLAGS) --skip-build --parallel --num-workers 2
	$(MAKE) --no-print-directory test-cluster

## test-cluster: a real one-node Slurm cluster on this machine (Tests/Cluster/start_cluster.sh: apt slurm-wlm +
##   munge, munged, slurmctld, slurmd; root or sudo) runs `neoxprobe slurm`'s 3-shard job array and merge job over
##   pythia-mini; metrics.csv and run.json must equal a single-machine sweep's byte for byte.
test-cluster: build
	BIN=$(BIN) SHARED=$(SHARED) Tests/Cluster/test_cluster.sh

## lint: swift-format's rules as configured in .swift-format (import order, naming, doc-comment
##   form, …). Its pretty-printer layout checks are left out: the house style aligns continuation
##   lines under their opening parenthesis, which swift-format's layout does not do.
LINT_LAYOUT = \[(Indentation|AddLines|RemoveLine|Spacing|LineLength|TrailingComma)\]
lint:
	@out=$$($(SWIFT) format lint --configuration .swift-format --recursive --parallel Sources Tests Examples Fuzz/Sources 2>&1 \
	  | grep -vE '$(LINT_LAYOUT)' | grep -E 'warning|error' || true); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; else echo "lint: clean"; fi

## demo: the main job on the default model and suite:
##   1. capture every layer's residual stream (and the logits) for a text,
##   2. LAMBADA as lm-evaluation-harness scores it (first 500 examples),
##   3. sweep the whole suite (outliers, CKA, weights, perplexity, LAMBADA) on the batch of the
##      suite's last training step, and render the report: demo/sweep/report.html.
demo: build
	@mkdir -p demo
	$(BIN) run --model $(MODEL) --text README.md --truncate --hooks 'blocks.*.hook_resid_post,logits' --out demo/activations.safetensors
	$(BIN) lambada --model $(MODEL) --limit 500
	@if [ -d "$(SUITE)" ] && [ -f "$(DATA).idx" ]; then \
	  $(BIN) sweep --suite $(SUITE) --data $(DATA) --batch-of-step $(BATCH_STEP) --batch-size $(BATCH_SIZE) \
	    --probes outliers,cka,weights,perplexity,lambada --lambada-limit 500 --out demo/sweep && \
	  $(BIN) report demo/sweep && echo "open demo/sweep/report.html"; \
	else echo "no suite at $(SUITE) (or no $(DATA).idx): sweep skipped"; fi

## tokenizer: copy the GPT-NeoX-20B tokenizer into tokenizer/ (ignored by git) from ../shared.
tokenizer:
	cp $(SHARED)/tokenizer/20B_tokenizer.json tokenizer/20B_tokenizer.json

## fixtures: regenerate the committed reference fixtures with HF transformers/tokenizers (needs $(VENV)).
fixtures:
	$(VENV)/bin/python Tests/Fixtures/generate.py

## bench: every benchmark against its peer, same machine, same run (needs $(VENV) and ../shared).
bench: build
	VENV=$(abspath $(VENV)) bench/engine/run.sh
	VENV=$(abspath $(VENV)) bench/grad/run.sh
	VENV=$(abspath $(VENV)) bench/tokenizer/run.sh
	VENV=$(abspath $(VENV)) bench/lambada/run.sh
	VENV=$(abspath $(VENV)) bench/sweep/run.sh
	VENV=$(abspath $(VENV)) bench/generate/run.sh

## fuzz: every parser's libFuzzer target (Fuzz/, its own package: the main build never links libFuzzer;
##   a debug build with libFuzzer's coverage and AddressSanitizer, see Fuzz/README.md)
##   for FUZZ_SECONDS each; findings in Fuzz/.work/findings/<target>/, a summary in Fuzz/.work/summary.tsv.
FUZZ_SECONDS ?= 60
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) Fuzz/run.sh

## fuzz-ci: the short pass .ci/run makes (4 s a target; with the build about 100 s on an idle 2-core machine).
fuzz-ci: setup
	FUZZ_SECONDS=$${FUZZ_SECONDS:-4} Fuzz/run.sh

## fuzz-seeds: rewrite the committed seed corpora (Fuzz/corpus/) from $(SHARED).
fuzz-seeds:
	python3 Fuzz/make_seeds.py $(SHARED)

## install: the binary to PREFIX/bin and the default data it looks for to PREFIX/share/neoxprobe
##   (the 20B tokenizer and LAMBADA, from tokenizer/ or $(SHARED)), so it runs from any directory.
PREFIX ?= /usr/local
install: build
	install -d $(PREFIX)/bin $(PREFIX)/share/neoxprobe/tokenizer $(PREFIX)/share/neoxprobe/data/lambada
	install -m 755 $(BIN) $(PREFIX)/bin/neoxprobe
	@tok=$$(ls tokenizer/20B_tokenizer.json $(SHARED)/tokenizer/20B_tokenizer.json 2>/dev/null | head -1); \
	if [ -n "$$tok" ]; then install -m 644 "$$tok" $(PREFIX)/share/neoxprobe/tokenizer/20B_tokenizer.json; \
	else echo "install: no 20B tokenizer found (make tokenizer, or pass --tokenizer at run time)"; fi
	@if [ -f $(SHARED)/data/lambada/lambada_test.jsonl ]; then \
	  install -m 644 $(SHARED)/data/lambada/lambada_test.jsonl $(PREFIX)/share/neoxprobe/data/lambada/; \
	else echo "install: no LAMBADA data at $(SHARED)/data/lambada (pass --data at run time)"; fi
	@echo "installed $(PREFIX)/bin/neoxprobe"

## venv: the PyTorch/HF reference environment, outside the repo (about 3.5 GB; never needed by CI).
venv:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install torch==2.5.1 transformers==4.49.0 tokenizers safetensors sentencepiece numpy
	printf 'torch==2.5.1\ntransformers==4.49.0\n' > $(VENV)/constraints.txt
	$(VENV)/bin/pip install lm_eval==0.4.5 -c $(VENV)/constraints.txt
	$(VENV)/bin/pip install transformer_lens==2.15.4 -c $(VENV)/constraints.txt

clean:
	rm -rf .build demo Fuzz/.build Fuzz/.work
