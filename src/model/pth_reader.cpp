// read_pth(): a small unpickler for exactly what torch.save writes for a state dict.
//
// libtorch 1.13's torch::pickle_load turns a pickled collections.OrderedDict into None (it only
// expects one as a tensor's empty backward hooks), so it cannot read Python's
// torch.save(model.state_dict()). This reader understands the opcodes of pickle protocols 2–4
// that such archives use, builds dicts, tuples and lists, and knows four callables: OrderedDict,
// torch._utils._rebuild_tensor_v2 (a tensor over a storage record "data/<key>" of the zip),
// torch._utils._rebuild_parameter and torch.jit._pickle.restore_type_tag (libtorch's own
// pickle_save). Anything else (another class, a whole pickled nn.Module) is refused by name.
#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <variant>

#include "core/error.h"
#include "model/export.h"
#include "model/zip_check.h"

namespace ddpipe::model {
namespace {

struct Value;
using Ref = std::shared_ptr<Value>;
struct Global {
  std::string name;  // "module.qualname"
};
struct Tuple {
  std::vector<Ref> items;
};
struct List {
  std::vector<Ref> items;
};
struct Dict {
  std::vector<std::pair<Ref, Ref>> items;
};
struct Value {
  std::variant<std::monostate, int64_t, double, bool, std::string, Global, Tuple, List, Dict,
               torch::Tensor>
      v;
};

Ref make(decltype(Value::v) v) { return std::make_shared<Value>(Value{std::move(v)}); }

class Unpickler {
 public:
  Unpickler(caffe2::serialize::PyTorchStreamReader& zip, std::string pickle, std::string where)
      : zip_(zip), p_(std::move(pickle)), where_(std::move(where)) {}

  Ref run() {
    while (true) {
      const uint8_t op = u8();
      if (op == '.') break;  // STOP
      if (!simple_op(op) && !container_op(op) && !call_op(op)) {
        fail("unsupported pickle opcode 0x" + hex(op) + " at byte " + std::to_string(pos_ - 1));
      }
    }
    if (stack_.size() != 1) fail("pickle ends with " + std::to_string(stack_.size()) + " values");
    return stack_.back();
  }

  [[noreturn]] void fail(const std::string& what) const {
    core::fail_data(where_ + ": not a state dict archive that ddpipe can read: " + what);
  }

 private:
  static std::string hex(uint8_t b) {
    std::ostringstream o;
    o << std::hex << static_cast<int>(b);
    return o.str();
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(p_[pos_++]);
  }
  uint64_t le(size_t n) {
    need(n);
    uint64_t v = 0;
    std::memcpy(&v, p_.data() + pos_, n);
    pos_ += n;
    return v;
  }
  std::string bytes(size_t n) {
    need(n);
    std::string s = p_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string line() {
    size_t end = p_.find('\n', pos_);
    if (end == std::string::npos) fail("unterminated GLOBAL");
    std::string s = p_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  void need(size_t n) const {
    if (p_.size() - pos_ < n) fail("pickle is truncated");
  }
  Ref pop() {
    if (stack_.empty()) fail("pickle pops an empty stack");
    Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) fail("pickle has no MARK");
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()),
                           stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  void memo_put(size_t i) {
    if (stack_.empty()) fail("memo of an empty stack");
    memo_[i] = stack_.back();
  }
  Ref memo_get(size_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) fail("memo entry " + std::to_string(i) + " is not defined");
    return it->second;
  }

