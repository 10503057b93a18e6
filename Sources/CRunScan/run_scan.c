#include "run_scan.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PHONEHOME_X86 1
#endif

/// Bit k set when a run of set bytes at least `length` long ends at byte k of the block
/// (bit k is byte k); runs are not followed into the bytes before the block. Stops as soon
/// as no run is left: most blocks of text have no run of 4, so the first two steps are
/// written out (in the loop each step's shift and mask came with six instructions of
/// loop control).
static inline uint64_t run_ends(uint64_t m, size_t length) {
    if (length == 1) return m;
    uint64_t x = m & (m << 1);
    size_t have = 2;
    if (length >= 4) {
        x &= x << 2;
        if (x == 0) return 0;
        have = 4;
        while (have * 2 <= length) {
            x &= x << have;
            if (x == 0) return 0;
            have *= 2;
        }
    }
    if (have < length) x &= x << (length - have);
    return x;
}

/// Out of line: a run is found in few blocks, and inlined its loop took registers the block
/// loop then reloaded from the stack on every block.
__attribute__((noinline)) static size_t extend(const uint8_t *bytes, size_t n, size_t at, const uint8_t *member) {
    while (at < n && member[bytes[at]]) at++;
    return at;
}

/// One 64-byte block's bits (bit k is byte i + k): 1 with a run's start and, in *end, where
/// the caller goes on to find its end (the run reaches at least there), or 0 with *carry,
/// the set bytes at the block's top that a run in the next block would continue.
/// The next block's loads never wait for this: blocks are tested back to back.
static inline int block_result(uint64_t m, size_t *carry, size_t i, size_t length, size_t *start, size_t *end) {
    if (*carry > 0) {   // most blocks of text follow one that ends outside the set
        size_t lead = ~m == 0 ? 64 : (size_t)__builtin_ctzll(~m);
        if (*carry + lead >= length) {
            *start = i - *carry;
            *end = i + lead;
            return 1;
        }
    }
    uint64_t ends = run_ends(m, length);
    if (ends != 0) {
        size_t k = (size_t)__builtin_ctzll(ends);
        *start = i + k + 1 - length;
        *end = i + k + 1;
        return 1;
    }
    // Not every byte is set (that would be a run): fewer than `length` at the top.
    *carry = (size_t)__builtin_clzll(~m);
    return 0;
}

#ifdef PHONEHOME_X86
/// Each block search returns 1 with a run (*start, *end), or 0 with *at where fewer than
/// 64 bytes are left to search and *carry the set bytes just before it.

/// 16 bytes per instruction, each tested against every range.
static int next_run_sse2(const uint8_t *bytes, size_t n, size_t *at, size_t *carry, const phonehome_run_set *set,
                         size_t *start, size_t *end) {
    size_t i = *at, held = *carry;
    const size_t length = set->min_length;
    __m128i lo[8], width[8];
    const int count = set->count < 8 ? set->count : 8;
    for (int r = 0; r < count; r++) {
        lo[r] = _mm_set1_epi8((char)set->lo[r]);
        width[r] = _mm_set1_epi8((char)set->width[r]);
    }
    for (; i + 64 <= n; i += 64) {
        uint64_t m = 0;
        for (int c = 0; c < 4; c++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(bytes + i + 16 * c));
            __m128i in = _mm_setzero_si128();
            for (int r = 0; r < count; r++) {
                __m128i d = _mm_sub_epi8(v, lo[r]);
                in = _mm_or_si128(in, _mm_cmpeq_epi8(_mm_min_epu8(d, width[r]), d));
            }
            m |= (uint64_t)(uint16_t)_mm_movemask_epi8(in) << (16 * c);
        }
        if (block_result(m, &held, i, length, start, end)) {
            *end = extend(bytes, n, *end, set->member);
            return 1;
        }
    }
    *at = i;
    *carry = held;
    return 0;
}

/// Bit k set when byte k of the 32 at `p` is in the set: two table lookups by the bytes'
/// two nibbles, whatever the set.
__attribute__((target("avx2")))
static inline uint32_t members32(const uint8_t *p, __m256i low_table, __m256i high_table) {
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    __m256i low = _mm256_shuffle_epi8(low_table, _mm256_and_si256(v, nibble));
    __m256i high = _mm256_shuffle_epi8(high_table, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
    return ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(low, high), _mm256_setzero_si256()));
}

/// `extend` 32 bytes at a time: runs of digits and capitals often go on for tens of bytes
/// past the block where they are found.
__attribute__((target("avx2"), noinline))
static size_t extend_avx2(const uint8_t *bytes, size_t n, size_t at, __m256i low_table, __m256i high_table,
                          const uint8_t *member) {
    for (; at + 32 <= n; at += 32) {
        uint32_t outside = ~members32(bytes + at, low_table, high_table);
        if (outside != 0) return at + (size_t)__builtin_ctz(outside);
    }
    return extend(bytes, n, at, member);
}

/// 32 bytes per instruction (`members32`).
__attribute__((target("avx2")))
static int next_run_avx2(const uint8_t *bytes, size_t n, size_t *at, size_t *carry, const phonehome_run_set *set,
                         size_t *start, size_t *end) {
    // The carry and the length in locals: through the pointers they were stored and
    // loaded again on every block (the compiler cannot know `set` and `carry` apart).
    size_t i = *at, held = *carry;
    const size_t length = set->min_length;
    const __m256i low_table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)set->low_nibble));
    const __m256i high_table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)set->high_nibble));
    for (; i + 64 <= n; i += 64) {
        uint64_t m = (uint64_t)members32(bytes + i, low_table, high_table)
            | (uint64_t)members32(bytes + i + 32, low_table, high_table) << 32;
        if (block_result(m, &held, i, length, start, end)) {
            *end = extend_avx2(bytes, n, *end, low_table, high_table, set->member);
            return 1;
        }
    }
    *at = i;
    *carry = held;
    return 0;
}

#endif

int phonehome_run_method_available(phonehome_run_method method) {
    switch (method) {
    case phonehome_run_bytewise:
        return 1;
#ifdef PHONEHOME_X86
    case phonehome_run_sse2:
        return 1;
    case phonehome_run_avx2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
#endif
    default:
        return 0;
    }
}

size_t phonehome_next_run(const uint8_t *bytes, size_t n, size_t from, const phonehome_run_set *set,
                          phonehome_run_method method, size_t *end) {
    const size_t length = set->min_length;
    const uint8_t *member = set->member;
    if (length == 0 || length > 64) return n;
    size_t i = from, run = 0;
#ifdef PHONEHOME_X86
    size_t start;
    if (method == phonehome_run_avx2 && set->nibbles) {
        if (next_run_avx2(bytes, n, &i, &run, set, &start, end)) return start;
    } else if (method == phonehome_run_sse2 && set->count > 0) {
        if (next_run_sse2(bytes, n, &i, &run, set, &start, end)) return start;
    }
#endif
    // The bytes left (or all of them) one at a time; `run` of those just before are set.
    for (; i < n; i++) {
        if (!member[bytes[i]]) { run = 0; continue; }
        if (++run == length) {
            *end = extend(bytes, n, i + 1, member);
            return i + 1 - length;
        }
    }
    return n;
}
