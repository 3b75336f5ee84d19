# Third-party dependencies, all from Debian 12 packages (see scripts/install-deps.sh).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(CURL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
find_package(LibArchive REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
# serve: Debian's cpp-httplib is a compiled library; its .pc carries the defines it was built with.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
# telemetry: the /metrics endpoint of training ranks with Debian's prometheus-cpp 1.0.1 (targets
# prometheus-cpp::core, the metrics, and prometheus-cpp::pull, the HTTP exposer on civetweb).
find_package(prometheus-cpp CONFIG REQUIRED)

# libtorch: Debian's TorchConfig adds flags we do not want globally; use its imported target only.
find_package(Torch REQUIRED)
add_library(ddpipe_torch INTERFACE)
target_link_libraries(ddpipe_torch INTERFACE ${TORCH_LIBRARIES})
target_compile_definitions(ddpipe_torch INTERFACE USE_DISTRIBUTED USE_C10D_GLOO)

if(DDPIPE_TCMALLOC)
  find_library(TCMALLOC_LIBRARY NAMES tcmalloc_minimal tcmalloc)
  if(NOT TCMALLOC_LIBRARY)
    message(FATAL_ERROR "tcmalloc not found: install libgoogle-perftools-dev or pass -DDDPIPE_TCMALLOC=OFF")
  endif()
endif()
