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
