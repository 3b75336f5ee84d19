# libFuzzer targets: each is built with clang under ASan + UBSan from the torch-free sources it
# exercises, and runs for a bounded time as a ctest test (label `fuzz`) through
# scripts/run_fuzz.sh over its committed seed corpus. Optional: needs clang and libFuzzer (Debian:
# clang, libclang-rt-14-dev); without them there are no fuzz tests.
option(DDPIPE_BUILD_FUZZ "Build and run the libFuzzer targets (needs clang)" ON)

set(DDPIPE_FUZZ_FLAGS -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined
                      -fno-sanitize-recover=all)

# The sources (relative to src/) and libraries of storage::Store and what it needs, for targets
# whose code names a store or a key rule.
set(DDPIPE_FUZZ_STORE_SOURCES storage/store.cpp storage/local_store.cpp storage/s3_store.cpp
    storage/s3_client.cpp storage/s3_xml.cpp storage/sigv4.cpp core/config.cpp core/error.cpp
    core/fs.cpp core/hash.cpp core/log.cpp core/strings.cpp core/base64.cpp)
set(DDPIPE_FUZZ_STORE_LIBS -lcrypto -lcurl -lyaml-cpp)

# For TORCH targets: the libtorch that Dependencies.cmake found (its headers, less the compiler's
# own include directories, which -I would reorder; its libraries by name). libtorch itself is not
# instrumented: the sanitizers check the project's code, and a crash inside libtorch still ends
# the run.
set(DDPIPE_FUZZ_TORCH_FLAGS)
foreach(dir ${TORCH_INCLUDE_DIRS})
  if(NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
    list(APPEND DDPIPE_FUZZ_TORCH_FLAGS -I${dir})
  endif()
endforeach()
get_filename_component(torch_lib_dir ${TORCH_LIBRARY} DIRECTORY)
list(APPEND DDPIPE_FUZZ_TORCH_FLAGS -L${torch_lib_dir} -ltorch -ltorch_cpu -lc10)

# DDPIPE_FUZZ_OK: whether clang can build a libFuzzer target (probed at each configure).
set(DDPIPE_FUZZ_OK FALSE)
find_program(DDPIPE_CLANGXX NAMES clang++ clang++-14)
if(NOT DDPIPE_BUILD_FUZZ)
  message(STATUS "fuzz: DDPIPE_BUILD_FUZZ is OFF, no fuzz tests")
elseif(NOT DDPIPE_CLANGXX)
  message(STATUS "fuzz: clang++ not found, no fuzz tests")
else()
  set(probe ${CMAKE_BINARY_DIR}/fuzz_probe/probe.cpp)
  file(WRITE ${probe} "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n")
  execute_process(COMMAND ${DDPIPE_CLANGXX} ${DDPIPE_FUZZ_FLAGS} ${probe} -o ${probe}.bin
                  RESULT_VARIABLE probe_result OUTPUT_QUIET ERROR_QUIET)
  if(probe_result EQUAL 0)
    set(DDPIPE_FUZZ_OK TRUE)
  else()
    message(STATUS "fuzz: ${DDPIPE_CLANGXX} cannot link libFuzzer (install libclang-rt-14-dev), no fuzz tests")
  endif()
endif()

# ddpipe_fuzz_target(NAME TEST test SECONDS s FUZZER file.cpp SOURCES dir/file.cpp...
#                    [LIBS -l...] [SHARED dir...] [TORCH])
# Builds the fuzzer NAME (bin/NAME in the current binary dir) from FUZZER and the project sources (paths relative to src/; their headers are
# dependencies too), and adds the ctest test TEST running it for SECONDS over corpus/ next to it
# and the optional subdirectories SHARED of the shared test data (../shared/testdata). TORCH:
# the sources use libtorch (DDPIPE_FUZZ_TORCH_FLAGS).
function(ddpipe_fuzz_target name)
  cmake_parse_arguments(ARG "TORCH" "TEST;SECONDS" "FUZZER;SOURCES;LIBS;SHARED" ${ARGN})
  if(NOT DDPIPE_FUZZ_OK)
    return()
  endif()
  set(src ${PROJECT_SOURCE_DIR}/src)
  set(sources ${ARG_FUZZER})
  set(depends ${ARG_FUZZER})
  foreach(s ${ARG_SOURCES})
    list(APPEND sources ${src}/${s})
    string(REGEX REPLACE "\\.cpp$" ".h" h ${src}/${s})
    list(APPEND depends ${src}/${s})
    if(EXISTS ${h})
      list(APPEND depends ${h})
    endif()
  endforeach()
  if(ARG_TORCH)
    list(APPEND ARG_LIBS ${DDPIPE_FUZZ_TORCH_FLAGS})
  endif()
  set(fuzzer ${CMAKE_CURRENT_BINARY_DIR}/bin/${name})
  add_custom_command(
    OUTPUT ${fuzzer}
    # Ninja creates an output's folder, Make does not.
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/bin
    COMMAND ${DDPIPE_CLANGXX} ${DDPIPE_FUZZ_FLAGS} -I${src} ${sources} ${ARG_LIBS} -o ${fuzzer}
    DEPENDS ${depends}
    COMMENT "Building ${name} (clang, libFuzzer, ASan, UBSan)"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS ${fuzzer})
  add_test(NAME ${ARG_TEST}
           COMMAND ${PROJECT_SOURCE_DIR}/scripts/run_fuzz.sh ${fuzzer}
                   ${CMAKE_CURRENT_SOURCE_DIR}/corpus ${CMAKE_CURRENT_BINARY_DIR}/run
                   ${PROJECT_SOURCE_DIR} ${ARG_SECONDS} ${ARG_SHARED})
  set_tests_properties(${ARG_TEST} PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()
