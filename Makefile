# VFT: `make demo` runs the network on this machine, `make test` runs the tests.
GO      ?= go
BIN     := bin/vft
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test test-short demo bench lint clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vft

# Every package's tests, including the in-process mesh and the multi-process
# tests that run the real binary.
test:
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

# A local mesh of vft daemons that find each other through the DHT.
demo: build
	./scripts/demo.sh

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./internal/testnet/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
