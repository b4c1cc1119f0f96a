// Fibers for the emulated CUDA device (fiber.h): the stack switch, fiber stacks with guard pages, and the
// sanitizer fiber interfaces.
#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

#if IKUN_EMU_FIBER_ASM
// ikun_emu_switch_stack(void** saveSp, void* loadSp): pushes the callee-saved registers of the System V ABI
// (rbp, rbx, r12-r15) and the MXCSR and x87 control words on the running stack, stores the stack pointer
// in *saveSp, loads loadSp and pops the same from there. The return goes to where the target context
// called this from, or, for a new fiber, to ikun_emu_fiber_start (createFiber lays out that first frame).
// Caller-saved registers need no saving: the switch is an ordinary call to the compilers on both sides.
//
// ikun_emu_fiber_start: a new fiber's first instruction, reached by the switch's `ret` with the stack
// 16-byte aligned, r12 = the Fiber and rbx = fiberMain. The return address is marked undefined in the call
// frame information so that unwinders and stack traces end here.
asm(R"(
  .text
  .p2align 4
  .globl ikun_emu_switch_stack
  .hidden ikun_emu_switch_stack
  .type ikun_emu_switch_stack, @function
ikun_emu_switch_stack:
  .cfi_startproc
  pushq %rbp
  .cfi_adjust_cfa_offset 8
  pushq %rbx
  .cfi_adjust_cfa_offset 8
  pushq %r12
  .cfi_adjust_cfa_offset 8
  pushq %r13
  .cfi_adjust_cfa_offset 8
  pushq %r14
  .cfi_adjust_cfa_offset 8
  pushq %r15
  .cfi_adjust_cfa_offset 8
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size ikun_emu_switch_stack, .-ikun_emu_switch_stack

  .p2align 4
  .globl ikun_emu_fiber_start
  .hidden ikun_emu_fiber_start
  .type ikun_emu_fiber_start, @function
ikun_emu_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%rbx
  ud2
  .cfi_endproc
  .size ikun_emu_fiber_start, .-ikun_emu_fiber_start
)");
extern "C" void ikun_emu_switch_stack(void** saveSp, void* loadSp);
extern "C" void ikun_emu_fiber_start();
#endif

namespace ikun::emu {
namespace {

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "\nikun CUDA emulator: hard error: %s: %s\n", what, std::strerror(errno));
  std::fflush(stderr);
  std::abort();
}

// The context that is switching away, so that the context that resumes can record the bounds of the stack
// it came from (ASan reports them only to the side that finishes a switch; that is how the host thread's
// stack bounds are learnt). A plain global: fibers switch only under the emulator's launch mutex, and a
// thread_local's address could be cached by the compiler across a switch that resumes on another thread.
FiberContext* g_switchingFrom = nullptr;

// Every context's first instruction after a switch into it: completes the sanitizers' view of the switch.
inline void finishSwitch(FiberContext& self) {
#if defined(__SANITIZE_ADDRESS__)
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(self.fakeStack, &bottom, &size);
  if (g_switchingFrom) {
    g_switchingFrom->stackBottom = bottom;
    g_switchingFrom->stackSize = size;
  }
#else
  (void)self;
#endif
}

[[noreturn]] void fiberMain(Fiber* fiber) {
  finishSwitch(fiber->context);
  fiber->entry(fiber->argument);
  std::fprintf(stderr, "\nikun CUDA emulator: hard error: a fiber's entry function returned\n");
  std::abort();
}

#if !IKUN_EMU_FIBER_ASM
// makecontext passes int arguments: the Fiber pointer in two halves.
void fiberMainFromInts(unsigned high, unsigned low) {
  fiberMain(reinterpret_cast<Fiber*>((uintptr_t(high) << 32) | uintptr_t(low)));
}
#endif

}  // namespace

