#!/bin/sh
# Builds the C example for WASI (SIMD and scalar) and for the host.
# Needs Debian's clang, lld and wasi-libc: apt-get install clang lld wasi-libc
# (clang 14 also needs libclang_rt.builtins-wasm32.a; see README.md).
set -eu
cd "$(dirname "$0")"
CC=${CC:-clang}
# Debian installs wasi-libc under /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi,
# where its clang looks by default; set WASI_SYSROOT for a wasi-sdk sysroot.
SYSROOT_FLAG=${WASI_SYSROOT:+--sysroot=$WASI_SYSROOT}
# -ffp-contract=off: no fused multiply-add on the host, where C allows it
# by default; WebAssembly has none, and the bytes must match.
FLAGS="-O2 -ffp-contract=off"
WASMFLAGS="-Wl,--strip-all"
# -force-vector-interleave=4: four 4-lane vectors per loop iteration, so
# that the executor's interruption check at each loop header (Wasmtime's
# epoch check) is paid once per 16 floats instead of per 4: 4.9x -> 2.9x
# native CPU time in process (docs/BENCHMARKS.md). Same results.
$CC --target=wasm32-wasi $SYSROOT_FLAG $FLAGS $WASMFLAGS -msimd128 -mllvm -force-vector-interleave=4 -o cmatmul.wasm matmul.c
$CC --target=wasm32-wasi $SYSROOT_FLAG $FLAGS $WASMFLAGS -o cmatmul-scalar.wasm matmul.c
mkdir -p ../../bin
${HOSTCC:-$CC} $FLAGS -march=native -o ../../bin/cmatmul-native matmul.c
# The host's baseline vectors (SSE2 on x86-64, NEON on arm64): 4 float
# lanes, as -msimd128 has; -march=native may use 8 (AVX2) or 16 (AVX-512).
${HOSTCC:-$CC} $FLAGS -o ../../bin/cmatmul-native-128 matmul.c
${HOSTCC:-$CC} $FLAGS -fno-vectorize -fno-slp-vectorize -o ../../bin/cmatmul-native-scalar matmul.c 2>/dev/null ||
	${HOSTCC:-$CC} $FLAGS -fno-tree-vectorize -o ../../bin/cmatmul-native-scalar matmul.c
ls -l cmatmul.wasm cmatmul-scalar.wasm ../../bin/cmatmul-native ../../bin/cmatmul-native-128 ../../bin/cmatmul-native-scalar
