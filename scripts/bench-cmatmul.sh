#!/bin/sh
# Times the C matmul example (examples/cmatmul: n = 512, 4 passes, as in
# issue 20) natively and under `vft exec` on each WASM runtime, ROUNDS
# rounds interleaved so that every variant sees the same machine load.
# Prints one line per run: variant and milliseconds. For `vft exec` the time
# is its run_ms: instantiation and the run, with the compiled module loaded
# from the cache (a first untimed run fills it).
#
#   make build && examples/cmatmul/build.sh && scripts/bench-cmatmul.sh [ROUNDS] [RUNTIMES]
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
RUNTIMES=${2:-"wasmtime wazero"}
ARGS="-n 512 -passes 4"
VFT=${VFT:-bin/vft}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now_ns() { date +%s%N; }
vft_args() { for a in $ARGS; do printf -- '--arg %s ' "$a"; done; }
for rt in $RUNTIMES; do
	for m in cmatmul cmatmul-scalar; do
		$VFT exec examples/cmatmul/$m.wasm --runtime "$rt" --cache "$tmp/cache" $(vft_args) >/dev/null 2>&1
	done
done
for r in $(seq "$ROUNDS"); do
	for build in simd scalar; do
		native=bin/cmatmul-native
		module=examples/cmatmul/cmatmul.wasm
		if [ "$build" = scalar ]; then
			native=bin/cmatmul-native-scalar
			module=examples/cmatmul/cmatmul-scalar.wasm
		fi
		mkdir -p "$tmp/native"
		t0=$(now_ns)
		$native $ARGS -out "$tmp/native" >/dev/null
		t1=$(now_ns)
		echo "$build native $(( (t1 - t0) / 1000000 ))"
		for rt in $RUNTIMES; do
			rm -rf "$tmp/out"
			ms=$($VFT exec "$module" --runtime "$rt" --cache "$tmp/cache" -o "$tmp/out" --json $(vft_args) 2>/dev/null |
				sed -n 's/.*"run_ms": *\([0-9.]*\).*/\1/p')
			cmp -s "$tmp/native/c.bin" "$tmp/out/c.bin" || echo "$build $rt: c.bin differs from the native build's" >&2
			echo "$build $rt $ms"
		done
	done
done
