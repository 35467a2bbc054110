#pragma once
// The bf16 tile products of the CPU flash attention (attention.hpp), on AVX512_BF16's VDPBF16PS.
//
// In the bf16 compute mode q, k, v and the probabilities are rounded to bf16 before each product and
// everything else stays f32: the scores and the output accumulate in f32, the softmax (maximum,
// exponentials, sums) runs on f32 scores, and the row sums add the f32 probabilities. That is what
// flash attention does in bf16 on a GPU and what PyTorch's CPU attention does for bf16 tensors, and it
// is what the official model runs in.
//
// VDPBF16PS multiplies pairs: lane i of the f32 accumulator gains a[2i]·b[2i] + a[2i+1]·b[2i+1], so one
// instruction does the work of two f32 FMAs. The attention kernel keeps its layout (the 64 queries of a
// tile are the vector lanes) and pairs up the summed dimension instead:
//   Sᵀ = K·Qᵀ sums over d: Qᵀ is stored as [D/2][64] pairs (q[i][2p], q[i][2p+1]) and K's row j read as
//        D/2 pairs, one broadcast per pair;
//   Oᵀ += Vᵀ·Pᵀ sums over the keys j: Pᵀ is stored as [keys/2][64] pairs (p[2p][i], p[2p+1][i]) and
//        V as [keys/2][D] pairs (v[2p][d], v[2p+1][d]); an odd last key is paired with a zero key.
// Everything here is always_inline with the instruction set named, and is compiled only into
// attention.hpp's bf16 entry point, which the CPU's support for AVX512_BF16 gates at run time.
#include <algorithm>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HYVIDEO_ATTENTION_BF16_X86 1
#else
#define HYVIDEO_ATTENTION_BF16_X86 0
#endif

namespace hyvideo::cpu_detail::attention_bf16 {

// Whether this CPU runs the bf16 tile products (the f32 kernel serves otherwise).
inline bool supported() {
#if HYVIDEO_ATTENTION_BF16_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

#if HYVIDEO_ATTENTION_BF16_X86

#ifdef __clang__
#define HYVIDEO_BF16_TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma"
#else
#define HYVIDEO_BF16_TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma,prefer-vector-width=512"
#endif
#define HYVIDEO_BF16_INLINE [[gnu::always_inline]] __attribute__((target(HYVIDEO_BF16_TARGET))) inline

// Lanes per tile row: the attention kernel's query tile (four vectors of 16 f32 or 16 bf16 pairs).
inline constexpr std::int64_t kLanes = 64;

// dst[x] = (bf16(a[x]), bf16(b[x])) as one 32-bit pair, low half a, for x < n; b null pairs with zeros.
HYVIDEO_BF16_INLINE void interleave_rows(const float* a, const float* b, std::uint32_t* dst, std::int64_t n) {
    // cvtne2ps puts bf16(a) in the 16 low halves and bf16(b) in the 16 high ones; the permutation
    // interleaves them: output word 2i takes word i, word 2i + 1 takes word 16 + i.
    alignas(64) static constexpr std::uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                                                  21, 6, 22, 7, 23, 8,  24, 9,  25, 10, 26,
                                                                  11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i order = _mm512_load_si512(kInterleave);
    for (std::int64_t x = 0; x < n; x += 16) {
        const auto mask = static_cast<__mmask16>(n - x >= 16 ? 0xFFFF : (1u << (n - x)) - 1u);
        const __m512 va = _mm512_maskz_loadu_ps(mask, a + x);
        const __m512 vb = b ? _mm512_maskz_loadu_ps(mask, b + x) : _mm512_setzero_ps();
        const __m512i both = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(vb, va));
        _mm512_mask_storeu_epi32(dst + x, mask, _mm512_permutexvar_epi16(order, both));
    }
}

// dst[x] = bf16(src[x]) for x < n (round to nearest even).
HYVIDEO_BF16_INLINE void round_row(const float* src, std::uint16_t* dst, std::int64_t n) {
    for (std::int64_t x = 0; x < n; x += 16) {
        const auto mask = static_cast<__mmask16>(n - x >= 16 ? 0xFFFF : (1u << (n - x)) - 1u);
        const __m256i h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + x)));
        _mm256_mask_storeu_epi16(dst + x, mask, h);
    }
}

