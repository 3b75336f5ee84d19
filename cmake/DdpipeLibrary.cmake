# One precompiled <torch/torch.h> shared by every target that uses libtorch (saves ~15 s a file).
add_library(ddpipe_torch_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cpp)
target_link_libraries(ddpipe_torch_pch PUBLIC ddpipe_torch)
target_compile_options(ddpipe_torch_pch PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_precompile_headers(ddpipe_torch_pch PRIVATE <torch/torch.h>)

# ddpipe_use_torch(TARGET): link libtorch and reuse the shared precompiled header.
function(ddpipe_use_torch target)
  target_link_libraries(${target} PUBLIC ddpipe_torch)
  target_precompile_headers(${target} REUSE_FROM ddpipe_torch_pch)
endfunction()

# ddpipe_library(NAME SOURCES ... DEPS ... [TORCH])
# One static library per component; headers are included as "<component>/<file>.h" from src/.
function(ddpipe_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(ddpipe_${name} STATIC ${ARG_SOURCES})
  target_include_directories(ddpipe_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(ddpipe_${name} PUBLIC ${ARG_DEPS})
  target_compile_options(ddpipe_${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(ARG_TORCH)
    ddpipe_use_torch(ddpipe_${name})
  endif()
endfunction()
