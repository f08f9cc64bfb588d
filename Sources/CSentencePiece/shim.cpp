#include "csentencepiece.h"
#include <sentencepiece_processor.h>
#include <cstring>
#include <string>
#include <vector>

struct csp_processor { sentencepiece::SentencePieceProcessor sp; };

extern "C" csp_processor *csp_load(const char *path, char *error, size_t error_size) {
    auto *p = new csp_processor();
    auto status = p->sp.Load(path);
    if (!status.ok()) {
        if (error && error_size) { std::strncpy(error, status.ToString().c_str(), error_size - 1); error[error_size - 1] = 0; }
        delete p;
        return nullptr;
    }
    return p;
}
extern "C" void csp_free(csp_processor *p) { delete p; }
extern "C" int32_t csp_vocab_size(const csp_processor *p) { return p->sp.GetPieceSize(); }
extern "C" int64_t csp_encode(const csp_processor *p, const char *text, size_t length, int32_t *ids, int64_t capacity) {
    std::vector<int> out;
    if (!p->sp.Encode(std::string(text, length), &out).ok()) return -1;
    for (int64_t i = 0; i < (int64_t)out.size() && i < capacity; i++) ids[i] = out[i];
    return (int64_t)out.size();
}
extern "C" int64_t csp_decode(const csp_processor *p, const int32_t *ids, int64_t count, char *out, int64_t capacity) {
    std::vector<int> in(ids, ids + count);
    std::string text;
    if (!p->sp.Decode(in, &text).ok()) return -1;
    if ((int64_t)text.size() <= capacity) std::memcpy(out, text.data(), text.size());
    return (int64_t)text.size();
}
