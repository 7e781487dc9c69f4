# Warnings for our own targets only: generated protobuf code is compiled
# without them (it is not ours to fix).
function(dfs_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wno-missing-field-initializers)
endfunction()
if(DFS_NATIVE)
  add_compile_options(-march=native)
endif()
