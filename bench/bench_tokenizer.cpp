// Tokenizer throughput: MB of UTF-8 text per second through the Llama 3 and the CLIP tokenizer.
//
//   bench_tokenizer [--runs N] [--assets DIR]
//
// The text is a deterministic mix of prompt-like sentences (English, Chinese, and a mixed set with
// numbers, punctuation, accents, emoji and other scripts), about 1 MB of each, cut into prompts of a
// few hundred bytes and encoded one prompt per call as the pipelines do, without truncation (CLIP's
// tokenize(), so that every byte is tokenized). Each figure is the median of `runs` timed passes after
// one untimed warm-up pass, twice: with the word cache warm (prompts reuse words) and cleared before
// every prompt (every word computed: the worst case). The load time of each tokenizer is printed too.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "hyvideo/text/clip_tokenizer.hpp"
#include "hyvideo/text/llama_tokenizer.hpp"
#include "timing.hpp"

namespace {

// ~`bytes` of prompts built from `parts` at random (fixed seed), each prompt about 200-400 bytes.
std::vector<std::string> make_prompts(const std::vector<std::string_view>& parts, std::size_t bytes, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> pick(0, parts.size() - 1), len(200, 400);
    std::vector<std::string> prompts;
    std::size_t total = 0;
    while (total < bytes) {
        std::string p;
        const std::size_t target = len(rng);
        while (p.size() < target) p += parts[pick(rng)];
        total += p.size();
        prompts.push_back(std::move(p));
    }
    return prompts;
}

std::size_t total_bytes(const std::vector<std::string>& prompts) {
    std::size_t n = 0;
    for (const auto& p : prompts) n += p.size();
    return n;
}

template <class Encode>
double mb_per_s(const std::vector<std::string>& prompts, int runs, Encode&& encode) {
    std::size_t sink = 0;
    const double s = hyvideo::bench::median_seconds(runs, [&] {
        for (const auto& p : prompts) sink += encode(p);
    });
    if (sink == 0) std::puts("");  // keeps the work observable
    return static_cast<double>(total_bytes(prompts)) / s / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 5;
    std::filesystem::path assets = std::filesystem::path(HYVIDEO_SOURCE_DIR) / "assets" / "tokenizers";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view flag = argv[i];
        if (flag == "--runs") runs = std::max(1, std::atoi(argv[i + 1]));
        else if (flag == "--assets") assets = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: %s [--runs N] [--assets DIR]\n", argv[0]);
            return 2;
        }
    }

    const auto t0 = std::chrono::steady_clock::now();
    const hyvideo::text::LlamaTokenizer llama(assets / "llama3-llava");
    const auto t1 = std::chrono::steady_clock::now();
    const hyvideo::text::ClipTokenizer clip(assets / "clip-vit-large-patch14");
    const auto t2 = std::chrono::steady_clock::now();
    std::printf("load: Llama 3 tokenizer.json %.2f s, CLIP vocab.json + merges.txt %.2f s\n",
                std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count());

    const std::vector<std::string_view> english = {
        "A cat walks on the grass, realistic style. ", "The camera slowly zooms in on a lighthouse at dusk. ",
        "Two knights fighting with swords in a medieval castle courtyard, sparks flying. ",
        "Close-up of raindrops sliding down a window; neon lights blur behind. ",
        "An astronaut rides a horse across the surface of Mars, dust clouds rising. ",
        "Cinematic lighting, shallow depth of field, 35mm film grain. ", "Golden hour, slow motion, 4K. ",
        "A little girl in a yellow raincoat jumps into a puddle, water splashes everywhere. ",
        "Drone shot flying through a cyberpunk city at night, reflections on wet streets. ",
        "It's a quiet morning; the old fisherman doesn't say a word. ",
    };
    const std::vector<std::string_view> chinese = {
        "一只猫在草地上奔跑，写实风格。",
        "夕阳下，一位老人坐在湖边钓鱼，水面波光粼粼。",
        "镜头缓缓拉远，",
        "赛博朋克风格的城市夜景，霓虹灯闪烁，飞行汽车穿梭在高楼之间。",
        "熊猫在竹林里吃竹子，阳光透过竹叶洒下斑驳的光影。",
        "电影感，慢动作，",
        "一群孩子在乡间小路上放风筝，蓝天白云，温暖的色调。",
    };
    const std::vector<std::string_view> mixed = {
        "Version v1.2.3-beta, 1,000,000 people paid $1,234.56 on 2024-05-01. ",
        "café naïve résumé Zürich ",
        "Привет, мир! ",
        "Γειά σου Κόσμε ",
        "こんにちは、世界！",
        "안녕하세요 세계! ",
        "مرحبا بالعالم ",
        "🐱🐶 thumbs 👍🏽 family 👨‍👩‍👧 ",
        "https://example.com/path?q=1&lang=en#top ",
        "\t\tindented\r\nline ",
        "中文English混合Mixed文本text ",
        "∑∫√∞ ∂x/∂t = α∇²x ",
        "<|eot_id|> <image> ",
        "A steaming cup of coffee on a wooden table by the window. ",
    };
    struct Corpus {
        const char* name;
        std::vector<std::string> prompts;
    };
    const Corpus corpora[] = {
        {"English", make_prompts(english, 1 << 20, 1)},
        {"Chinese", make_prompts(chinese, 1 << 20, 2)},
        {"mixed", make_prompts(mixed, 1 << 20, 3)},
    };

    std::printf("MB/s (MB = 10^6 bytes of UTF-8), median of %d passes, one prompt of 200-400 bytes per call\n", runs);
    std::printf("%-10s %8s %14s %14s %14s %14s\n", "text", "MB", "Llama warm", "Llama cold", "CLIP warm", "CLIP cold");
    for (const Corpus& c : corpora) {
        const auto llama_warm = [&](const std::string& p) { return llama.encode(p).size(); };
        const auto llama_cold = [&](const std::string& p) {
            llama.clear_cache();
            return llama.encode(p).size();
        };
        const auto clip_warm = [&](const std::string& p) { return clip.tokenize(p).size(); };
        const auto clip_cold = [&](const std::string& p) {
            clip.clear_cache();
            return clip.tokenize(p).size();
        };
        std::printf("%-10s %8.2f %14.2f %14.2f %14.2f %14.2f\n", c.name, total_bytes(c.prompts) / 1e6,
                    mb_per_s(c.prompts, runs, llama_warm), mb_per_s(c.prompts, runs, llama_cold),
                    mb_per_s(c.prompts, runs, clip_warm), mb_per_s(c.prompts, runs, clip_cold));
    }
    return 0;
}
