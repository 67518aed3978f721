// MAKEFLAGS parsing (makeflags.hpp).
#include "jobserver/makeflags.hpp"

#include <sys/stat.h>

#include <charconv>
#include <cstdlib>
#include <string>
#include <vector>

#include "jobserver/client.hpp"

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

namespace {

// The pipe descriptors MAKEFLAGS named when the program started, as they were then: made
// before main() (a constructor of this library, so before the program opens anything
// that could take the numbers make closed).
struct StartFds {
  bool named = false, open = false, same = false;
  int rfd = -1, wfd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
};
StartFds g_start;

[[gnu::constructor]] void note_start_fds() {
  const char* env = std::getenv("MAKEFLAGS");
  if (env == nullptr) return;
  const MakeflagsAuth a = parse_makeflags(env);
  if (a.kind != MakeflagsAuth::Kind::Pipe) return;
  g_start.named = true;
  g_start.rfd = a.read_fd;
  g_start.wfd = a.write_fd;
  struct stat r {}, w {};
  g_start.open = fstat(a.read_fd, &r) == 0 && fstat(a.write_fd, &w) == 0;
  g_start.same = g_start.open && r.st_dev == w.st_dev && r.st_ino == w.st_ino;
  g_start.dev = r.st_dev;
  g_start.ino = r.st_ino;
}

}  // namespace

bool same_pipe_as_at_start(const MakeflagsAuth& a, std::string* why) {
  const std::string fds = std::to_string(a.read_fd) + "," + std::to_string(a.write_fd);
  if (g_start.named && g_start.rfd == a.read_fd && g_start.wfd == a.write_fd) {
    if (!g_start.open) {
      *why = "file descriptors " + fds + " were not open when the program started (make hands its jobserver only to "
             "recipes it knows run a make: put + before the command, or use $(MAKE) in it)";
      return false;
    }
    if (!g_start.same) {
      *why = "file descriptors " + fds + " were two different files when the program started, not one pipe";
      return false;
    }
  }
  struct stat r {}, w {};
  if (fstat(a.read_fd, &r) != 0 || fstat(a.write_fd, &w) != 0) return true;  // reopen_fd() says which
  if (r.st_dev != w.st_dev || r.st_ino != w.st_ino) {
    *why = "file descriptors " + fds + " are two different files, not the two ends of the jobserver's pipe";
    return false;
  }
  if (g_start.named && g_start.rfd == a.read_fd && (r.st_dev != g_start.dev || r.st_ino != g_start.ino)) {
    *why = "file descriptors " + fds + " are another pipe than the one make handed the program at its start";
    return false;
  }
  return true;
}

}  // namespace vitte::detail
