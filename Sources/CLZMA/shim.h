#include <lzma.h>
#include <string.h>
// Flag macros built with UINT32_C/UINT64_C do not import into Swift; re-export them.
static const uint32_t phonehome_lzma_concatenated = LZMA_CONCATENATED;
static const uint32_t phonehome_lzma_tell_no_check = LZMA_TELL_NO_CHECK;

// Memory a single-threaded decoder needs for the first block of an xz stream, read from
// the stream and block headers at the start of `in`; UINT64_MAX when they are not there
// or not valid. Lets a caller decide before decoding whether it can afford the decoder.
static inline uint64_t phonehome_xz_first_block_memory(const uint8_t *in, size_t size) {
    if (size < LZMA_STREAM_HEADER_SIZE + 1) return UINT64_MAX;
    lzma_stream_flags flags;
    if (lzma_stream_header_decode(&flags, in) != LZMA_OK) return UINT64_MAX;
    const uint8_t *header = in + LZMA_STREAM_HEADER_SIZE;
    if (header[0] == 0) return UINT64_MAX;   // an index right away: no block (empty stream)
    lzma_filter filters[LZMA_FILTERS_MAX + 1];
    lzma_block block;
    memset(&block, 0, sizeof block);
    block.version = 1;
    block.check = flags.check;
    block.header_size = lzma_block_header_size_decode(header[0]);
    block.filters = filters;
    if (size - LZMA_STREAM_HEADER_SIZE < block.header_size) return UINT64_MAX;
    if (lzma_block_header_decode(&block, NULL, header) != LZMA_OK) return UINT64_MAX;
    uint64_t memory = lzma_raw_decoder_memusage(filters);
    lzma_filters_free(filters, NULL);
    return memory;
}
