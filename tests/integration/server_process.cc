#include "tests/integration/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace perturbd::testing {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Forks and execs argv with stdout (and stderr, unless err_fd < 0) redirected. Everything the
// child runs after fork is async-signal-safe: the argv array is built before.
// `extra_env` ("NAME=value") is added to this process's environment for the child.
pid_t Spawn(const std::vector<std::string>& argv, int out_fd, int err_fd,
            const std::vector<std::string>& extra_env = {}) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  for (const std::string& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
    // Close every other descriptor (gRPC's sockets in this process, for example).
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    execve(args[0], args.data(), env.data());
    _exit(127);
  }
  return pid;
}

// Reads fd until EOF or until `deadline`, appending to out.
void ReadAll(int fd, std::string& out, absl::Time deadline) {
  char buffer[4096];
  while (true) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return;
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return;
    out.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace

// $PERTURBD_SERVER_BINARY overrides the build's path (the GPU check runs prebuilt binaries
// on another machine).
std::string ServerBinary() {
  const char* path = std::getenv("PERTURBD_SERVER_BINARY");
  return path != nullptr && *path != '\0' ? path : PERTURBD_SERVER_BINARY;
}
std::string CliBinary() { return PERTURBD_CLI_BINARY; }

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {ServerBinary(), "--listen=127.0.0.1:0",
                                   "--metrics_listen=127.0.0.1:0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  server->pid_ = Spawn(argv, pipe_fds[1], /*err_fd=*/-1);
  close(pipe_fds[1]);
  if (server->pid_ < 0) {
    close(pipe_fds[0]);
    return absl::InternalError("fork failed");
  }
  const int read_fd = pipe_fds[0];
  ServerProcess* self = server.get();
  server->reader_ = std::thread([self, read_fd] {
    char buffer[4096];
    while (true) {
      const ssize_t n = read(read_fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      absl::MutexLock lock(&self->mu_);
      if (n <= 0) {
        self->eof_ = true;
        break;
      }
      self->output_.append(buffer, static_cast<size_t>(n));
    }
    close(read_fd);
  });
  if (!server->WaitForOutput("perturbd listening on ", absl::Seconds(30))) {
    return absl::DeadlineExceededError(
        absl::StrCat("perturbd did not start; output: ", server->Output()));
  }
  // Parse "... on 127.0.0.1:PORT" lines.
  for (absl::string_view line : absl::StrSplit(server->Output(), '\n')) {
    auto port_after = [&line](absl::string_view prefix, int& port) {
      const size_t at = line.find(prefix);
      if (at == absl::string_view::npos) return;
      absl::string_view rest = line.substr(at + prefix.size());
      const size_t colon = rest.rfind(':');
      absl::string_view digits = rest.substr(colon + 1);
      digits = digits.substr(0, digits.find('/'));
      if (!absl::SimpleAtoi(digits, &port)) port = 0;
    };
    port_after("perturbd listening on ", server->port_);
    port_after("perturbd metrics on ", server->metrics_port_);
  }
  if (server->port_ == 0) {
    return absl::InternalError(absl::StrCat("no port in: ", server->Output()));
  }
  return server;
}

ServerProcess::~ServerProcess() {
  if (!exit_status_.has_value() && pid_ > 0) {
    kill(pid_, SIGKILL);
    WaitForExit(absl::Seconds(10));
  }
  if (reader_.joinable()) reader_.join();
}

std::string ServerProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

void ServerProcess::Signal(int signal_number) {
  if (!exit_status_.has_value()) kill(pid_, signal_number);
}

std::optional<int> ServerProcess::WaitForExit(absl::Duration timeout) {
  if (exit_status_.has_value()) return exit_status_;
  const absl::Time deadline = absl::Now() + timeout;
  do {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_status_ = DecodeWaitStatus(status);
      return exit_status_;
    }
    absl::SleepFor(absl::Milliseconds(10));
  } while (absl::Now() < deadline);
  return std::nullopt;
}

std::string ServerProcess::Output() {
  absl::MutexLock lock(&mu_);
  return output_;
}

bool ServerProcess::WaitForOutput(const std::string& needle, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto found = [this, &needle]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return eof_ || output_.find(needle) != std::string::npos;
  };
  mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
  return output_.find(needle) != std::string::npos;
}

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  CommandResult result;
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return result;
  }
  const pid_t pid = Spawn(argv, out_pipe[1], err_pipe[1]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  const absl::Time deadline = absl::Now() + timeout;
  // stderr is small; read it after stdout reached EOF (the child exited or closed it).
  ReadAll(out_pipe[0], result.out, deadline);
  ReadAll(err_pipe[0], result.err, deadline);
  close(out_pipe[0]);
  close(err_pipe[0]);
  while (true) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      result.exit_status = DecodeWaitStatus(status);
      return result;
    }
    if (absl::Now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.exit_status = -1;
      return result;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

pid_t SpawnCommand(const std::vector<std::string>& argv,
                   const std::vector<std::string>& extra_env) {
  const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0) return -1;
  const pid_t pid = Spawn(argv, null_fd, null_fd, extra_env);
  close(null_fd);
  return pid;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path, absl::Duration timeout,
                                    const std::string& host) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv{};
  tv.tv_sec = absl::ToInt64Seconds(timeout);
  tv.tv_usec = absl::ToInt64Microseconds(timeout) % 1000000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: ", host));
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect to ", host, ":", port, ": ", strerror(errno)));
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host, "\r\nConnection: close\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string response;
  const absl::Time deadline = absl::Now() + timeout;
  char buffer[8192];
  while (absl::Now() < deadline) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos || response.find(" 200 ") == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("bad HTTP response: ", response.substr(0, 200)));
  }
  return response.substr(body + 4);
}

