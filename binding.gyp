# CPU-only build for prebuildify (which drives node-gyp only). The CUDA build is CMakeLists.txt.
# Sources come from sources.json, shared with CMake.
{
  "targets": [
    {
      "target_name": "ikun",
      "sources": [
        "<!@(node -p \"const s=require('./sources.json'); s.common.concat(s.cpuOnly).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "/usr/include/x86_64-linux-gnu/openblas-pthread",
        "/usr/include/openblas"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-march=x86-64-v2", "-fno-trapping-math"],
      "libraries": [
        "<!(node -p \"const fs=require('fs');['/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.a','/usr/lib/x86_64-linux-gnu/libopenblas.a','/usr/lib64/libopenblas.a'].find(p=>fs.existsSync(p))||'-lopenblas'\")",
        "-lpthread",
        "-Wl,--exclude-libs,ALL"
      ]
    }
  ]
}
