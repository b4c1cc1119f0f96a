// A tiny registry of named test cases for CUDA code, shared by the emulator's self-test and, later, the tests of
// ikun's kernel families. A case is a function that throws TestFailure (through the CHECK macros) when it fails:
//
//   IKUN_TEST_CASE(lifForward, "LIF forward matches the CPU kernel") {
//     ...launch, copy back...
//     IKUN_CHECK_NEAR(got[i], want[i], 1e-6, "at %d", i);
//   }
//
// A planted case (IKUN_PLANTED_CASE) contains a deliberate bug that a tool must catch; --all skips it and --run
// runs it (test/cuda/emulator.test.ts checks that the right tool reports it). The command line is in
// cuda_test_main.cpp: --list, --run NAME..., --all.
#pragma once
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "../cuda/device.cuh"

namespace ikun::test {

struct TestCase {
  const char* name;
  const char* description;
  const char* plantedFor;  // nullptr for a real test; else the tool that must report the planted bug
  void (*run)();
};

// Registers a case at static-initialisation time; returns a dummy so it can initialise a static.
int registerCase(const TestCase& testCase);

class TestFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const char* file, int line, const std::string& message);
std::string formatMessage(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string formatMessage() { return std::string(); }

}  // namespace ikun::test

#define IKUN_TEST_CAT2(a, b) a##b
#define IKUN_TEST_CAT(a, b) IKUN_TEST_CAT2(a, b)
#define IKUN_TEST_REGISTER(name, description, planted)                                                   \
  static void IKUN_TEST_CAT(ikunTest_, name)();                                                          \
  static const int IKUN_TEST_CAT(ikunTestRegistered_, name) = ::ikun::test::registerCase(                \
      ::ikun::test::TestCase{#name, description, planted, &IKUN_TEST_CAT(ikunTest_, name)});             \
  static void IKUN_TEST_CAT(ikunTest_, name)()
// Names use letters, digits and underscores (they are C++ identifiers); the CLI also accepts '-' for '_'.
#define IKUN_TEST_CASE(name, description) IKUN_TEST_REGISTER(name, description, nullptr)
#define IKUN_PLANTED_CASE(name, tool, description) IKUN_TEST_REGISTER(name, description, tool)

#define IKUN_CHECK(cond, ...)                                                                                  \
  do {                                                                                                         \
    if (!(cond))                                                                                               \
      ::ikun::test::fail(__FILE__, __LINE__, std::string("check failed: " #cond " ") +                          \
                                                 ::ikun::test::formatMessage(__VA_ARGS__));                    \
  } while (0)
#define IKUN_CHECK_EQ(a, b, ...)                                                                               \
  do {                                                                                                         \
    auto ikunA_ = (a);                                                                                         \
    auto ikunB_ = (b);                                                                                         \
    if (!(ikunA_ == ikunB_))                                                                                   \
      ::ikun::test::fail(__FILE__, __LINE__,                                                                   \
                         std::string("check failed: " #a " == " #b " (") + std::to_string(ikunA_) + " vs " +     \
                             std::to_string(ikunB_) + ") " + ::ikun::test::formatMessage(__VA_ARGS__));        \
  } while (0)
#define IKUN_CHECK_NEAR(a, b, tolerance, ...)                                                                  \
  do {                                                                                                         \
    double ikunA_ = double(a), ikunB_ = double(b);                                                             \
    if (!(std::fabs(ikunA_ - ikunB_) <= (tolerance)))                                                          \
      ::ikun::test::fail(__FILE__, __LINE__,                                                                   \
                         std::string("check failed: " #a " ~ " #b " (") + std::to_string(ikunA_) + " vs " +      \
                             std::to_string(ikunB_) + ") " + ::ikun::test::formatMessage(__VA_ARGS__));        \
  } while (0)
// A runtime call that must succeed.
#define IKUN_CUDA_OK(call)                                                                                     \
  do {                                                                                                         \
    cudaError_t ikunStatus_ = (call);                                                                          \
    if (ikunStatus_ != cudaSuccess)                                                                            \
      ::ikun::test::fail(__FILE__, __LINE__, std::string(#call " returned ") + cudaGetErrorName(ikunStatus_)); \
  } while (0)
// A runtime call that must fail with `expected`.
#define IKUN_CUDA_FAILS(call, expected)                                                                        \
  do {                                                                                                         \
    cudaError_t ikunStatus_ = (call);                                                                          \
    if (ikunStatus_ != (expected))                                                                             \
      ::ikun::test::fail(__FILE__, __LINE__, std::string(#call " returned ") + cudaGetErrorName(ikunStatus_) + \
                                                 ", expected " + cudaGetErrorName(expected));                  \
  } while (0)
