#include "cli_support.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace vitte::clitest {

CliRun shell(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

CliRun vitte_sched(const std::string& args, const std::string& env, const std::string& wrapper) {
  return shell((env.empty() ? "" : "env " + env + " ") + wrapper + " " + VITTE_SCHED_BIN + " " + args + " 2>&1");
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

namespace {
fs::path stderr_file() { return fs::temp_directory_path() / ("vitte-cli-stderr-" + std::to_string(getpid())); }
}  // namespace

CliStreams vitte_sched_streams(const std::string& args, const std::string& redirect) {
  const fs::path err = stderr_file();
  const CliRun run = shell(std::string(VITTE_SCHED_BIN) + " " + args + " 2>" + err.string() + " " + redirect);
  CliStreams r{run.status, run.output, slurp(err)};
  fs::remove(err);
  return r;
}

CliStreams vitte_sched_into_closed_pipe(std::vector<std::string> args) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, "", "pipe failed"};
  close(fds[0]);
  const fs::path err = stderr_file();
  args.insert(args.begin(), VITTE_SCHED_BIN);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    std::signal(SIGPIPE, SIG_IGN);  // stays ignored across exec
    const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fds[1], 1);
    dup2(e, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  int st = 0;
  waitpid(pid, &st, 0);
  CliStreams r{WIFEXITED(st) ? WEXITSTATUS(st) : -1, "", slurp(err)};
  fs::remove(err);
  return r;
}

fs::path make_temp_dir(const std::string& tag) {
  std::string tmpl = (fs::temp_directory_path() / ("vitte-cli-" + tag + "-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
  return tmpl;
}

fs::path make_tree() {
  const fs::path root = make_temp_dir("tree");
  fs::create_directories(root / "d");
  std::ofstream(root / "a.h") << "#include \"b.h\"\nint a(); // #include \"f.h\" in a comment\n";
  std::ofstream(root / "b.h") << "#  include <c.h>\n/* #include <a.h> */ int b = 0x10;\n";
  std::ofstream(root / "c.h") << "#pragma once\nconst char* s = \"#include <a.h>\";\n";
  std::ofstream(root / "d" / "e.h") << "#include \"../a.h\"\n#include <c.h>\n";
  std::ofstream(root / "f.h") << "#include <missing.h>\n";
  return root;
}

}  // namespace vitte::clitest
