#pragma once
// Golden case `rope3d`: the 3D RoPE tables for each configured (rope_dim_list, sizes, theta), and
// their application to q and k in [B, S, H, D] layout.
#include <string>

#include "hyvideo/golden/case_result.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/nn/positional_embedding.hpp"

namespace hyvideo::golden {

template <Backend B>
CaseResult run_rope3d(const Fixture& f) {
    using V = std::vector<std::int64_t>;
    CaseResult r;
    const auto& tables = f.config().at("tables");
    for (std::size_t i = 0; i < tables.size(); ++i) {
        const auto& t = tables[i];
        const RopeTables rope = rope3d_tables(Fixture::get<V>(t, "rope_dim_list"), Fixture::get<V>(t, "sizes"),
                                              Fixture::get<float>(t, "theta"));
        r.outputs["cos" + std::to_string(i)] = rope.cos;
        r.outputs["sin" + std::to_string(i)] = rope.sin;
    }
    const auto& a = f.config().at("apply");
    HYVIDEO_CHECK(Fixture::get<std::string>(a, "layout") == "B S H D", "rope3d: unsupported layout ",
                  a.at("layout").dump());
    const RopeTables host = rope3d_tables(Fixture::get<V>(a, "rope_dim_list"), Fixture::get<V>(a, "sizes"),
                                          Fixture::get<float>(a, "theta"));
    const RopeTables rope{B::upload(host.cos), B::upload(host.sin)};
    r.outputs["q_rot"] = B::download(Rope3DEmbedding::apply<B>(B::upload(f.input("q")), rope));
    r.outputs["k_rot"] = B::download(Rope3DEmbedding::apply<B>(B::upload(f.input("k")), rope));
    return r;
}

}  // namespace hyvideo::golden
