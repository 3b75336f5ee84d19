// ddpipe::model — reading torch zip archives safely: a check of one (model.pt, optimizer.pt,
// model.pth) before libtorch's reader (caffe2::serialize::PyTorchStreamReader) is given it.
//
// That reader trusts the archive's central directory: it allocates each record's declared size
// before reading it, and when its constructor refuses an archive it leaks miniz's reader state.
// check_torch_zip() refuses, naming the file, what the reader would refuse at construction and
// any record that could not be what it declares: the end of central directory (and its zip64
// records) must be there and consistent, every entry inside the file, stored (method 0, with
// the same compressed and uncompressed size) or deflated (method 8, at most 1032 times larger
// than compressed: deflate's bound), below 4 GiB, in one top folder, with the CRC-32 of its
// bytes (libtorch does not check it: corrupt records reach its parsers), and a readable
// "version" record within the versions libtorch 1.13 reads.
#pragma once

#include <string>

namespace ddpipe::model {

// Throws core::Error(kData) naming `where` when `bytes` is not such an archive.
void check_torch_zip(const std::string& bytes, const std::string& where);

// Called in a catch block around libtorch's readers: rethrows the exception being handled as
// core::Error(kData) of `context` and its message. libtorch throws c10::Error, and also other
// std::exception types (torch::jit::ErrorReport from the TorchScript archive reader,
// std::out_of_range); a core::Error is rethrown as it is.
[[noreturn]] void rethrow_as_data_error(const std::string& context);

}  // namespace ddpipe::model
