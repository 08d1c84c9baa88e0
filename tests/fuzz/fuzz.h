/*
 * fuzz.h: what the three libFuzzer harnesses (job.c, conf.c, journal.c)
 * share: the entry point libFuzzer calls, and the one scratch directory
 * a process works in.
 *
 *   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
 *
 * A harness is linked either with libFuzzer (clang -fsanitize=fuzzer:
 * `make fuzz`) or with replay.c, a main() that feeds it every file of a
 * corpus directory (`make check`, any compiler).
 *
 * fuzz_scratch() makes $TMPDIR/runner-fuzz-XXXXXX on its first call and
 * returns an O_DIRECTORY fd of it; the directory and everything in it is
 * removed when the process exits normally (libFuzzer's -runs, -merge, or
 * the replay driver; a crash leaves it for inspection).  Inputs never
 * write outside it.
 */
#ifndef RUNNER_FUZZ_H
#define RUNNER_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int fuzz_scratch(void);
/* Its path (valid once fuzz_scratch() returned). */
const char *fuzz_scratch_path(void);

#endif
