// MAKEFLAGS parsing (makeflags.hpp).
#include "jobserver/makeflags.hpp"

#include <charconv>
#include <vector>

namespace vitte::detail {

namespace {

// MAKEFLAGS words: make separates them with blanks and escapes a blank inside a word with
// a backslash (a fifo path with a space arrives as "fifo:/tmp/a\ b").
std::vector<std::string> words_of(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

bool parse_fd(std::string_view s, int* fd) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *fd);
  return ec == std::errc{} && end == s.data() + s.size() && *fd >= 0;
}

}  // namespace

MakeflagsAuth parse_makeflags(std::string_view makeflags) {
  MakeflagsAuth a;
  const std::vector<std::string> words = words_of(makeflags);
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "--") break;  // variable definitions follow
    // The first word holds make's single-letter flags without a dash ("kj" for -k -j)
    // when it does not start with one.
    if (i == 0 && !w.empty() && w[0] != '-' && w.find('=') == std::string::npos && w.find('j') != std::string::npos)
      a.has_j = true;
    if (w.rfind("-j", 0) == 0) a.has_j = true;
    std::string_view value;
    if (w.rfind("--jobserver-auth=", 0) == 0)
      value = std::string_view(w).substr(17);
    else if (w.rfind("--jobserver-fds=", 0) == 0)
      value = std::string_view(w).substr(16);
    else
      continue;
    // The last jobserver option counts; an earlier one's parse error is forgotten.
    const bool has_j = a.has_j;
    a = MakeflagsAuth{};
    a.has_j = has_j;
    a.option = w;
    if (value.rfind("fifo:", 0) == 0) {
      a.path = std::string(value.substr(5));
      if (a.path.empty())
        a.error = "'" + w + "' names no fifo";
      else
        a.kind = MakeflagsAuth::Kind::Fifo;
      continue;
    }
    const std::size_t comma = value.find(',');
    if (comma == std::string_view::npos || !parse_fd(value.substr(0, comma), &a.read_fd) ||
        !parse_fd(value.substr(comma + 1), &a.write_fd)) {
      a.read_fd = a.write_fd = -1;
      a.error = "'" + w + "' is neither R,W (two file descriptors) nor fifo:PATH";
      continue;
    }
    a.kind = MakeflagsAuth::Kind::Pipe;
  }
  return a;
}

}  // namespace vitte::detail
