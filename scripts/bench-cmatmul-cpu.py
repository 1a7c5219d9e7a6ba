#!/usr/bin/env python3
"""CPU time (user+sys, from getrusage) of the C matmul example natively and
under `vft exec` on each runtime: on a shared, loaded machine CPU time
varies far less than wall time. The executor's figure is the whole `vft
exec` process less the same process running the module with -n 8 (process
start, Go runtime, cache load, CID import of a tiny output), so it is
instantiation plus the run. Prints min and median per variant over ROUNDS
interleaved rounds.

    scripts/bench-cmatmul-cpu.py [ROUNDS] [RUNTIMES...]
"""
import os, resource, statistics, subprocess, sys, tempfile

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
runtimes = sys.argv[2:] or ["wasmtime", "wazero"]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
os.chdir(root)
cache = tempfile.mkdtemp(prefix="bench-cmatmul-")
args = ["-n", "512", "-passes", "4"]


def cpu(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000


def vft(module, rt, a):
    cmd = [os.environ.get("VFT", "bin/vft"), "exec", module, "--runtime", rt, "--cache", cache]
    for x in a:
        cmd += ["--arg", x]
    return cmd


modules = {"simd": os.environ.get("SIMD_WASM", "examples/cmatmul/cmatmul.wasm"),
           "scalar": os.environ.get("SCALAR_WASM", "examples/cmatmul/cmatmul-scalar.wasm")}
natives = {"simd": "bin/cmatmul-native", "scalar": "bin/cmatmul-native-scalar"}
for rt in runtimes:
    for m in modules.values():
        cpu(vft(m, rt, ["-n", "8"]))  # fill the cache
results = {}
out = tempfile.mkdtemp(prefix="bench-cmatmul-out-")
for _ in range(rounds):
    for build in ("simd", "scalar"):
        results.setdefault((build, "native"), []).append(cpu([natives[build]] + args + ["-out", out]))
        for rt in runtimes:
            base = cpu(vft(modules[build], rt, ["-n", "8"]))
            full = cpu(vft(modules[build], rt, args))
            results.setdefault((build, rt), []).append(full - base)
for (build, variant), xs in sorted(results.items()):
    nat = statistics.median(results[(build, "native")])
    print(f"{build:6} {variant:9} min {min(xs):8.0f} ms  median {statistics.median(xs):8.0f} ms  ratio(median) {statistics.median(xs)/nat:5.2f}")
