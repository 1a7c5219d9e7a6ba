#!/usr/bin/env python3
"""CPU time (user+sys, from getrusage) of the matmul examples natively and
under `vft exec` on each WASM runtime. On a shared, loaded machine CPU time
varies far less than wall time. The executor's figure is the whole `vft
exec` process less the same process running the module on a tiny input
(process start, Go runtime, executor, cached-code load, CID import), so it
is the module's instantiation and run. Prints min and median per variant
over ROUNDS interleaved rounds, and the ratio of medians to native.

    make build examples && examples/cmatmul/build.sh && \\
      go build -o bin/matmul-native ./examples/matmul && \\
      scripts/bench-wasm-cpu.py [ROUNDS] [RUNTIMES...]

RUNTIMES: wasmtime, wasmtime-isolated, wazero, and for Wasmtime the same
with native floats (a job's floats = "native"): wasmtime-native,
wasmtime-isolated-native. Default: wasmtime wazero.

VFT names another vft binary; SIMD_WASM and SCALAR_WASM other C modules;
PASSES the C runs' passes (default 4, the issue's; more passes make the
process-start noise that the baseline subtracts a smaller part); CASES a
comma-separated subset of c-simd, c-simd128, c-scalar, go-matmul.
"""
import atexit, os, resource, shutil, statistics, subprocess, sys, tempfile

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
runtimes = sys.argv[2:] or ["wasmtime", "wazero"]
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
cache = tempfile.mkdtemp(prefix="bench-wasm-cache-")
out = tempfile.mkdtemp(prefix="bench-wasm-out-")
empty = tempfile.mkdtemp(prefix="bench-wasm-in-")
for d in (cache, out, empty):
    atexit.register(shutil.rmtree, d, ignore_errors=True)
passes = os.environ.get("PASSES", "4")

# name: (native command, module, args, tiny args for the baseline)
cases = {
    "c-simd": (["bin/cmatmul-native", "-out", out], os.environ.get("SIMD_WASM", "examples/cmatmul/cmatmul.wasm"),
               ["-n", "512", "-passes", passes], ["-n", "8"]),
    # The same module against a host build with 128-bit vectors (4 float
    # lanes, as WebAssembly SIMD), where c-simd's -march=native has AVX2's 8.
    "c-simd128": (["bin/cmatmul-native-128", "-out", out], os.environ.get("SIMD_WASM", "examples/cmatmul/cmatmul.wasm"),
                  ["-n", "512", "-passes", passes], ["-n", "8"]),
    "c-scalar": (["bin/cmatmul-native-scalar", "-out", out], os.environ.get("SCALAR_WASM", "examples/cmatmul/cmatmul-scalar.wasm"),
                 ["-n", "512", "-passes", passes], ["-n", "8"]),
    "go-matmul": (["bin/matmul-native", "-in", empty, "-out", out], "bin/examples/matmul.wasm",
                  ["-n", "512", "-seed", "1"], ["-n", "2"]),
}

only = os.environ.get("CASES", "").split(",") if os.environ.get("CASES") else list(cases)
cases = {k: v for k, v in cases.items() if k in only and (os.path.exists(v[0][0]) or print(f"{k}: no {v[0][0]}, skipped", file=sys.stderr))}

def cpu(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000


def vft(module, rt, args):
    # "-isolated": each task in a child process (--isolate); "-native":
    # native floats (--floats native), no NaN canonicalisation.
    native = rt.endswith("-native")
    rt = rt.removesuffix("-native")
    cmd = [os.environ.get("VFT", "bin/vft"), "exec", module, "--runtime", rt.removesuffix("-isolated"), "--cache", cache]
    if rt.endswith("-isolated"):
        cmd.append("--isolate")
    if native:
        cmd += ["--floats", "native"]
    for a in args:
        cmd += ["--arg", a]
    return cmd


for rt in runtimes:
    for _, module, _, tiny in cases.values():
        cpu(vft(module, rt, tiny))  # fill the cache
results = {}
for _ in range(rounds):
    for name, (native, module, args, tiny) in cases.items():
        results.setdefault((name, "native"), []).append(cpu(native + args))
        for rt in runtimes:
            base = cpu(vft(module, rt, tiny))
            results.setdefault((name, rt), []).append(cpu(vft(module, rt, args)) - base)
for (name, variant), xs in sorted(results.items()):
    nat = statistics.median(results[(name, "native")])
    print(f"{name:9} {variant:24} min {min(xs):7.0f} ms  median {statistics.median(xs):7.0f} ms  {statistics.median(xs)/nat:5.2f}x native")
