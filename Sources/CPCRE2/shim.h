// PCRE2's API names are macros over the code-unit width; fix it to 8 bits and wrap the
// calls the rules engine needs as plain functions Swift can import.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static inline pcre2_code *phonehome_pcre2_compile(const unsigned char *pattern, size_t length,
                                                  uint32_t options, int *error_code,
                                                  size_t *error_offset) {
    return pcre2_compile(pattern, length, options | PCRE2_USE_OFFSET_LIMIT, error_code, error_offset, NULL);
}
static inline int phonehome_pcre2_jit_compile(pcre2_code *code) {
    return pcre2_jit_compile(code, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
}
static inline pcre2_match_data *phonehome_pcre2_match_data_create(pcre2_code *code) {
    return pcre2_match_data_create_from_pattern(code, NULL);
}
static inline pcre2_match_context *phonehome_pcre2_match_context_create(void) {
    return pcre2_match_context_create(NULL);
}
static inline void phonehome_pcre2_match_context_free(pcre2_match_context *context) {
    pcre2_match_context_free(context);
}
/// `offset_limit`: no match may start after it (the pattern must be compiled with
/// PCRE2_USE_OFFSET_LIMIT); a negative value for none.
static inline int phonehome_pcre2_match(pcre2_code *code, const unsigned char *subject,
                                        size_t length, size_t start, uint32_t options,
                                        pcre2_match_data *match_data,
                                        pcre2_match_context *context, long offset_limit) {
    pcre2_set_offset_limit(context, offset_limit < 0 ? PCRE2_UNSET : (PCRE2_SIZE)offset_limit);
    return pcre2_match(code, subject, length, start, options, match_data, context);
}

static inline int phonehome_pcre2_error_message(int code, unsigned char *buffer, size_t size) {
    return pcre2_get_error_message(code, buffer, size);
}
static inline size_t *phonehome_pcre2_ovector(pcre2_match_data *match_data) {
    return pcre2_get_ovector_pointer(match_data);
}
static inline void phonehome_pcre2_code_free(pcre2_code *code) { pcre2_code_free(code); }
static inline void phonehome_pcre2_match_data_free(pcre2_match_data *md) {
    pcre2_match_data_free(md);
}
