// A C face for libsentencepiece's C++ API, so Swift can call it without C++ interop.
#ifndef CSENTENCEPIECE_H
#define CSENTENCEPIECE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
typedef struct csp_processor csp_processor;
/// Loads a .model file; on failure returns NULL and writes a message into `error` (size `error_size`).
csp_processor *csp_load(const char *path, char *error, size_t error_size);
void csp_free(csp_processor *p);
int32_t csp_vocab_size(const csp_processor *p);
/// Encodes UTF-8 `text`; returns the number of ids (may exceed `capacity`: call again with more room), or -1 on error.
int64_t csp_encode(const csp_processor *p, const char *text, size_t length, int32_t *ids, int64_t capacity);
/// Decodes ids to UTF-8; returns the byte length (may exceed `capacity`), or -1 on error.
int64_t csp_decode(const csp_processor *p, const int32_t *ids, int64_t count, char *out, int64_t capacity);
#ifdef __cplusplus
}
#endif
#endif
