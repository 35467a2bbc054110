// The nn layers reproduce their reference fixtures through the same runner as `hyvideo golden`, every
// output compared: the 3D RoPE tables and their application, the timestep embedder, and the small
// layers (MLPEmbedder, PatchEmbed, RMSNorm, the GELU-tanh MLP, with the DiT's FinalLayer).
#include "../golden/golden_check.hpp"

TEST_CASE("golden rope3d") { check_fixture("rope3d"); }
TEST_CASE("golden timestep_embedder") { check_fixture("timestep_embedder"); }
TEST_CASE("golden small_layers") { check_fixture("small_layers"); }
