#include "test_support.hpp"

#include <algorithm>
#include <filesystem>

namespace vitte::test {

std::vector<std::string> shipped_topologies() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(VITTE_TOPOLOGY_DIR))
    if (e.path().extension() == ".xml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace vitte::test
