#include "io/regular_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vitte::detail {

const char* file_kind(unsigned mode) {
  const mode_t m = static_cast<mode_t>(mode);
  if (S_ISREG(m)) return "a regular file";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "neither a file nor a directory";
}

namespace {
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

bool read_regular_file(const std::string& path, std::size_t max_bytes, std::string* text, std::string* why) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const Fd f{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
  if (f.fd < 0) {
    *why = errno == ENOENT ? std::string("does not exist") : "cannot be read: " + std::string(std::strerror(errno));
    return false;
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) {
    *why = "cannot be read: " + std::string(std::strerror(errno));
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *why = "is " + std::string(file_kind(st.st_mode)) + ", not a regular file";
    return false;
  }
  const auto too_large = [&](std::size_t n, const char* at_least) {
    *why = "is too large: " + std::string(at_least) + std::to_string(n) + " bytes, more than the " +
           std::to_string(max_bytes) + " allowed";
    return false;
  };
  if (static_cast<std::size_t>(st.st_size) > max_bytes) return too_large(static_cast<std::size_t>(st.st_size), "");
  text->assign(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  for (;;) {
    if (got == text->size()) {
      if (got > max_bytes) return too_large(got, "at least ");
      text->resize(got + 4096 > max_bytes + 1 ? max_bytes + 1 : got + 4096);  // the file may have grown
      if (got == text->size()) return too_large(got, "at least ");
    }
    const ssize_t n = ::read(f.fd, text->data() + got, text->size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      *why = "cannot be read: " + std::string(std::strerror(errno));
      return false;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text->resize(got);
  return true;
}

}  // namespace vitte::detail
