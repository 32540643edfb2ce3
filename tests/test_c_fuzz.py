"""The C ABI under AddressSanitizer and UndefinedBehaviorSanitizer (issue 23).

``tests/fuzz_abi.c`` calls every entry point of ``csrc/gridcore.h`` with
random shapes (small and valid, or near the integer limits), models, weights,
noise, NULL pointers, overlapping outputs, NaN and inf, thread counts,
destroyed and fake workspaces and steppers, and mutated network files, and
checks each status against the header. It is compiled here from the csrc
sources with ``-fsanitize=address,undefined -fno-sanitize-recover=all``, so an
out-of-bounds access, an integer overflow or a crash fails the test.

The build is serial (no ``-fopenmp``): the sanitizers do not see inside
libgomp, and a serial build runs the same partitions of the trials one after
the other, so every partition and reduction is still checked.
"""

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
SOURCES = [CSRC / name for name in ("gridcore.c", "grc_kernels.c", "grc_step.c", "grc_net.c")]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
# -O0: the kernels, compiled once per instruction set, build in half the time of -O1
FLAGS = ["-std=c99", "-O0", "-g", "-Wall", "-Wextra", "-Wno-unknown-pragmas", *SANITIZE,
         f"-I{CSRC}"]
# huge but valid sizes fail to allocate (GRC_ENOMEM) instead of aborting the sanitizer's allocator
ASAN_OPTIONS = "allocator_may_return_null=1:max_allocation_size_mb=256:detect_leaks=1:abort_on_error=0"
SEED, ROUNDS = 23, 3000


def _sanitizer_missing(gcc, tmp):
    """Why gcc cannot build and run a sanitized program here, or None."""
    src = tmp / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    build = subprocess.run([gcc, *SANITIZE, "-o", str(tmp / "probe"), str(src)], capture_output=True, text=True)
    if build.returncode:
        return f"gcc cannot link the sanitizer runtimes (libasan, libubsan): {build.stderr.strip()[-300:]}"
    run = subprocess.run([str(tmp / "probe")], capture_output=True, text=True)
    return f"a sanitized program does not run here: {run.stderr.strip()[-300:]}" if run.returncode else None


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    tmp = tmp_path_factory.mktemp("fuzz")
    reason = _sanitizer_missing(gcc, tmp)
    if reason:
        pytest.skip(reason)
    sources = [*SOURCES, Path(__file__).with_name("fuzz_abi.c")]

    def compile_one(src):
        obj = tmp / (src.stem + ".o")
        return subprocess.run([gcc, *FLAGS, "-c", "-o", str(obj), str(src)], capture_output=True, text=True), obj

    with ThreadPoolExecutor(max_workers=min(len(sources), os.cpu_count() or 1)) as pool:
        built = list(pool.map(compile_one, sources))
    for run, _ in built:
        assert run.returncode == 0, run.stderr[-3000:]
    exe = tmp / "fuzz_abi"
    link = subprocess.run([gcc, *SANITIZE, "-o", str(exe), *(str(obj) for _, obj in built), "-lm"],
                          capture_output=True, text=True)
    assert link.returncode == 0, link.stderr[-3000:]
    return exe, tmp


def test_the_c_abi_survives_the_fuzzer(fuzzer):
    exe, tmp = fuzzer
    env = {**os.environ, "ASAN_OPTIONS": ASAN_OPTIONS, "UBSAN_OPTIONS": "print_stacktrace=1"}
    run = subprocess.run([str(exe), str(SEED), str(ROUNDS), str(tmp / "net.bin")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 0, f"status {run.returncode}:\n{run.stdout[-1000:]}\n{run.stderr[-6000:]}"
    cases = int(re.fullmatch(r"cases (\d+)\n", run.stdout).group(1))
    assert cases > 20 * ROUNDS          # every round checks tens of calls
    print(f"fuzz_abi: {cases} checked calls, seed {SEED}, {ROUNDS} rounds")


def test_the_fuzzer_catches_an_out_of_bounds_read(fuzzer, tmp_path):
    # the harness itself: a program that reads one double past an array fails under these flags
    exe, _ = fuzzer
    src = tmp_path / "oob.c"
    src.write_text("#include <stdlib.h>\nint main(int argc, char **argv) { (void)argv;\n"
                   "  double *a = malloc(3 * sizeof(double)); a[2] = 1.0;\n"
                   "  double x = a[argc + 2]; free(a); return x > 0; }\n")
    build = subprocess.run([shutil.which("gcc"), *FLAGS, "-o", str(tmp_path / "oob"), str(src)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(tmp_path / "oob")], capture_output=True, text=True,
                         env={**os.environ, "ASAN_OPTIONS": ASAN_OPTIONS})
    assert run.returncode != 0 and "heap-buffer-overflow" in run.stderr
