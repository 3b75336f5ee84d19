#include "dist/grad_compression.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/torch.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "model/gemm.h"
#include "model/model.h"
#include "model/zip_check.h"

namespace ddpipe::dist {
namespace {

// bf16_compress_hook / fp16_compress_hook: ÷ N in fp32, one cast, a 16-bit sum, the cast back.
class HalfReducer : public BucketReducer {
 public:
  HalfReducer(Communicator& comm, c10::ScalarType dtype) : comm_(comm), dtype_(dtype) {}

  void reduce(size_t, torch::Tensor& flat) override {
    torch::Tensor half = flat.div(static_cast<double>(comm_.world_size())).to(dtype_);
    comm_.allreduce_sum_16bit(half);
    flat.copy_(half);
  }

 private:
  Communicator& comm_;
  c10::ScalarType dtype_;
};

// powerSGD_hook with error feedback and warm start (see the header).
class PowerSgdReducer : public BucketReducer {
 public:
  PowerSgdReducer(const CompressionOptions& o, Communicator& comm,
                  const std::vector<BucketLayout>& layout)
      : options_(o), comm_(comm) {
    for (const auto& bucket : layout) plans_.push_back(plan(bucket, o.powersgd_rank));
    q_.resize(plans_.size());
    error_.resize(plans_.size());
    ps_.resize(plans_.size());
  }

  void reduce(size_t b, torch::Tensor& flat) override {
    const double n = static_cast<double>(comm_.world_size());
    if (step_ < options_.powersgd_start_step) {
      std::vector<torch::Tensor> one{flat};
      comm_.allreduce_sum(one);
      flat.div_(n);
      return;
    }
    const Plan& plan = plans_[b];
    if (!error_[b].defined()) error_[b] = torch::zeros_like(flat);
    flat.add_(error_[b]);
    error_[b].copy_(flat);
    // The small gradients: one fp32 allreduce, in flight while P is computed and reduced.
    torch::Tensor plain;
    std::unique_ptr<Communicator::Pending> plain_sum;
    if (!plan.plain.empty()) {
      std::vector<torch::Tensor> parts;
      for (const auto& [offset, numel] : plan.plain)
        parts.push_back(flat.slice(0, offset, offset + numel));
      plain = torch::cat(parts);
      plain_sum = comm_.allreduce_sum_async(plain);
    }
    if (!plan.matrices.empty()) approximate(b, flat);
    if (plain_sum) {
      plain_sum->wait();
      plain.div_(n);
      int64_t at = 0;
      for (const auto& [offset, numel] : plan.plain) {
        flat.slice(0, offset, offset + numel).copy_(plain.slice(0, at, at + numel));
        at += numel;
      }
    }
    error_[b].sub_(flat);
  }

  void step_done() override {
    ++step_;
    if (step_ == options_.powersgd_start_step && comm_.rank() == 0) {
      core::log::info("dist", "PowerSGD compression starts",
                      {{"step", step_}, {"matrix_rank", options_.powersgd_rank}});
    }
  }

  std::string state_bytes() override {
    const bool writer = comm_.rank() == 0;  // the other ranks only send their errors
    torch::serialize::OutputArchive archive;
    archive.write("step", torch::tensor(step_, torch::kLong));
    archive.write("world_size", torch::tensor(comm_.world_size(), torch::kLong));
    size_t bytes = 0;
    for (size_t b = 0; b < plans_.size(); ++b) {
      if (q_[b].defined()) {
        archive.write("q." + std::to_string(b), q_[b]);
        bytes += q_[b].nbytes();
      }
      if (!error_[b].defined()) continue;  // the same buckets on every rank
      for (int64_t r = 0; r < comm_.world_size(); ++r) {
        std::vector<torch::Tensor> one{r == comm_.rank() ? error_[b]
                                                         : torch::empty_like(error_[b])};
        comm_.broadcast(one, r);
        if (!writer) continue;
        archive.write("error." + std::to_string(r) + "." + std::to_string(b), one[0]);
        bytes += one[0].nbytes();
      }
    }
    return writer ? model::archive_bytes(archive, bytes) : std::string();
  }

  void load_state(const std::string& bytes, const std::string& where) override {
    model::check_torch_zip(bytes, where);
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(bytes.data(), bytes.size());
      const int64_t step = scalar(archive, "step", where);
      const int64_t saved_world = scalar(archive, "world_size", where);
      std::vector<torch::Tensor> q(plans_.size()), error(plans_.size());
      for (size_t b = 0; b < plans_.size(); ++b) {
        q[b] = optional(archive, "q." + std::to_string(b), plans_[b].q_numel, where);
        if (saved_world == comm_.world_size()) {
          error[b] =
              optional(archive, "error." + std::to_string(comm_.rank()) + "." + std::to_string(b),
                       plans_[b].numel, where);
        }
      }
      if (saved_world != comm_.world_size() && comm_.rank() == 0) {
        core::log::warn(
            "dist",
            "PowerSGD error feedback starts again at zero: "
            "the checkpoint was written at another world size",
            {{"checkpointed_world_size", saved_world}, {"world_size", comm_.world_size()}});
      }
      step_ = step;
      q_ = std::move(q);
      error_ = std::move(error);
    } catch (...) {
      model::rethrow_as_data_error(where + ": not a PowerSGD state archive: ");
    }
  }

 private:
  struct Matrix {
    int64_t offset, rows, cols, p_offset, q_offset;
  };
  struct Plan {
    std::vector<Matrix> matrices;
    std::vector<std::pair<int64_t, int64_t>> plain;  // offset, numel
    int64_t numel = 0, p_numel = 0, q_numel = 0;
  };

