# The Debian package of ddpipe (`cpack -G DEB` in the build directory, or scripts/package.sh):
# ddpipe_<version>_amd64.deb holding what `cmake --install` installs (apps/ddpipe/CMakeLists.txt)
# under /usr. Its Depends are computed from the binary by dpkg-shlibdeps, never typed here.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ddpipe)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Distributed data-parallel training, model registry and serving, in C++")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
       "ddpipe ingests a dataset into a content-addressed store, trains on N ranks with "
       "gradients\naveraged over Gloo, versions the model with its lineage in a local folder or "
       "S3 (MinIO),\nserves it over HTTP (KServe V1/V2) and renders Kubeflow jobs for Kubernetes.")
set(CPACK_PACKAGE_CONTACT "ddpipe developers <ddpipe@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # ddpipe_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The default job (`ddpipe run`) trains on Debian's Fashion-MNIST; any other dataset does without.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS dataset-fashion-mnist)
include(CPack)