  // Scalars, strings, memo, framing.
  bool simple_op(uint8_t op) {
    switch (op) {
      case 0x80:
        u8();
        return true;  // PROTO
      case 0x95:
        le(8);
        return true;  // FRAME
      case 'N':
        stack_.push_back(make(std::monostate{}));
        return true;  // NONE
      case 0x88:
        stack_.push_back(make(true));
        return true;  // NEWTRUE
      case 0x89:
        stack_.push_back(make(false));
        return true;  // NEWFALSE
      case 'K':
        stack_.push_back(make(int64_t(u8())));
        return true;  // BININT1
      case 'M':
        stack_.push_back(make(int64_t(le(2))));
        return true;  // BININT2
      case 'J':
        stack_.push_back(make(int64_t(int32_t(le(4)))));
        return true;  // BININT
      case 0x8a: {    // LONG1
        const size_t n = u8();
        if (n > 8) fail("integer of " + std::to_string(n) + " bytes");
        uint64_t v = n ? le(n) : 0;
        if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign
        stack_.push_back(make(static_cast<int64_t>(v)));
        return true;
      }
      case 'G': {  // BINFLOAT, big-endian
        uint64_t b = 0;
        for (int i = 0; i < 8; ++i) b = (b << 8) | u8();
        double d;
        std::memcpy(&d, &b, 8);
        stack_.push_back(make(d));
        return true;
      }
      case 'X':
        stack_.push_back(make(bytes(le(4))));
        return true;  // BINUNICODE
      case 0x8c:
        stack_.push_back(make(bytes(u8())));
        return true;  // SHORT_BINUNICODE
      case 'q':
        memo_put(u8());
        return true;  // BINPUT
      case 'r':
        memo_put(le(4));
        return true;  // LONG_BINPUT
      case 0x94:
        memo_put(memo_.size());
        return true;  // MEMOIZE
      case 'h':
        stack_.push_back(memo_get(u8()));
        return true;  // BINGET
      case 'j':
        stack_.push_back(memo_get(le(4)));
        return true;  // LONG_BINGET
      case '(':
        marks_.push_back(stack_.size());
        return true;  // MARK
      case '0':
        pop();
        return true;  // POP
      case '1':
        pop_mark();
        return true;  // POP_MARK
      default:
        return false;
    }
  }

  // Tuples, lists, dicts.
  bool container_op(uint8_t op) {
    switch (op) {
      case ')':
        stack_.push_back(make(Tuple{}));
        return true;  // EMPTY_TUPLE
      case 't':
        stack_.push_back(make(Tuple{pop_mark()}));
        return true;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::vector<Ref> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        stack_.push_back(make(Tuple{std::move(items)}));
        return true;
      }
      case ']':
        stack_.push_back(make(List{}));
        return true;  // EMPTY_LIST
      case '}':
        stack_.push_back(make(Dict{}));
        return true;  // EMPTY_DICT
      case 'a': {     // APPEND
        Ref v = pop();
        as<List>(top()).items.push_back(v);
        return true;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        auto& l = as<List>(top()).items;
        l.insert(l.end(), items.begin(), items.end());
        return true;
      }
      case 's': {  // SETITEM
        Ref v = pop(), k = pop();
        as<Dict>(top()).items.emplace_back(k, v);
        return true;
      }
      case 'u': {  // SETITEMS
        auto items = pop_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of values");
        for (size_t i = 0; i < items.size(); i += 2) {
          as<Dict>(top()).items.emplace_back(items[i], items[i + 1]);
        }
        return true;
      }
      default:
        return false;
    }
  }

  // Globals, calls, persistent ids (storages), BUILD.
  bool call_op(uint8_t op) {
    switch (op) {
      case 'c': {  // GLOBAL
        std::string module = line();
        stack_.push_back(make(Global{module + "." + line()}));
        return true;
      }
      case 0x93: {  // STACK_GLOBAL
        std::string name = as<std::string>(pop());
        stack_.push_back(make(Global{as<std::string>(pop()) + "." + name}));
        return true;
      }
      case 'R': {  // REDUCE
        Ref args = pop();
        Ref callable = pop();
        stack_.push_back(reduce(as<Global>(callable).name, as<Tuple>(args).items));
        return true;
      }
      case 'Q':
        stack_.push_back(storage(as<Tuple>(pop()).items));
        return true;  // BINPERSID
      case 'b': {     // BUILD: only a state dict's _metadata attribute, which is dropped
        pop();
        if (!std::holds_alternative<Dict>(top()->v)) fail("BUILD of an object that is no dict");
        return true;
      }
      default:
        return false;
    }
  }

  Ref reduce(const std::string& callable, const std::vector<Ref>& args) {
    if (callable == "collections.OrderedDict" && args.empty()) return make(Dict{});
    if (callable == "torch._utils._rebuild_tensor_v2" && args.size() >= 4) {
      const torch::Tensor& storage = as<torch::Tensor>(args[0]);
      return make(storage.as_strided(int_tuple(args[2]), int_tuple(args[3]), as<int64_t>(args[1])));
    }
    if (callable == "torch._utils._rebuild_parameter" && !args.empty()) return args[0];
    if (callable == "torch.jit._pickle.restore_type_tag" && !args.empty()) return args[0];
    fail("it pickles a " + callable +
         " (expected a dict of tensors, e.g. torch.save("
         "model.state_dict(), path))");
  }

