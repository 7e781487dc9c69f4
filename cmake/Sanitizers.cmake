# One switch, as 3FS does: -DDFS_SANITIZE=asan builds with ASan+UBSan,
# -DDFS_SANITIZE=tsan with ThreadSanitizer for the threaded parts.
if(DFS_SANITIZE STREQUAL "asan")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(DFS_SANITIZE STREQUAL "tsan")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT DFS_SANITIZE STREQUAL "")
  message(FATAL_ERROR "DFS_SANITIZE must be '', asan or tsan, not '${DFS_SANITIZE}'")
endif()
# Sanitizer builds exist to run the tests: -O1 (what both sanitizers'
# documentation suggests) and line tables only (-g1: every report's stack
# still names file and line) compile in much less time than -O2 -g, which
# keeps the test command's three builds within CI's budget. They come after
# the build type's flags, so they win.
if(NOT DFS_SANITIZE STREQUAL "")
  add_compile_options(-O1 -g1)
endif()