// C[r][0, 64) (+)= Σ_{k < depth} A(r, k)·B[k][0, 64) for r < Rows, where A(r, k) = a[r·a_row + k·a_col]
// is a bf16 pair broadcast to every lane, B a [depth][64] array of pairs and C rows of 64 f32; a new C
// (not Accumulate) is multiplied by `scale`. Rows × 4 accumulators: 24 of the 32 registers at Rows = 6.
template <int Rows, bool Accumulate>
HYVIDEO_BF16_INLINE void pair_tile(const std::uint32_t* a, std::int64_t a_row, std::int64_t a_col,
                                   const std::uint32_t* b, std::int64_t depth, float* c, float scale) {
    __m512 acc[Rows][4];
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 4
        for (int x = 0; x < 4; ++x)
            acc[r][x] = Accumulate ? _mm512_loadu_ps(c + r * kLanes + 16 * x) : _mm512_setzero_ps();
    for (std::int64_t k = 0; k < depth; ++k) {
        __m512bh bk[4];
#pragma GCC unroll 4
        for (int x = 0; x < 4; ++x) bk[x] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b + k * kLanes + 16 * x));
#pragma GCC unroll 8
        for (int r = 0; r < Rows; ++r) {
            const __m512bh ar = reinterpret_cast<__m512bh>(
                _mm512_set1_epi32(static_cast<int>(a[r * a_row + k * a_col])));
#pragma GCC unroll 4
            for (int x = 0; x < 4; ++x) acc[r][x] = _mm512_dpbf16_ps(acc[r][x], ar, bk[x]);
        }
    }
    const __m512 s = _mm512_set1_ps(scale);
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 4
        for (int x = 0; x < 4; ++x)
            _mm512_storeu_ps(c + r * kLanes + 16 * x, Accumulate ? acc[r][x] : _mm512_mul_ps(acc[r][x], s));
}

template <bool Accumulate, int Rows = 5>
HYVIDEO_BF16_INLINE void pair_tile_tail(int rows, const std::uint32_t* a, std::int64_t a_row, std::int64_t a_col,
                                        const std::uint32_t* b, std::int64_t depth, float* c, float scale) {
    if constexpr (Rows >= 1) {
        if (rows == Rows) pair_tile<Rows, Accumulate>(a, a_row, a_col, b, depth, c, scale);
        else pair_tile_tail<Accumulate, Rows - 1>(rows, a, a_row, a_col, b, depth, c, scale);
    }
}

// C (rows × 64) (+)= A (rows × depth pairs, broadcast) · B (depth × 64 pairs), in blocks of six rows.
template <bool Accumulate>
HYVIDEO_BF16_INLINE void pair_product(std::int64_t rows, const std::uint32_t* a, std::int64_t a_row,
                                      std::int64_t a_col, const std::uint32_t* b, std::int64_t depth, float* c,
                                      float scale = 1.0f) {
    constexpr int kRows = 6;
    std::int64_t r0 = 0;
    for (; r0 + kRows <= rows; r0 += kRows)
        pair_tile<kRows, Accumulate>(a + r0 * a_row, a_row, a_col, b, depth, c + r0 * kLanes, scale);
    if (r0 < rows)
        pair_tile_tail<Accumulate>(static_cast<int>(rows - r0), a + r0 * a_row, a_row, a_col, b, depth,
                                   c + r0 * kLanes, scale);
}

#undef HYVIDEO_BF16_INLINE

#endif  // HYVIDEO_ATTENTION_BF16_X86

}  // namespace hyvideo::cpu_detail::attention_bf16
