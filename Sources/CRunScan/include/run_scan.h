#ifndef PHONEHOME_RUN_SCAN_H
#define PHONEHOME_RUN_SCAN_H

#include <stddef.h>
#include <stdint.h>

/// A set of bytes, in the forms the search can use:
/// - `member`: 256 entries, 0 or 1 (always);
/// - ranges (`count` of them, up to 8): b is in range r when (uint8_t)(b - lo[r]) <= width[r];
/// - nibble tables (`nibbles` set, when the set's bytes have at most 8 distinct high
///   nibbles): b is in the set when (low_nibble[b & 15] & high_nibble[b >> 4]) != 0.
typedef struct {
    const uint8_t *member;
    uint8_t lo[8];
    uint8_t width[8];
    int count;
    uint8_t low_nibble[16];
    uint8_t high_nibble[16];
    int nibbles;
    size_t min_length;
} phonehome_run_set;

/// How the bytes are tested. The vector methods need their form of the set (ranges for
/// SSE2, nibble tables for AVX2) and otherwise test one byte at a time.
typedef enum { phonehome_run_bytewise = 0, phonehome_run_sse2, phonehome_run_avx2 } phonehome_run_method;

/// Whether this CPU and build can test bytes with `method` (AVX2: asked of the CPU).
int phonehome_run_method_available(phonehome_run_method method);

/// The first maximal run of bytes of the set, at least `min_length` long (1 to 64), that
/// starts at or after `from`; the byte before `from` must be outside the set (or `from` 0).
/// Returns the run's start and sets *end to its end, or returns n when there is none.
size_t phonehome_next_run(const uint8_t *bytes, size_t n, size_t from, const phonehome_run_set *set,
                          phonehome_run_method method, size_t *end);

#endif
