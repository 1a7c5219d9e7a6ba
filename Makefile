# VFT: `make demo` runs the network on this machine, `make test` runs the tests.
GO      ?= go
BIN     := bin/vft
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

LOCALNET_DIR := chain/localnet

EXAMPLES := matmul nninfer wordcount qsim

.PHONY: build examples test test-short demo demo-ai bench lint clean localnet localnet-deps interop interop-bench gpu-tests fuzz interop-js interop-js-deps sdk-test cli-docs

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vft

# The example workloads as WASI modules: bin/examples/NAME.wasm
examples:
	@mkdir -p bin/examples
	@for ex in $(EXAMPLES); do \
	  echo "GOOS=wasip1 GOARCH=wasm go build -o bin/examples/$$ex.wasm ./examples/$$ex"; \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -o bin/examples/$$ex.wasm ./examples/$$ex || exit 1; \
	done

# Every package's tests, including the in-process mesh and the multi-process
# tests that run the real binary, then the interop tests against kubo.
# One package at a time (-p 1): the in-process networks and the devnet
# processes each load the two cores on their own, and running them side by
# side only made both slow enough to reach their timeouts.
test: localnet-deps interop-js-deps
	$(GO) test -p 1 -count=1 -timeout 20m ./...
	$(MAKE) sdk-test
	$(MAKE) interop

# The Python and TypeScript SDKs' tests, each against a real devnet (vft
# devnet: a Solana localnet, 3 miners, a submitter) that the tests start.
# PYTHON: Debian's python3 (3.9 or later); unittest needs nothing else.
PYTHON ?= python3
# mypy (Debian's mypy package) checks the Python SDK's types where it is
# installed; CI installs it.
sdk-test: build examples localnet-deps sdk/js/node_modules/.package-lock.json
	@if command -v mypy >/dev/null 2>&1; then echo "mypy --strict sdk/python"; cd sdk/python && mypy --strict --python-version 3.9 --follow-imports=silent vft tests examples; else echo "mypy not installed: the Python SDK's types are not checked (apt-get install mypy)"; fi
	$(PYTHON) -m unittest discover -s sdk/python/tests -v
	cd sdk/js && npm test

sdk/js/node_modules/.package-lock.json: sdk/js/package-lock.json
	npm ci --prefix sdk/js --no-audit --no-fund

# Interop with kubo (real IPFS): a separate Go module that builds kubo
# v0.43.1's `ipfs` once (about 11 minutes cold on two cores, cached after)
# and checks bitswap both ways and CID equality. Loopback only.
interop:
	cd interop && $(GO) test -count=1 -timeout 30m ./...

# An independent client written from docs/PROTOCOL.md (interop/js: js-libp2p
# 2.x on Node 20, pinned by its lockfile) against real nodes on loopback:
# internal/testnet's TestJSClient, which `make test` runs too (it fails
# when the npm packages are missing: make test installs them first).
INTEROP_JS_DIR := interop/js
$(INTEROP_JS_DIR)/node_modules/.package-lock.json: $(INTEROP_JS_DIR)/package-lock.json
	npm ci --prefix $(INTEROP_JS_DIR) --no-audit --no-fund

interop-js-deps: $(INTEROP_JS_DIR)/node_modules/.package-lock.json

interop-js: interop-js-deps
	node $(INTEROP_JS_DIR)/selftest.mjs docs/vectors
	$(GO) test -count=1 -run 'TestJSClient' -v ./internal/testnet/

# vft vs kubo side by side: import and loopback transfer of the same file.
interop-bench:
	SIZE_MB=$${SIZE_MB:-1024} bench/interop-bench.sh

test-short: localnet-deps
	$(GO) test -short -count=1 ./...

# The local Solana runtime (LiteSVM) the chain tests and devnet use: npm
# packages pinned by chain/localnet/package-lock.json.
$(LOCALNET_DIR)/node_modules/.package-lock.json: $(LOCALNET_DIR)/package-lock.json
	npm ci --prefix $(LOCALNET_DIR) --no-audit --no-fund

localnet-deps: $(LOCALNET_DIR)/node_modules/.package-lock.json

# A development Solana chain in the foreground: RPC 127.0.0.1:8899, websocket 8900.
localnet: localnet-deps
	node $(LOCALNET_DIR)/server.js --rpc-port 8899

# The whole flow in processes: vft devnet (Solana localnet, a VFT token, 4
# miners of which 1 is dishonest, a submitter), a verified job, payouts.
demo: build examples localnet-deps
	./scripts/demo.sh

# A PyTorch inference job (examples/torchinfer) in a container image built
# from Debian packages, verified with `tolerance` on 3 devnet miners; the
# first run builds the image (scripts/build-torch-image.sh, cached after).
# Needs root, crun and mmdebstrap. Not part of `make test`: the image is
# about 300 MB.
demo-ai: build localnet-deps
	./scripts/demo-ai.sh

# Every fuzzer for FUZZTIME each (default 30s); `make test` replays their
# seed corpora. See docs/SECURITY.md.
fuzz:
	FUZZTIME=$${FUZZTIME:-30s} scripts/fuzz.sh

# In-process network benchmarks (mesh, gossip, heartbeats, job latency).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./internal/testnet/

# The GPU checks as prebuilt test binaries, for scripts/gpu-check.sh on a
# machine with an NVIDIA GPU (it needs no Go toolchain there).
gpu-tests: build
	@mkdir -p bin/gpu
	$(GO) test -c -tags gpu -o bin/gpu/hwdetect.test ./hwdetect/
	$(GO) test -c -tags gpu -o bin/gpu/native.test ./executor/native/
	$(GO) test -c -tags gpu -o bin/gpu/oci.test ./executor/oci/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd interop && $(GO) vet ./...

clean:
	rm -rf bin

# docs/CLI.md, the command reference, from the command tree itself
# (cmd/vft's TestCLIDocsCurrent fails when it is out of date).
cli-docs:
	$(GO) run ./cmd/vft cli-docs > docs/CLI.md.tmp && mv docs/CLI.md.tmp docs/CLI.md