  static Plan plan(const BucketLayout& bucket, int64_t r) {
    Plan p;
    for (const auto& e : bucket) {
      int64_t numel = 1;
      for (int64_t s : e.sizes) numel *= s;
      p.numel = std::max(p.numel, e.offset + numel);
      const int64_t rows = e.sizes.empty() ? 1 : e.sizes[0];
      const int64_t cols = rows > 0 ? numel / rows : 0;
      if (e.sizes.size() >= 2 && (rows + cols) * r * 2 < rows * cols) {
        p.matrices.push_back({e.offset, rows, cols, p.p_numel, p.q_numel});
        p.p_numel += rows * r;
        p.q_numel += cols * r;
      } else if (numel > 0) {
        p.plain.emplace_back(e.offset, numel);
      }
    }
    return p;
  }

  // Gram-Schmidt on the columns of `m` (in place), as PowerSGD's _orthogonalize.
  static void orthogonalize(torch::Tensor m) {
    const int64_t cols = m.size(1);
    for (int64_t i = 0; i < cols; ++i) {
      auto col = m.narrow(1, i, 1);
      col.div_(col.norm() + 1e-8);
      if (i + 1 < cols) {
        auto rest = m.narrow(1, i + 1, cols - i - 1);
        rest.sub_((col * rest).sum(0, true) * col);
      }
    }
  }

  // P = Σ M Q (orthogonalised), Q = Σ Mᵀ P / N, M = P Qᵀ, for each matrix of bucket b.
  void approximate(size_t b, torch::Tensor& flat) {
    const Plan& plan = plans_[b];
    const int64_t r = options_.powersgd_rank;
    if (!q_[b].defined()) q_[b] = random_q(b);
    if (!ps_[b].defined()) ps_[b] = torch::empty({plan.p_numel});
    // The products on oneDNN (model/gemm.h): P = M Q, Q = Mᵀ P, M = P Qᵀ.
    float* q = q_[b].data_ptr<float>();
    float* p = ps_[b].data_ptr<float>();
    float* f = flat.data_ptr<float>();
    for (const auto& m : plan.matrices) {
      model::sgemm(false, false, m.rows, r, m.cols, f + m.offset, q + m.q_offset, p + m.p_offset);
    }
    std::vector<torch::Tensor> ps{ps_[b]};
    comm_.allreduce_sum(ps);
    for (const auto& m : plan.matrices) {
      orthogonalize(ps_[b].slice(0, m.p_offset, m.p_offset + m.rows * r).view({m.rows, r}));
      model::sgemm(true, false, m.cols, r, m.rows, f + m.offset, p + m.p_offset, q + m.q_offset);
    }
    std::vector<torch::Tensor> qs{q_[b]};
    comm_.allreduce_sum(qs);
    q_[b].div_(static_cast<double>(comm_.world_size()));
    for (const auto& m : plan.matrices) {
      model::sgemm(false, true, m.rows, m.cols, r, p + m.p_offset, q + m.q_offset, f + m.offset);
    }
  }

  // Q's start: normal, orthogonalised, from the seed and the bucket (the same on every rank).
  torch::Tensor random_q(size_t b) const {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options_.seed * 1000003 + b);
    torch::Tensor q = at::randn({plans_[b].q_numel}, gen, torch::kFloat);
    const int64_t r = options_.powersgd_rank;
    for (const auto& m : plans_[b].matrices) {
      orthogonalize(q.slice(0, m.q_offset, m.q_offset + m.cols * r).view({m.cols, r}));
    }
    return q;
  }

  static int64_t scalar(torch::serialize::InputArchive& a, const std::string& key,
                        const std::string& where) {
    torch::Tensor t;
    if (!a.try_read(key, t) || t.numel() != 1 || t.scalar_type() != torch::kLong) {
      core::fail_data(where + ": '" + key + "' must be one int64");
    }
    return t.item<int64_t>();
  }

  // The fp32 tensor `key` of `numel` elements, or undefined when the archive has none.
  static torch::Tensor optional(torch::serialize::InputArchive& a, const std::string& key,
                                int64_t numel, const std::string& where) {
    torch::Tensor t;
    if (!a.try_read(key, t)) return {};
    if (t.scalar_type() != torch::kFloat || t.dim() != 1 || t.numel() != numel) {
      core::fail_data(where + ": '" + key + "' must be " + std::to_string(numel) +
                      " float32 values (the buckets of this model at dist.bucket_mb and "
                      "dist.powersgd_rank)");
    }
    return t.clone();
  }

  CompressionOptions options_;
  Communicator& comm_;
  std::vector<Plan> plans_;
  std::vector<torch::Tensor> q_, error_;  // per bucket; undefined until first compressed step
  std::vector<torch::Tensor> ps_;         // per bucket: P, recomputed every step
  int64_t step_ = 0;                      // synchronised steps so far
};

}  // namespace

GradCompression grad_compression_from(const std::string& name) {
  const auto& names = core::kGradCompressions;
  std::string all;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<GradCompression>(i);
    all += (i ? ", " : "") + names[i];
  }
  core::fail_usage("dist.grad_compression: expected one of " + all + ", got '" + name + "'");
}

std::unique_ptr<BucketReducer> make_bucket_reducer(const CompressionOptions& options,
                                                   Communicator& comm,
                                                   std::vector<BucketLayout> layout) {
  switch (options.mode) {
    case GradCompression::kNone:
      return nullptr;
    case GradCompression::kBf16:
      return std::make_unique<HalfReducer>(comm, torch::kBFloat16);
    case GradCompression::kFp16:
      return std::make_unique<HalfReducer>(comm, torch::kHalf);
    case GradCompression::kPowerSgd:
      return std::make_unique<PowerSgdReducer>(options, comm, layout);
  }
  return nullptr;
}

}  // namespace ddpipe::dist
