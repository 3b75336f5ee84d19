# Sanitizer builds (scripts/sanitize.sh): DDPIPE_SANITIZE=address,undefined or thread compiles and
# links ddpipe's own code, its tests and the ddpipe binary with that sanitizer. Third-party
# libraries (libtorch, gloo, OpenMP, curl…) are Debian's, not instrumented: ASan and UBSan still
# check every access ddpipe makes; TSan sees only the synchronisation ddpipe's code does itself.
set(DDPIPE_SANITIZE "" CACHE STRING
    "Sanitizers for ddpipe's code and tests: address,undefined or thread (empty: none)")

if(DDPIPE_SANITIZE)
  if(NOT DDPIPE_SANITIZE MATCHES "^(address,undefined|address|undefined|thread)$")
    message(FATAL_ERROR "DDPIPE_SANITIZE=${DDPIPE_SANITIZE}: use address,undefined or thread")
  endif()
  # tcmalloc replaces malloc, which the sanitizers must intercept themselves.
  if(DDPIPE_TCMALLOC)
    message(STATUS "sanitize: DDPIPE_TCMALLOC turned OFF (the sanitizer owns malloc)")
    set(DDPIPE_TCMALLOC OFF CACHE BOOL "" FORCE)
  endif()
  # -O1: a third of -O3's compile time and still readable reports; the last -O given wins.
  # -g1: line tables for the reports. A finding stops the test (no recovery), so ctest fails.
  add_compile_options(-fsanitize=${DDPIPE_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all -O1 -g1)
  add_link_options(-fsanitize=${DDPIPE_SANITIZE})
  message(STATUS "sanitize: ${DDPIPE_SANITIZE}")
endif()
