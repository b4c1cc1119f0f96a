// Fibers for the emulated CUDA device's serial schedules: user-space stacks switched without a system call,
// so that every CUDA thread of a block can run on one host thread and the turn can pass at a barrier for the
// price of a function call (glibc's swapcontext makes an rt_sigprocmask system call per switch, and one host
// thread per CUDA thread costs a kernel wake-up per thread per barrier: about 16 ms per 256-thread barrier
// round on a loaded 2-core machine).
//
// A switch saves the callee-saved registers, the stack pointer and the floating-point control words (MXCSR
// and the x87 control word, callee-saved in the x86-64 System V ABI) of the running context and loads those
// of the target. Other architectures fall back to ucontext (correct, one system call per switch).
//
// ThreadSanitizer and AddressSanitizer are told about every switch through their fiber interfaces, so that
// they keep one shadow stack per fiber, know which stack is current (ASan: stack bounds, fake stacks for
// use-after-return; TSan: one thread state per fiber). TSan switches synchronise (each switch orders the
// fiber that ran before the one that runs next), which is what one host thread running them in turn does.
//
// Not thread-safe: the emulator switches fibers only while it holds its launch mutex (one launch at a time).
#pragma once
#include <cstddef>

// The hand-written switch on x86-64; elsewhere, or with IKUN_EMU_FIBERS_UCONTEXT defined (to test the fallback
// on x86-64), ucontext.
#if defined(__x86_64__) && !defined(IKUN_EMU_FIBERS_UCONTEXT)
#define IKUN_EMU_FIBER_ASM 1
#else
#define IKUN_EMU_FIBER_ASM 0
#endif

#if !IKUN_EMU_FIBER_ASM
#include <ucontext.h>
#endif

namespace ikun::emu {

// What a context leaves behind while it does not run: a fiber's, or a host thread's own (its native stack).
struct FiberContext {
#if IKUN_EMU_FIBER_ASM
  void* sp = nullptr;  // the saved registers lie on the context's stack, at sp
#else
  ucontext_t uc;
#endif
#if defined(__SANITIZE_ADDRESS__)
  void* fakeStack = nullptr;           // ASan's fake stack of this context while it does not run
  const void* stackBottom = nullptr;   // its stack's bounds, as ASan wants them to switch to it
  size_t stackSize = 0;
#endif
#if defined(__SANITIZE_THREAD__)
  void* tsanFiber = nullptr;           // TSan's thread state for this context
#endif
};

// The calling host thread's own context, to switch from into fibers and back. Call it on that thread (each
// time it starts a round of switching: its stack bounds are learnt by the first fiber it switches to).
void captureHostContext(FiberContext& host);

struct Fiber {
  FiberContext context;
  void* mapping = nullptr;  // the mmap of the guard page and the stack
  size_t mappingBytes = 0;
  void (*entry)(void*) = nullptr;
  void* argument = nullptr;
};

// A fiber with a stack of stackBytes (rounded up to pages) above a PROT_NONE guard page, so that an overflow
// faults at once (SIGSEGV; AddressSanitizer reports a stack-overflow) instead of writing over another
// fiber's stack. entry(argument) runs on the first switch to it and must never return. Fibers are meant to
// be pooled and reused: creating one costs an mmap and an mprotect (and a TSan thread state). index only
// staggers the stack tops (so that the first frames of many fibers do not all map to the same cache sets).
Fiber* createFiber(void (*entry)(void*), void* argument, size_t stackBytes, unsigned index);

// Saves the running context into `from`, resumes `to`, and returns when some context switches back to
// `from`. `from` must be the context that is running.
void switchFiber(FiberContext& from, FiberContext& to);

}  // namespace ikun::emu
