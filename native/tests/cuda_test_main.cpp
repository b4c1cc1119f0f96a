// The command line of the CUDA test programs (ikun_emulator_tests_tsan / _asan): runs registered cases.
//   --list          every case, planted ones marked with the tool that must catch them
//   --run NAME...   the named cases (planted ones included)
//   --all           every case that is not planted
// Exit status: 0 when every case that ran passed, 1 when one failed, 2 for a bad command line. A hard error of
// the emulator or a sanitizer report ends the process on its own terms (abort, or ThreadSanitizer's exit 66).
#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_test.h"

namespace ikun::test {
namespace {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> cases;
  return cases;
}

std::string normalise(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

bool runCase(const TestCase& c) {
  std::printf("[ RUN  ] %s\n", c.name);
  std::fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  std::string failure;
  try {
    c.run();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (failure.empty()) {
    std::printf("[   OK ] %s (%.0f ms)\n", c.name, ms);
  } else {
    std::printf("[ FAIL ] %s (%.0f ms)\n         %s\n", c.name, ms, failure.c_str());
  }
  std::fflush(stdout);
  return failure.empty();
}

int usage(const char* program) {
  std::fprintf(stderr, "usage: %s --list | --all | --run NAME [NAME...]\n", program);
  return 2;
}

}  // namespace

int registerCase(const TestCase& testCase) {
  registry().push_back(testCase);
  return 0;
}

void fail(const char* file, int line, const std::string& message) {
  const char* base = std::strrchr(file, '/');
  throw TestFailure(std::string(base ? base + 1 : file) + ":" + std::to_string(line) + ": " + message);
}

std::string formatMessage(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char buffer[1024];
  vsnprintf(buffer, sizeof buffer, fmt, args);
  va_end(args);
  return buffer;
}

}  // namespace ikun::test

int main(int argc, char** argv) {
  using namespace ikun::test;
  std::vector<TestCase> cases = registry();
  std::sort(cases.begin(), cases.end(), [](const TestCase& a, const TestCase& b) { return std::strcmp(a.name, b.name) < 0; });
  if (argc < 2) return usage(argv[0]);
  std::string mode = argv[1];
  std::vector<const TestCase*> selected;
  if (mode == "--list" && argc == 2) {
    for (const TestCase& c : cases) {
      if (c.plantedFor)
        std::printf("%-32s [planted: %s must report it] %s\n", c.name, c.plantedFor, c.description);
      else
        std::printf("%-32s %s\n", c.name, c.description);
    }
    return 0;
  } else if (mode == "--all" && argc == 2) {
    for (const TestCase& c : cases)
      if (!c.plantedFor) selected.push_back(&c);
  } else if (mode == "--run" && argc > 2) {
    for (int i = 2; i < argc; ++i) {
      std::string wanted = normalise(argv[i]);
      auto it = std::find_if(cases.begin(), cases.end(), [&](const TestCase& c) { return wanted == c.name; });
      if (it == cases.end()) {
        std::fprintf(stderr, "no test case named '%s' (see --list)\n", argv[i]);
        return 2;
      }
      selected.push_back(&*it);
    }
  } else {
    return usage(argv[0]);
  }
  int failed = 0;
  for (const TestCase* c : selected) failed += runCase(*c) ? 0 : 1;
  std::printf("%zu case(s) run, %d failed\n", selected.size(), failed);
  return failed == 0 ? 0 : 1;
}
