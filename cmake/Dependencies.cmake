# Every library comes from Debian 12's packages (scripts/install-deps.sh).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(ZMQ REQUIRED IMPORTED_TARGET libzmq)
find_package(cppzmq REQUIRED)
find_package(Protobuf REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS filesystem)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
# Abseil for compact B-tree and flat hash containers in the master's metadata.
find_package(absl REQUIRED)
pkg_check_modules(ISAL REQUIRED IMPORTED_TARGET libisal)
# libedit (BSD editline): the shell's line editing, Tab completion and history.
pkg_check_modules(LIBEDIT REQUIRED IMPORTED_TARGET libedit)
# xxHash is used header-only (XXH_INLINE_ALL): Debian's libxxhash.so is an
# SSE2 build, the inlined one follows -march=native.
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
if(DFS_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