void captureHostContext(FiberContext& host) {
#if defined(__SANITIZE_THREAD__)
  host.tsanFiber = __tsan_get_current_fiber();
#endif
  (void)host;  // the registers are saved by the first switch away from it; ASan's bounds by the fiber it resumes
}

Fiber* createFiber(void (*entry)(void*), void* argument, size_t stackBytes, unsigned index) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t stack = (stackBytes + page - 1) / page * page;
  auto* fiber = new Fiber;
  fiber->entry = entry;
  fiber->argument = argument;
  fiber->mappingBytes = stack + page;
  // MAP_NORESERVE: only the pages a fiber touches are committed (most kernels use a few KB of stack).
  void* mapping = mmap(nullptr, fiber->mappingBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (mapping == MAP_FAILED) fatal("could not map a fiber stack");
  if (mprotect(mapping, page, PROT_NONE) != 0) fatal("could not protect a fiber stack's guard page");
  fiber->mapping = mapping;
  char* bottom = static_cast<char*>(mapping) + page;
  // Stagger the tops by 64-byte lines: stacks a multiple of the page size apart would otherwise put the
  // busiest frame of every fiber in the same cache sets.
  char* top = bottom + stack - 64 * (index % 48);
#if defined(__SANITIZE_ADDRESS__)
  fiber->context.stackBottom = bottom;
  fiber->context.stackSize = stack;
#endif
#if defined(__SANITIZE_THREAD__)
  fiber->context.tsanFiber = __tsan_create_fiber(0);
#endif
#if IKUN_EMU_FIBER_ASM
  // The frame the first switch pops (see ikun_emu_switch_stack), from the saved stack pointer up:
  // control words, r15, r14, r13, r12 (the Fiber), rbx (fiberMain), rbp (0: the end of frame-pointer
  // chains), the return address (ikun_emu_fiber_start); above it the stack is 16-byte aligned for the call.
  uintptr_t aligned = reinterpret_cast<uintptr_t>(top) & ~uintptr_t(15);
  auto* frame = reinterpret_cast<uint64_t*>(aligned) - 8;
  uint32_t mxcsr = 0;
  uint16_t x87 = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(x87));
  frame[0] = uint64_t(mxcsr) | (uint64_t(x87) << 32);  // the new fiber starts with this thread's FP settings
  frame[1] = 0;                                         // r15
  frame[2] = 0;                                         // r14
  frame[3] = 0;                                         // r13
  frame[4] = reinterpret_cast<uint64_t>(fiber);         // r12
  frame[5] = reinterpret_cast<uint64_t>(&fiberMain);    // rbx
  frame[6] = 0;                                         // rbp
  frame[7] = reinterpret_cast<uint64_t>(&ikun_emu_fiber_start);
  fiber->context.sp = frame;
#else
  if (getcontext(&fiber->context.uc) != 0) fatal("getcontext failed");
  fiber->context.uc.uc_stack.ss_sp = bottom;
  fiber->context.uc.uc_stack.ss_size = size_t(top - bottom);
  fiber->context.uc.uc_link = nullptr;
  const uintptr_t p = reinterpret_cast<uintptr_t>(fiber);
  makecontext(&fiber->context.uc, reinterpret_cast<void (*)()>(&fiberMainFromInts), 2, unsigned(p >> 32),
              unsigned(p & 0xffffffffu));
#endif
  return fiber;
}

void switchFiber(FiberContext& from, FiberContext& to) {
  g_switchingFrom = &from;
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(&from.fakeStack, to.stackBottom, to.stackSize);
#endif
#if defined(__SANITIZE_THREAD__)
  __tsan_switch_to_fiber(to.tsanFiber, 0);
#endif
#if IKUN_EMU_FIBER_ASM
  ikun_emu_switch_stack(&from.sp, to.sp);
#else
  if (swapcontext(&from.uc, &to.uc) != 0) fatal("swapcontext failed");
#endif
  finishSwitch(from);  // running as `from` again
}

}  // namespace ikun::emu
