# The emulated CUDA build (IKUN_CUDA_EMULATE=ON, npm run build:emulated): for tests only, never shipped. No nvcc:
# the .cu files of sources.json "cuda" are compiled by the host C++ compiler as C++, and
# native/cuda/emulator (an emulated device on host threads) stands in for the CUDA runtime. Besides the addon
# (build-emulated/Release/ikun.node) it builds two standalone test programs, because ThreadSanitizer and
# AddressSanitizer cannot practically be loaded into node:
#   ikun_emulator_tests_tsan   -fsanitize=thread
#   ikun_emulator_tests_asan   -fsanitize=address,undefined
# from the test cases of sources.json "cudaEmulatorTests" (native/tests) and the "cuda" kernels.
# Included by CMakeLists.txt after the sources are read; sets IKUN_SOURCES for the addon.
if(CMAKE_VERSION VERSION_LESS 3.20)
  message(FATAL_ERROR "IKUN_CUDA_EMULATE needs CMake >= 3.20 (it compiles .cu files as C++ with -x c++)")
endif()
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  message(FATAL_ERROR "IKUN_CUDA_EMULATE needs GCC (the emulator uses GCC builtins and GCC's sanitizers)")
endif()

ikun_read_sources(cudaEmulator IKUN_CUDA_EMULATOR_SOURCES)
ikun_read_sources(cudaEmulatorTests IKUN_CUDA_EMULATOR_TEST_SOURCES)

# .cu files as C++: with LANGUAGE CXX and policy CMP0119 NEW (CMake >= 3.20; cmake_minimum_required(3.19) leaves
# it OLD), CMake passes -x c++ to GCC; without it GCC takes a .cu file for linker input. The policy must hold
# where the targets are created, hence include(... NO_POLICY_SCOPE) in CMakeLists.txt. The LANGUAGE property
# is per directory, so it holds for the addon and the test programs alike.
cmake_policy(SET CMP0119 NEW)
set(IKUN_EMULATED_CU_SOURCES ${IKUN_CUDA_SOURCES} ${IKUN_CUDA_EMULATOR_TEST_SOURCES})
list(FILTER IKUN_EMULATED_CU_SOURCES INCLUDE REGEX "\\.cu$")
set_source_files_properties(${IKUN_EMULATED_CU_SOURCES} PROPERTIES LANGUAGE CXX)

set(IKUN_SOURCES ${IKUN_COMMON_SOURCES} ${IKUN_CUDA_SOURCES} ${IKUN_CUDA_EMULATOR_SOURCES})
message(STATUS "ikun: building for the emulated CUDA device (tests only; no nvcc, no GPU)")

# The CPU kernels (sources.json "common" without the N-API bindings) in the sanitizer programs, for cases that
# compare a CUDA kernel with its CPU counterpart. OFF while no case needs them: they double the programs' build
# time (neuron*.cpp alone take about a minute each per sanitizer). OpenBLAS is not instrumented: its own threads
# are invisible to ThreadSanitizer, so such cases should run it with OPENBLAS_NUM_THREADS=1.
option(IKUN_EMULATOR_TESTS_CPU_KERNELS "Link the CPU kernels and OpenBLAS into the emulator's sanitizer test programs" OFF)

# Called by CMakeLists.txt once the addon target exists.
function(ikun_add_emulated_targets addon)
  target_compile_definitions(${addon} PRIVATE IKUN_WITH_CUDA=1 IKUN_CUDA_EMULATED=1)
  # -O1 after the shipped build's -O3: this addon only runs tests, and the CPU kernels (neuron*.cpp) take about
  # four times longer to compile at -O3, which made this build twice as slow as the normal one.
  target_compile_options(${addon} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-O1>)
  target_link_libraries(${addon} PRIVATE ${CMAKE_DL_LIBS})

  # Next to the addon (cmake-js sets the library directory: build-emulated/Release).
  if(CMAKE_LIBRARY_OUTPUT_DIRECTORY)
    set(dir "${CMAKE_LIBRARY_OUTPUT_DIRECTORY}")
  else()
    set(dir "${CMAKE_BINARY_DIR}/Release")
  endif()
  foreach(kind tsan asan)
    set(target ikun_emulator_tests_${kind})
    if(kind STREQUAL "tsan")
      set(sanitize -fsanitize=thread)
    else()
      # UBSan errors abort instead of printing and going on, so that one cannot pass unnoticed.
      set(sanitize -fsanitize=address,undefined -fno-sanitize-recover=undefined)
    endif()
    add_executable(${target} ${IKUN_CUDA_EMULATOR_TEST_SOURCES} ${IKUN_CUDA_SOURCES} ${IKUN_CUDA_EMULATOR_SOURCES})
    target_compile_definitions(${target} PRIVATE IKUN_WITH_CUDA=1 IKUN_CUDA_EMULATED=1)
    # -O1 -g: sanitizer reports with usable stacks; -UNDEBUG: the Release configuration's -DNDEBUG off, so
    # assert() stays on in tests.
    target_compile_options(${target} PRIVATE -O1 -g -fno-omit-frame-pointer -UNDEBUG ${sanitize}
                           -Wall -Wextra -Wno-unused-parameter)
    # -rdynamic: kernels in the dynamic symbol table, so the emulator's hard errors can name them.
    target_link_options(${target} PRIVATE ${sanitize} -rdynamic)
    target_link_libraries(${target} PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
    if(IKUN_EMULATOR_TESTS_CPU_KERNELS)
      set(cpu ${IKUN_COMMON_SOURCES})
      list(FILTER cpu EXCLUDE REGEX "/native/napi/")
      target_sources(${target} PRIVATE ${cpu})
      target_compile_definitions(${target} PRIVATE IKUN_TESTS_CPU_KERNELS=1)
      target_include_directories(${target} PRIVATE ${IKUN_CBLAS_INCLUDE})
      if(IKUN_OPENBLAS_STATIC)
        target_link_libraries(${target} PRIVATE ${IKUN_OPENBLAS_STATIC} m)
      else()
        target_link_libraries(${target} PRIVATE ${IKUN_OPENBLAS_SHARED})
      endif()
    endif()
    set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${dir}")
  endforeach()
endfunction()
