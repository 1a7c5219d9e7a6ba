// cmatmul: a float32 matrix multiply in C, built for WASI (wasm32-wasi)
// and for the host, to measure what the WASM executor costs against native
// code. See README.md for how to build and run it.
//
// It generates two N×N matrices from a seed (a fixed xorshift generator, so
// every build sees the same numbers), multiplies them PASSES times (the
// product of one pass is the right-hand side of the next, scaled back to
// keep it finite), and writes the last product to /output/c.bin
// (little-endian float32, row-major) and a one-line summary to
// /output/summary.txt. The bytes are the same on every runtime and on the
// host build: no fused multiply-add (-ffp-contract=off), NaN-free inputs.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint32_t next_u32(void) {
	// xorshift64*
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

// A value in [-1, 1) with 2^-23 steps: exact in float32.
static float next_float(void) { return (float)((int32_t)(next_u32() >> 8) - (1 << 23)) / (float)(1 << 23); }

// matmul computes c = a × b for n×n row-major matrices. The i-k-j order
// makes the inner loop a contiguous axpy, which clang vectorizes with
// -msimd128 (4 float lanes) and gcc/clang with SSE/AVX on the host.
static void matmul(int n, const float *restrict a, const float *restrict b, float *restrict c) {
	memset(c, 0, (size_t)n * n * sizeof(float));
	for (int i = 0; i < n; i++) {
		float *restrict ci = c + (size_t)i * n;
		for (int k = 0; k < n; k++) {
			const float aik = a[(size_t)i * n + k];
			const float *restrict bk = b + (size_t)k * n;
			for (int j = 0; j < n; j++) {
				ci[j] += aik * bk[j];
			}
		}
	}
}

static int write_file(const char *path, const void *data, size_t len) {
	FILE *f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	if (fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

static void usage(void) {
	fprintf(stderr, "usage: cmatmul [-n N] [-seed S] [-passes P] [-out DIR]\n");
	exit(2);
}

int main(int argc, char **argv) {
	int n = 512, passes = 4;
	uint64_t seed = 1;
	const char *out = "/output";
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc) usage();
		if (strcmp(argv[i], "-n") == 0) {
			n = atoi(argv[++i]);
		} else if (strcmp(argv[i], "-seed") == 0) {
			seed = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "-passes") == 0) {
			passes = atoi(argv[++i]);
		} else if (strcmp(argv[i], "-out") == 0) {
			out = argv[++i];
		} else {
			usage();
		}
	}
	if (n <= 0 || n > 8192 || passes <= 0) {
		fprintf(stderr, "cmatmul: -n must be in 1..8192 and -passes positive (got %d, %d)\n", n, passes);
		return 2;
	}
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	size_t cells = (size_t)n * n;
	float *a = malloc(cells * sizeof(float)), *b = malloc(cells * sizeof(float)), *c = malloc(cells * sizeof(float));
	if (a == NULL || b == NULL || c == NULL) {
		fprintf(stderr, "cmatmul: out of memory for three %dx%d matrices\n", n, n);
		return 1;
	}
	for (size_t i = 0; i < cells; i++) a[i] = next_float();
	for (size_t i = 0; i < cells; i++) b[i] = next_float();
	const float scale = 1.0f / (float)n;
	for (int p = 0; p < passes; p++) {
		matmul(n, a, b, c);
		for (size_t i = 0; i < cells; i++) b[i] = c[i] * scale;
	}
	double sum = 0;
	for (size_t i = 0; i < cells; i++) sum += c[i];
	char path[4096];
	snprintf(path, sizeof path, "%s/c.bin", out);
	if (write_file(path, c, cells * sizeof(float)) != 0) return 1;
	char summary[256];
	int len = snprintf(summary, sizeof summary, "n=%d passes=%d seed=%llu sum=%.9g c[0]=%.9g\n", n, passes,
	                   (unsigned long long)seed, sum, (double)c[0]);
	snprintf(path, sizeof path, "%s/summary.txt", out);
	if (write_file(path, summary, (size_t)len) != 0) return 1;
	fputs(summary, stdout);
	return 0;
}
