# Build time. CI builds dfs three times (release, asan, tsan) on two cores.
#
# Unity builds: CMake glues a target's sources into batches of
# DFS_UNITY_BATCH and compiles each batch as one translation unit. The headers
# every file pulls in (the standard library, fmt/spdlog, protobuf's runtime
# and generated headers, GoogleTest, nlohmann/json, CLI11) are then parsed,
# and their inline functions compiled, once per batch instead of once per
# file. CLI11 (2.1, header-only) is the extreme: every file that includes it
# compiles its validators and formatter again.
option(DFS_UNITY "Unity (jumbo) builds of dfs's own targets" ON)
set(DFS_UNITY_BATCH 8 CACHE STRING "Source files per unity batch")
if(DFS_UNITY)
  set(CMAKE_UNITY_BUILD ON)
  set(CMAKE_UNITY_BUILD_BATCH_SIZE ${DFS_UNITY_BATCH})
endif()
