// The registry against hostile names and hostile pointer files, written once against a Store
// and run on a local folder (names_test.cpp here) and on S3 (tests/integration/
// registry_s3_test.cpp): every model, alias and version name given by a caller is checked
// (core::Error kUsage naming the field), and an alias file whose content names a version like
// "../../etc" is a data error naming the file, never a key outside the model's place.
#pragma once

#include "storage/store.h"

namespace ddpipe::testing {

// `store` must be empty. Leaves model "m" with one version (and the hostile alias files the
// check writes) in it.
void check_registry_refuses_hostile_names(storage::Store& store);

}  // namespace ddpipe::testing
