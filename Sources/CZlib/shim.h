#include <zlib.h>
// inflateInit2 is a macro (it passes the library version and struct size); wrap it.
static inline int phonehome_inflate_init2(z_stream *strm, int window_bits) {
    return inflateInit2(strm, window_bits);
}
