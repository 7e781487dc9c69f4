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

# A target of one source gains nothing from a unity build: it compiles its
# file as before, so its diagnostics and object file stay those of a normal
# build.
# Called at the end of the top-level CMakeLists.txt, over every directory.
function(dfs_unity_skip_single_source dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY)$")
      get_target_property(srcs ${t} SOURCES)
      list(FILTER srcs INCLUDE REGEX "\\.(cc|cpp|cxx)$")
      list(LENGTH srcs n)
      if(n LESS_EQUAL 1)
        set_target_properties(${t} PROPERTIES UNITY_BUILD OFF)
      endif()
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(d IN LISTS subdirs)
    dfs_unity_skip_single_source(${d})
  endforeach()
endfunction()
