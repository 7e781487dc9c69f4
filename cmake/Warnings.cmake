# Warnings for our own targets only: generated protobuf code is compiled
# without them (it is not ours to fix).
# DFS_WERROR (the test command, and so CI, turns it on) makes any warning
# an error: a warning that lands stays forever.
option(DFS_WERROR "Treat warnings in dfs's own code as errors" OFF)
function(dfs_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wno-missing-field-initializers)
  if(DFS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
if(DFS_NATIVE)
  add_compile_options(-march=native)
endif()
