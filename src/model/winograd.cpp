#include "model/winograd.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/torch.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <unordered_map>

namespace ddpipe::model {
namespace {

using dnnl::algorithm;
using dnnl::memory;
using Tag = memory::format_tag;

std::atomic<bool> g_enabled{[] {
  const char* env = std::getenv("DDPIPE_WINOGRAD");
  return !(env && std::strcmp(env, "0") == 0);
}()};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The three primitives of one shape; null when oneDNN has no Winograd kernel for it.
struct Primitives {
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
};

std::shared_ptr<Primitives> make_primitives(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w) {
  auto& eng = cpu_engine();
  const memory::dims src{n, c, h, w}, wei{k, c, 3, 3}, dst{n, k, h, w}, one{1, 1};
  const memory::desc sd(src, memory::data_type::f32, Tag::any);
  const memory::desc wd(wei, memory::data_type::f32, Tag::any);
  const memory::desc dd(dst, memory::data_type::f32, Tag::any);
  // Scratch memory comes from torch's allocator for the duration of each call, instead of a
  // buffer oneDNN would keep for the life of the process.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  try {
    auto p = std::make_shared<Primitives>();
    p->fwd_pd = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                        algorithm::convolution_winograd, sd, wd, dd, one, one, one),
        attr, eng);
    p->bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(
        dnnl::convolution_backward_data::desc(algorithm::convolution_winograd, sd, wd, dd, one, one,
                                              one),
        attr, eng, p->fwd_pd);
    p->bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(
        dnnl::convolution_backward_weights::desc(algorithm::convolution_winograd, sd, wd, dd, one,
                                                 one, one),
        attr, eng, p->fwd_pd);
    p->fwd = dnnl::convolution_forward(p->fwd_pd);
    p->bwd_data = dnnl::convolution_backward_data(p->bwd_data_pd);
    p->bwd_weights = dnnl::convolution_backward_weights(p->bwd_weights_pd);
    return p;
  } catch (const dnnl::error&) {
    return nullptr;  // no Winograd implementation for this shape or CPU
  }
}

std::shared_ptr<Primitives> primitives(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w) {
  static std::mutex mu;
  static std::map<std::array<int64_t, 5>, std::shared_ptr<Primitives>> cache;
  const std::array<int64_t, 5> key{n, c, k, h, w};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it == cache.end()) {
    if (cache.size() > 256) cache.clear();  // batch sizes are few; never grow without bound
    it = cache.emplace(key, make_primitives(n, c, k, h, w)).first;
  }
  return it->second;
}

// A torch tensor as oneDNN memory: NCHW/OIHW when contiguous, NHWC/OHWI when channels-last.
memory wrap(const torch::Tensor& t, bool weights) {
  const bool cl = !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
  const Tag tag = weights ? (cl ? Tag::ohwi : Tag::oihw) : (cl ? Tag::nhwc : Tag::nchw);
  const memory::dims dims(t.sizes().begin(), t.sizes().end());
  return memory(memory::desc(dims, memory::data_type::f32, tag), cpu_engine(), t.data_ptr());
}

// `m` in layout `want`: `m` itself, or a reordered copy whose bytes live in `holder`.
memory in_layout(const memory& m, const memory::desc& want, dnnl::stream& s,
                 torch::Tensor& holder) {
  if (m.get_desc() == want) return m;
  holder = torch::empty({static_cast<int64_t>(want.get_size())}, torch::kUInt8);
  memory out(want, cpu_engine(), holder.data_ptr());
  dnnl::reorder(m, out).execute(s, const_cast<memory&>(m), out);
  return out;
}

torch::Tensor like_input(const torch::Tensor& x, int64_t channels) {
  auto fmt = x.is_contiguous() ? at::MemoryFormat::Contiguous : at::MemoryFormat::ChannelsLast;
  return torch::empty({x.size(0), channels, x.size(2), x.size(3)}, x.options(), fmt);
}

