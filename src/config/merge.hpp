// How a config's runtime settings reach Options: one table (merge.cpp), a row per setting.
#pragma once

#include <string>

#include "vitte/config.hpp"
#include "vitte/scheduler.hpp"

namespace vitte::detail {

// Reads VITTE_CONFIG once (when Options::config is unset) and takes the runtime settings a
// config may make: set in one place they are taken from there; set in both they must agree
// (the rule of Config::merged_with), else a ConfigError names the file, line and key.
Options merged_with_config(Options o);

// "config 'FILE' line N", where the config sets `key` ("config 'FILE'" when no line is known).
std::string config_at(const Config& c, const std::string& key);

// The ConfigError of a setting made in both places with different values: names the file,
// the line and the key, and shows both.
[[noreturn]] void config_conflict(const Config& c, const std::string& key, const std::string& code,
                                  const std::string& file);

}  // namespace vitte::detail
