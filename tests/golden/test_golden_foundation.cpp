// The first components reproduce their reference fixtures through the same runner as
// `hyvideo golden`, every output compared.
#include "golden_check.hpp"

TEST_CASE("golden rope3d") { check_fixture("rope3d"); }
TEST_CASE("golden timestep_embedder") { check_fixture("timestep_embedder"); }
TEST_CASE("golden small_layers") { check_fixture("small_layers"); }
TEST_CASE("golden scheduler") { check_fixture("scheduler"); }
