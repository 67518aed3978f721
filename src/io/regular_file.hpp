// Reading a user-named file (a config, a topology XML) that must be a regular file of
// bounded size: a directory, a FIFO, a device or an oversized file is refused with a
// sentence saying what the path is, never read as empty, endlessly, or blocked on.
#pragma once

#include <cstddef>
#include <string>

namespace vitte::detail {

// What a stat() mode is, as a phrase: "a directory", "a FIFO", "a regular file", ...
const char* file_kind(unsigned mode);

// Reads all of `path` into *text. Opens with O_NONBLOCK before fstat, so a FIFO cannot
// block the caller; anything that is not a regular file, or holds more than `max_bytes`
// (checked by fstat and again while reading, in case the file grows), is refused.
// On failure returns false and sets *why to a phrase such as "is a directory, not a
// regular file" or "is too large: 2000000 bytes, more than the 1048576 allowed", meant to
// follow the path in the caller's message.
bool read_regular_file(const std::string& path, std::size_t max_bytes, std::string* text, std::string* why);

}  // namespace vitte::detail
