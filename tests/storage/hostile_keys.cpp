#include "hostile_keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"

namespace ddpipe::testing {

namespace fs = std::filesystem;

std::vector<Hostile> hostile_keys() {
  return {
      {"empty", ""},
      {"parent", "../x"},
      {"parent alone", ".."},
      {"dot", "."},
      {"parent inside", "a/../../b"},
      {"parent at the end", "a/.."},
      {"dot inside", "a/./b"},
      {"absolute", "/abs"},
      {"absolute system file", "/etc/passwd"},
      {"empty segment", "a//b"},
      {"trailing slash", "a/"},
      {"temp name", ".tmp-x"},
      {"temp name inside", "a/.tmp-y"},
      {"NUL", std::string("a\0b", 3)},
      {"NUL then traversal", std::string("ok\0/../../etc", 13)},
      {"newline", "a\nb"},
      {"carriage return", "a\rb"},
      {"escape sequence", "a\x1b[31mb"},
      {"DEL", "a\x7f"},
      {"tab", "a\tb"},
      {"key over 1024 bytes", std::string(1025, 'k')},
      {"segment over 255 bytes", "a/" + std::string(256, 's')},
  };
}

std::vector<Hostile> hostile_names() {
  std::vector<Hostile> out = hostile_keys();
  out.push_back({"slash", "a/b"});
  out.push_back({"leading dot", ".hidden"});
  out.push_back({"name over 128 bytes", std::string(129, 'n')});
  out.push_back({"URL-encoded traversal", "..%2F..%2Fetc"});
  out.push_back({"space", "a b"});
  out.push_back({"backslash traversal", "..\\..\\etc"});
  return out;
}

namespace {

void expect_refused(const Hostile& h, const std::string& op, const std::string& fragment,
                    const std::function<void()>& f) {
  SCOPED_TRACE("key: " + h.label + ", operation: " + op);
  const std::string message = usage_error(f);
  EXPECT_NE(message.find(fragment), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "a raw control character in: " << message;
}

}  // namespace

void expect_store_refuses_hostile_keys(storage::Store& store, const fs::path& scratch) {
  const fs::path source = scratch / "source";
  core::write_file_atomic(source, "payload");
  store.put("ok/x", "1");
  const std::string bad_key = "invalid store key";
  for (const Hostile& h : hostile_keys()) {
    const std::string& k = h.text;
    expect_refused(h, "put", bad_key, [&] { store.put(k, "payload"); });
    expect_refused(h, "put_file", bad_key, [&] { store.put_file(k, source); });
    expect_refused(h, "get", bad_key, [&] { store.get(k); });
    expect_refused(h, "get_file", bad_key, [&] { store.get_file(k, scratch / "got"); });
    expect_refused(h, "exists", bad_key, [&] { store.exists(k); });
    expect_refused(h, "try_get", bad_key, [&] { store.try_get(k); });
    expect_refused(h, "remove", bad_key, [&] { store.remove(k); });
    expect_refused(h, "copy to", bad_key, [&] { store.copy("ok/x", k); });
    expect_refused(h, "copy from", bad_key, [&] { store.copy(k, "ok/y"); });
    // A prefix may end with one '/' and "" lists everything: those two are not hostile there.
    if (!k.empty() && k != "a/") {
      expect_refused(h, "list", "invalid store prefix", [&] { store.list(k); });
    }
    EXPECT_FALSE(fs::exists(scratch / "got")) << h.label << ": get_file created its destination";
  }
  std::vector<std::string> keys;
  for (const storage::ObjectInfo& o : store.list("")) keys.push_back(o.key);
  EXPECT_EQ(keys, std::vector<std::string>{"ok/x"}) << "an operation wrote an object";
  EXPECT_EQ(store.get("ok/x"), "1");
}

std::vector<std::string> tree(const fs::path& root) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    out.push_back(it->path().lexically_relative(root).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace ddpipe::testing
