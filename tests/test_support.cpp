#include "test_support.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

namespace vitte::test {

std::vector<std::string> shipped_topologies() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(VITTE_TOPOLOGY_DIR))
    if (e.path().extension() == ".xml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<ShippedConfig> shipped_configs() {
  const std::vector<std::string> machines = shipped_topologies();
  std::vector<ShippedConfig> out;
  for (const auto& e : std::filesystem::directory_iterator(VITTE_TOPOLOGY_DIR)) {
    if (e.path().extension() != ".toml") continue;
    ShippedConfig c{e.path().string(), ""};
    for (const std::string& xml : machines) {
      const std::string stem = xml.substr(0, xml.size() - 4) + ".";  // "DIR/MACHINE."
      if (c.toml.compare(0, stem.size(), stem) == 0 && xml.size() > c.xml.size()) c.xml = xml;
    }
    out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const ShippedConfig& a, const ShippedConfig& b) { return a.toml < b.toml; });
  return out;
}

std::size_t thread_count() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoul(line.substr(8));
  return 0;
}

}  // namespace vitte::test
