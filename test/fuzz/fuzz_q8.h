/* fuzz_q8.h - the libFuzzer entry point of fuzz_q8_load.c, for the replay driver. */
#ifndef QSTEER_FUZZ_Q8_H
#define QSTEER_FUZZ_Q8_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