// Executes a primitive whose output `out_arg` (layout `out_desc`) must end up in `out`.
void execute(dnnl::primitive& prim, const memory::desc& scratchpad_desc,
             std::unordered_map<int, memory> args, int out_arg, const memory::desc& out_desc,
             const memory& out, dnnl::stream& s) {
  torch::Tensor scratchpad =
      torch::empty({static_cast<int64_t>(scratchpad_desc.get_size())}, torch::kUInt8);
  args[DNNL_ARG_SCRATCHPAD] = memory(scratchpad_desc, cpu_engine(), scratchpad.data_ptr());
  torch::Tensor scratch;
  memory target = out;
  if (out.get_desc() != out_desc) {
    scratch = torch::empty({static_cast<int64_t>(out_desc.get_size())}, torch::kUInt8);
    target = memory(out_desc, cpu_engine(), scratch.data_ptr());
  }
  args[out_arg] = target;
  prim.execute(s, args);
  if (target.get_data_handle() != out.get_data_handle()) {
    dnnl::reorder(target, out).execute(s, target, const_cast<memory&>(out));
  }
  s.wait();
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct WinogradFn : torch::autograd::Function<WinogradFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& w_in) {
    auto x = x_in.is_contiguous(at::MemoryFormat::ChannelsLast) ? x_in : x_in.contiguous();
    auto w = w_in.is_contiguous(at::MemoryFormat::ChannelsLast) ? w_in : w_in.contiguous();
    auto p = primitives(x.size(0), x.size(1), w.size(0), x.size(2), x.size(3));
    dnnl::stream s(cpu_engine());
    torch::Tensor hx, hw;
    auto src = in_layout(wrap(x, false), p->fwd_pd.src_desc(), s, hx);
    auto wei = in_layout(wrap(w, true), p->fwd_pd.weights_desc(), s, hw);
    auto y = like_input(x, w.size(0));
    execute(p->fwd, p->fwd_pd.scratchpad_desc(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}},
            DNNL_ARG_DST, p->fwd_pd.dst_desc(), wrap(y, false), s);
    ctx->save_for_backward({x, w});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    auto gy =
        grads[0].is_contiguous(at::MemoryFormat::ChannelsLast) ? grads[0] : grads[0].contiguous();
    auto p = primitives(x.size(0), x.size(1), w.size(0), x.size(2), x.size(3));
    dnnl::stream s(cpu_engine());
    torch::Tensor gx, gw, h_dy, h_w, h_src, h_dy2;
    const memory user_dy = wrap(gy, false);
    std::optional<memory> dy;  // in bwd_data's layout, reused by bwd_weights when it matches
    if (ctx->needs_input_grad(0)) {
      dy = in_layout(user_dy, p->bwd_data_pd.diff_dst_desc(), s, h_dy);
      auto wei = in_layout(wrap(w, true), p->bwd_data_pd.weights_desc(), s, h_w);
      gx = like_input(x, x.size(1));
      execute(p->bwd_data, p->bwd_data_pd.scratchpad_desc(),
              {{DNNL_ARG_DIFF_DST, *dy}, {DNNL_ARG_WEIGHTS, wei}}, DNNL_ARG_DIFF_SRC,
              p->bwd_data_pd.diff_src_desc(), wrap(gx, false), s);
      h_w = torch::Tensor();
    }
    if (ctx->needs_input_grad(1)) {
      auto src = in_layout(wrap(x, false), p->bwd_weights_pd.src_desc(), s, h_src);
      const auto& want = p->bwd_weights_pd.diff_dst_desc();
      auto dy_w = dy && dy->get_desc() == want ? *dy : in_layout(user_dy, want, s, h_dy2);
      gw = torch::empty_like(w);
      execute(p->bwd_weights, p->bwd_weights_pd.scratchpad_desc(),
              {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, dy_w}}, DNNL_ARG_DIFF_WEIGHTS,
              p->bwd_weights_pd.diff_weights_desc(), wrap(gw, true), s);
    }
    return {gx, gw};
  }
};

}  // namespace

bool winograd_applies(const torch::Tensor& x, const torch::Tensor& w, int64_t stride, int64_t pad) {
  if (!g_enabled.load(std::memory_order_relaxed) || at::autocast::is_cpu_enabled()) return false;
  // Training only: inference keeps torch::conv2d, batch-invariant per input (see conv.h).
  if (!torch::GradMode::is_enabled()) return false;
  if (x.dim() != 4 || w.dim() != 4 || stride != 1 || pad != 1) return false;
  if (w.size(2) != 3 || w.size(3) != 3 || x.size(1) != w.size(1)) return false;
  // Multiples of 16 channels (oneDNN's kernel); from 32 channels on, as with 16 the transforms
  // and layout changes cost what the saved multiplications gain (measured: 16 channels at 28×28
  // run no faster, 32 at 14×14 ~15% faster, 64 and more ~1.5–2.3× faster).
  if (x.size(1) % 16 != 0 || w.size(0) % 16 != 0 || x.size(1) < 32 || w.size(0) < 32) return false;
  if (x.size(2) < 4 || x.size(3) < 4) return false;
  if (x.scalar_type() != torch::kFloat || w.scalar_type() != torch::kFloat) return false;
  if (!x.device().is_cpu() || !w.device().is_cpu() || x.size(0) == 0) return false;
  return primitives(x.size(0), x.size(1), w.size(0), x.size(2), x.size(3)) != nullptr;
}

torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& weight) {
  return WinogradFn::apply(x, weight);
}

void set_winograd(bool enabled) { g_enabled.store(enabled); }

}  // namespace ddpipe::model
