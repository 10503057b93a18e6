#include <lzma.h>
// Flag macros built with UINT32_C/UINT64_C do not import into Swift; re-export them.
static const uint32_t phonehome_lzma_concatenated = LZMA_CONCATENATED;
static const uint32_t phonehome_lzma_tell_no_check = LZMA_TELL_NO_CHECK;
static const uint64_t phonehome_lzma_memlimit = UINT64_MAX;
