// libFuzzer target for the --text-embeds reader, read_text_embeds (pipelines/text_embeds.hpp), on
// top of the safetensors reader (build and run: docs/fuzzing.md).
//
// Property under test: for any bytes, read_text_embeds either throws one hyvideo::Error whose message
// is a single non-empty line, or gives prompt embeddings (and, when the file has them, negative ones)
// that the sampler can use as they are:
//   * text_states f32 [1, L, 4] and text_states_2 f32 [1, 3] (the dimensions of the config below),
//     every value finite and equal to the file's value converted to f32;
//   * text_mask i64 [1, L], each entry 0 or 1, the ones a non-empty prefix, 1 exactly where the file's
//     mask is 1;
//   * the negative prompt's the same, with its own L.
// Anything else (another exception type, a sanitizer report, a signal) is a bug.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/pipelines/text_embeds.hpp"
#include "memfd_input.hpp"

namespace {

[[noreturn]] void fail(const std::string& what) { hyvideo_fuzz::fail("fuzz_text_embeds", what.c_str()); }

const hyvideo_fuzz::MemfdInput& input() {
    static const hyvideo_fuzz::MemfdInput in("fuzz_text_embeds");
    return in;
}

// Small text dimensions keep the seeds (and so the mutations) small.
const hyvideo::HYVideoConfig& config() {
    static const hyvideo::HYVideoConfig c = [] {
        hyvideo::HYVideoConfig x;
        x.text_states_dim = 4;
        x.text_states_dim_2 = 3;
        return x;
    }();
    return c;
}

bool same_values(const hyvideo::Tensor& got, const hyvideo::Tensor& stored) {
    const auto a = got.to_vector(), b = stored.to_vector();
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!(a[i] == b[i]) || !std::isfinite(a[i])) return false;
    return true;
}

void check(const hyvideo::PromptEmbeds& e, const hyvideo::SafetensorsFile& f, const std::string& prefix) {
    using hyvideo::DType;
    using hyvideo::Shape;
    const hyvideo::Tensor& s = e.text_states;
    if (s.dtype() != DType::f32 || s.dim() != 3 || s.size(0) != 1 || s.size(2) != config().text_states_dim)
        fail(prefix + "text_states: wrong dtype or shape");
    const std::int64_t L = s.size(1);
    if (e.text_states_2.dtype() != DType::f32 || e.text_states_2.shape() != (Shape{1, config().text_states_dim_2}))
        fail(prefix + "text_states_2: wrong dtype or shape");
    if (e.text_mask.dtype() != DType::i64 || e.text_mask.shape() != (Shape{1, L})) fail(prefix + "text_mask: wrong dtype or shape");
    if (!same_values(s, f.tensor(prefix + "text_states"))) fail(prefix + "text_states: a value not finite or not the file's");
    if (!same_values(e.text_states_2, f.tensor(prefix + "text_states_2")))
        fail(prefix + "text_states_2: a value not finite or not the file's");
    const auto m = e.text_mask.to_vector(), stored = f.tensor(prefix + "text_mask").to_vector();
    bool in_prefix = true;
    for (std::int64_t i = 0; i < L; ++i) {
        const float v = m[static_cast<std::size_t>(i)];
        if (v != 0.0f && v != 1.0f) fail(prefix + "text_mask: an entry other than 0 and 1");
        if ((v == 1.0f) != (stored[static_cast<std::size_t>(i)] == 1.0f)) fail(prefix + "text_mask: not the file's");
        if (v == 1.0f && !in_prefix) fail(prefix + "text_mask: the ones are not a prefix");
        in_prefix = v == 1.0f;
    }
    if (L == 0 || m[0] != 1.0f) fail(prefix + "text_mask: no valid token");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = input().write(data, size);
    std::optional<hyvideo::TextEmbedsFile> embeds;
    try {
        embeds = hyvideo::read_text_embeds(path, config());
    } catch (const hyvideo::Error& e) {
        const std::string m = e.what();
        if (m.empty() || m.find('\n') != std::string::npos) fail("an empty or multi-line error message: " + m);
        return 0;
    }
    // Errors past this point are bugs: the file was read once already.
    try {
        const auto f = hyvideo::SafetensorsFile::open(path);
        check(embeds->prompt, f, "");
        if (embeds->negative) check(*embeds->negative, f, "negative_");
        else if (f.contains("negative_text_states") || f.contains("negative_text_mask") || f.contains("negative_text_states_2"))
            fail("a negative prompt in the file was dropped");
    } catch (const hyvideo::Error& e) {
        fail(std::string("reading an accepted file again threw: ") + e.what());
    }
    return 0;
}