std::optional<double> MetricValue(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return std::nullopt;
}

// --- A minimal JSON reader (objects, arrays, strings without \u escapes beyond ASCII,
// numbers, true/false/null), enough for perturbd-cli's output. ---
namespace {

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}

  absl::StatusOr<Json> Parse() {
    absl::StatusOr<Json> value = Value(0);
    if (!value.ok()) return value;
    Skip();
    if (p_ != s_.size()) return Error("trailing characters");
    return value;
  }

 private:
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON: ", what, " at offset ", p_));
  }
  void Skip() {
    while (p_ < s_.size() &&
           (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\t' || s_[p_] == '\r')) {
      ++p_;
    }
  }
  bool Consume(char c) {
    Skip();
    if (p_ < s_.size() && s_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  absl::StatusOr<std::string> String() {
    if (!Consume('"')) return Error("expected a string");
    std::string out;
    while (p_ < s_.size() && s_[p_] != '"') {
      char c = s_[p_++];
      if (c == '\\' && p_ < s_.size()) {
        const char e = s_[p_++];
        if (e == 'n') {
          c = '\n';
        } else if (e == 't') {
          c = '\t';
        } else if (e == 'u' && p_ + 4 <= s_.size()) {
          int code = 0;
          for (int k = 0; k < 4; ++k) {
            code = code * 16 + (std::isdigit(s_[p_ + k]) ? s_[p_ + k] - '0'
                                                         : (std::tolower(s_[p_ + k]) - 'a' + 10));
          }
          p_ += 4;
          c = static_cast<char>(code < 128 ? code : '?');
        } else {
          c = e;
        }
      }
      out.push_back(c);
    }
    if (p_ >= s_.size()) return Error("unterminated string");
    ++p_;
    return out;
  }
  absl::StatusOr<Json> Value(int depth) {
    if (depth > 64) return Error("too deep");
    Skip();
    if (p_ >= s_.size()) return Error("unexpected end");
    const char c = s_[p_];
    Json json;
    if (c == '{') {
      ++p_;
      std::map<std::string, Json> object;
      if (!Consume('}')) {
        do {
          absl::StatusOr<std::string> key = String();
          if (!key.ok()) return key.status();
          if (!Consume(':')) return Error("expected ':'");
          absl::StatusOr<Json> v = Value(depth + 1);
          if (!v.ok()) return v;
          object[*key] = *std::move(v);
        } while (Consume(','));
        if (!Consume('}')) return Error("expected '}'");
      }
      json.value = std::move(object);
    } else if (c == '[') {
      ++p_;
      std::vector<Json> array;
      if (!Consume(']')) {
        do {
          absl::StatusOr<Json> v = Value(depth + 1);
          if (!v.ok()) return v;
          array.push_back(*std::move(v));
        } while (Consume(','));
        if (!Consume(']')) return Error("expected ']'");
      }
      json.value = std::move(array);
    } else if (c == '"') {
      absl::StatusOr<std::string> str = String();
      if (!str.ok()) return str.status();
      json.value = *std::move(str);
    } else if (s_.compare(p_, 4, "true") == 0) {
      p_ += 4;
      json.value = true;
    } else if (s_.compare(p_, 5, "false") == 0) {
      p_ += 5;
      json.value = false;
    } else if (s_.compare(p_, 4, "null") == 0) {
      p_ += 4;
      json.value = nullptr;
    } else {
      const char* begin = s_.c_str() + p_;
      char* end = nullptr;
      const double v = std::strtod(begin, &end);
      if (end == begin) return Error("expected a value");
      p_ += static_cast<size_t>(end - begin);
      json.value = v;
    }
    return json;
  }

  const std::string& s_;
  size_t p_ = 0;
};

void FlattenInto(const Json& json, std::vector<double>& out) {
  if (const double* v = std::get_if<double>(&json.value)) {
    out.push_back(*v);
  } else if (const auto* array = std::get_if<std::vector<Json>>(&json.value)) {
    for (const Json& item : *array) FlattenInto(item, out);
  }
}

}  // namespace

const Json& Json::operator[](const std::string& key) const {
  return std::get<std::map<std::string, Json>>(value).at(key);
}

bool Json::has(const std::string& key) const {
  const auto* object = std::get_if<std::map<std::string, Json>>(&value);
  return object != nullptr && object->count(key) > 0;
}

std::vector<double> Json::Flatten() const {
  std::vector<double> out;
  FlattenInto(*this, out);
  return out;
}

absl::StatusOr<Json> ParseJson(const std::string& text) { return JsonParser(text).Parse(); }

}  // namespace perturbd::testing
