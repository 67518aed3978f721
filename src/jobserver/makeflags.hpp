// What MAKEFLAGS says about a jobserver. GNU make passes its jobserver to the commands it
// runs in MAKEFLAGS: `--jobserver-auth=R,W` (two inherited pipe descriptors; make 4.2 and
// 4.3, Debian 12's), `--jobserver-fds=R,W` (the same, make 4.1 and earlier) or
// `--jobserver-auth=fifo:PATH` (a named pipe; make 4.4, and the form ninja's jobserver
// pool and other tools hand out). The last such option counts, as make reads it. A `-j`
// without any of them (make's unlimited `-j`, or a plain `-jN` given to a tool that was not
// started by make) names no jobserver: there is nothing to take part in.
#pragma once

#include <string>
#include <string_view>

namespace vitte::detail {

struct MakeflagsAuth {
  enum class Kind { None, Pipe, Fifo };
  Kind kind = Kind::None;
  int read_fd = -1, write_fd = -1;  // Kind::Pipe
  std::string path;                 // Kind::Fifo
  std::string option;               // the option as found ("--jobserver-auth=3,4"), for messages
  bool has_j = false;               // a -j flag, with or without a jobserver
  std::string error;                // a jobserver option that cannot be parsed; kind is None
};

MakeflagsAuth parse_makeflags(std::string_view makeflags);

}  // namespace vitte::detail