  // ('storage', torch.<Type>Storage, key, location, numel) → a flat tensor over data/<key>.
  Ref storage(const std::vector<Ref>& pid) {
    if (pid.size() < 5 || as<std::string>(pid[0]) != "storage") fail("unknown persistent id");
    const std::string type = as<Global>(pid[1]).name, key = as<std::string>(pid[2]);
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return make(cached->second);
    static const std::map<std::string, torch::ScalarType> kTypes = {
        {"torch.FloatStorage", torch::kFloat32}, {"torch.DoubleStorage", torch::kFloat64},
        {"torch.HalfStorage", torch::kFloat16},  {"torch.BFloat16Storage", torch::kBFloat16},
        {"torch.LongStorage", torch::kInt64},    {"torch.IntStorage", torch::kInt32},
        {"torch.ShortStorage", torch::kInt16},   {"torch.CharStorage", torch::kInt8},
        {"torch.ByteStorage", torch::kUInt8},    {"torch.BoolStorage", torch::kBool}};
    auto t = kTypes.find(type);
    if (t == kTypes.end()) fail("tensor storage of unsupported type " + type);
    const std::string record = "data/" + key;
    if (!zip_.hasRecord(record)) fail("the archive has no record " + record);
    auto [data, size] = zip_.getRecord(record);
    // The record's size bounds the tensor before it is allocated.
    const int64_t numel = as<int64_t>(pid[4]);
    const size_t element = c10::elementSize(t->second);
    if (numel < 0 || size % element != 0 || static_cast<uint64_t>(numel) != size / element) {
      fail("record " + record + " holds " + std::to_string(size) + " bytes, not " +
           std::to_string(numel) + " elements of " + type);
    }
    torch::Tensor flat = torch::empty({numel}, torch::TensorOptions().dtype(t->second));
    std::memcpy(flat.data_ptr(), data.get(), size);
    storages_.emplace(key, flat);
    return make(flat);
  }

  std::vector<int64_t> int_tuple(const Ref& r) {
    std::vector<int64_t> out;
    for (const Ref& x : as<Tuple>(r).items) out.push_back(as<int64_t>(x));
    return out;
  }
  Ref& top() {
    if (stack_.empty()) fail("pickle uses an empty stack");
    return stack_.back();
  }
  template <typename T>
  T& as(const Ref& r) {
    if (!r || !std::holds_alternative<T>(r->v)) fail("unexpected value type in the pickle");
    return std::get<T>(r->v);
  }

  caffe2::serialize::PyTorchStreamReader& zip_;
  const std::string p_;
  const std::string where_;
  size_t pos_ = 0;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::map<size_t, Ref> memo_;
  std::map<std::string, torch::Tensor> storages_;
};

// read_pth() of an archive check_torch_zip() passed; libtorch's exceptions escape.
StateDict read_checked_pth(const std::string& bytes, const std::string& where) {
  std::istringstream in(bytes);
  caffe2::serialize::PyTorchStreamReader zip(&in);
  if (!zip.hasRecord("data.pkl")) core::fail_data(where + ": no data.pkl in the archive");
  auto [data, size] = zip.getRecord("data.pkl");
  Unpickler u(zip, std::string(static_cast<const char*>(data.get()), size), where);
  Ref root = u.run();
  if (!std::holds_alternative<Dict>(root->v)) u.fail("the pickled object is not a dict");
  StateDict out;
  for (const auto& [k, v] : std::get<Dict>(root->v).items) {
    if (!std::holds_alternative<std::string>(k->v) ||
        !std::holds_alternative<torch::Tensor>(v->v)) {
      u.fail(
          "the dict holds more than str → Tensor entries (a checkpoint? save "
          "model.state_dict())");
    }
    out.emplace_back(std::get<std::string>(k->v), std::get<torch::Tensor>(v->v).contiguous());
  }
  return out;
}

}  // namespace

StateDict read_pth(const std::string& bytes, const std::string& where) {
  check_torch_zip(bytes, where);
  try {
    return read_checked_pth(bytes, where);
  } catch (...) {
    rethrow_as_data_error(where + ": not a torch.save archive that ddpipe can read: ");
  }
}

}  // namespace ddpipe::model
