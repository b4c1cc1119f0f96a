# The node-gyp build, which prebuildify drives to make the shipped binary (npm run prebuilds): the CPU kernels
# with OpenBLAS linked statically and, when nvcc is found, the CUDA kernels with the CUDA runtime linked
# statically; without nvcc (or with IKUN_WITH_CUDA=OFF) the CPU-only variant. Sources come from sources.json
# and every flag from scripts/build-config.cjs, which CMakeLists.txt (the cmake-js build) reads too.
# Linux only: the flags are GCC's and the prebuilt binary is linux-x64.
{
  "variables": {
    "ikun_cuda%": "<!(node scripts/build-config.cjs gyp-cuda)"
  },
  "targets": [
    {
      "target_name": "ikun",
      "sources": ["<!@(node scripts/build-config.cjs gyp-sources)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/build-config.cjs gyp-blas-include)"
      ],
      "defines": ["<!@(node scripts/build-config.cjs gyp-defines)"],
      # node-gyp's defaults turn off C++ exceptions and RTTI (the kernels and node-addon-api use both) and
      # keep frame pointers, which CMake's Release build does not; -std=gnu++17 comes after node-gyp's own
      # -std (later wins), as CMake's CMAKE_CXX_STANDARD 17 gives it.
      "cflags!": ["-fno-omit-frame-pointer"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions", "<!@(node scripts/build-config.cjs gyp-cxxflags)"],
      "ldflags": ["<!@(node scripts/build-config.cjs gyp-ldflags)"],
      "libraries": ["<!@(node scripts/build-config.cjs gyp-blas-libraries)", "-lpthread"],
      "conditions": [
        ["ikun_cuda==1", {
          "defines": ["<!@(node scripts/build-config.cjs gyp-cuda-defines)"],
          "libraries": ["<!@(node scripts/build-config.cjs gyp-cuda-libraries)"],
          # gyp knows no CUDA: each .cu source becomes an object file through nvcc (with CMake's flags for
          # it, see build-config.cjs), which the link step takes like the compiled C++ objects.
          "rules": [
            {
              "rule_name": "nvcc",
              "extension": "cu",
              "inputs": ["<!@(node scripts/build-config.cjs gyp-cuda-headers)"],
              "outputs": ["<(INTERMEDIATE_DIR)/cuda/<(RULE_INPUT_ROOT).o"],
              "action": ["node", "scripts/build-config.cjs", "nvcc", "<(RULE_INPUT_PATH)", "<@(_outputs)"],
              "message": "nvcc <(RULE_INPUT_PATH)",
              "process_outputs_as_sources": 1
            }
          ]
        }]
      ]
    }
  ]
}
