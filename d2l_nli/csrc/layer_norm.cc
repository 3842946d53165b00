// LayerNorm over the last axis as an MXNet 1.9 extension operator, with
// a backward pass that reads each row once. MXNet 1.9.1's own CPU backward
// for LayerNorm is ~10x slower than its forward on BERT's shapes.
//
// Operator d2l_layer_norm(data, gamma, beta; eps) -> out, all float32;
// data (..., C), gamma and beta (C,). Built by setup.py against the
// lib_api.h / lib_api.cc that the mxnet wheel ships; loaded by
// d2l_nli/fast_ops.py with mx.library.load.
#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "mxnet/lib_api.h"

using namespace mxnet::ext;

namespace {

float eps_of(const std::unordered_map<std::string, std::string>& attrs) {
  auto it = attrs.find("eps");
  return it == attrs.end() ? 1e-5f : std::strtof(it->second.c_str(), nullptr);
}

// Rows [begin, end) of an (N, C) array are independent: run them on a few threads.
template <typename F>
void for_rows(int64_t rows, int64_t cols, F body) {
  const char* env = std::getenv("OMP_NUM_THREADS");
  int threads = env ? std::atoi(env) : 1;
  if (threads < 1) threads = 1;
  if (threads > 8) threads = 8;
  if (rows * cols < (1 << 16)) threads = 1;  // too small to split
  if (threads == 1) {
    body(0, rows, 0);
    return;
  }
  std::vector<std::thread> pool;
  int64_t chunk = (rows + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    int64_t b = t * chunk, e = std::min(rows, b + chunk);
    if (b < e) pool.emplace_back(body, b, e, t);
  }
  for (auto& th : pool) th.join();
}

// Mean and 1/std of one row (two passes: exact for rows of any scale).
inline void moments(const float* x, int64_t cols, float eps, float* mean, float* rstd) {
  float sum = 0.f;
  for (int64_t j = 0; j < cols; ++j) sum += x[j];
  const float mu = sum / cols;
  float sq = 0.f;
  for (int64_t j = 0; j < cols; ++j) {
    const float d = x[j] - mu;
    sq += d * d;
  }
  *mean = mu;
  *rstd = 1.f / std::sqrt(sq / cols + eps);
}

MXReturnValue parse_attrs(const std::unordered_map<std::string, std::string>& attrs,
                          int* num_in, int* num_out) {
  *num_in = 3;
  *num_out = 1;
  return MX_SUCCESS;
}

MXReturnValue infer_type(const std::unordered_map<std::string, std::string>& attrs,
                         std::vector<int>* in_types, std::vector<int>* out_types) {
  for (int t : *in_types) {
    if (t != kFloat32) {
      MX_ERROR_MSG << "d2l_layer_norm takes float32 arrays only";
      return MX_FAIL;
    }
  }
  (*out_types)[0] = kFloat32;
  return MX_SUCCESS;
}

MXReturnValue infer_shape(const std::unordered_map<std::string, std::string>& attrs,
                          std::vector<std::vector<unsigned int>>* in_shapes,
                          std::vector<std::vector<unsigned int>>* out_shapes) {
  const auto& data = (*in_shapes)[0];
  if (data.empty()) {
    MX_ERROR_MSG << "d2l_layer_norm: data needs at least one axis";
    return MX_FAIL;
  }
  const unsigned int cols = data.back();
  for (int i = 1; i < 3; ++i) {
    if ((*in_shapes)[i].size() != 1 || (*in_shapes)[i][0] != cols) {
      MX_ERROR_MSG << "d2l_layer_norm: gamma and beta must have shape (" << cols << ",)";
      return MX_FAIL;
    }
  }
  (*out_shapes)[0] = data;
  return MX_SUCCESS;
}

MXReturnValue forward(const std::unordered_map<std::string, std::string>& attrs,
                      std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                      const OpResource& res) {
  const float eps = eps_of(attrs);
  const float* x = inputs->at(0).data<float>();
  const float* gamma = inputs->at(1).data<float>();
  const float* beta = inputs->at(2).data<float>();
  float* y = outputs->at(0).data<float>();
  const int64_t cols = inputs->at(1).size();
  const int64_t rows = cols ? inputs->at(0).size() / cols : 0;
  for_rows(rows, cols, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const float* xi = x + i * cols;
      float* yi = y + i * cols;
      float mu, r;
      moments(xi, cols, eps, &mu, &r);
      for (int64_t j = 0; j < cols; ++j) yi[j] = (xi[j] - mu) * r * gamma[j] + beta[j];
    }
  });
  return MX_SUCCESS;
}

// Inputs: d_out, data, gamma, beta (and out); outputs: d_data, d_gamma, d_beta.
MXReturnValue backward(const std::unordered_map<std::string, std::string>& attrs,
                       std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                       const OpResource& res) {
  const float eps = eps_of(attrs);
  const float* dy = inputs->at(0).data<float>();
  const float* x = inputs->at(1).data<float>();
  const float* gamma = inputs->at(2).data<float>();
  float* dx = outputs->at(0).data<float>();
  float* dgamma = outputs->at(1).data<float>();
  float* dbeta = outputs->at(2).data<float>();
  const int64_t cols = inputs->at(2).size();
  const int64_t rows = cols ? inputs->at(1).size() / cols : 0;
  // Per-thread sums of d_gamma and d_beta, added up at the end.
  std::vector<std::vector<float>> dg(8, std::vector<float>(cols, 0.f));
  std::vector<std::vector<float>> db(8, std::vector<float>(cols, 0.f));
  for_rows(rows, cols, [&](int64_t begin, int64_t end, int t) {
    std::vector<float> xhat(cols);
    float* g_sum = dg[t].data();
    float* b_sum = db[t].data();
    for (int64_t i = begin; i < end; ++i) {
      const float* xi = x + i * cols;
      const float* dyi = dy + i * cols;
      float* dxi = dx + i * cols;
      float mu, r;
      moments(xi, cols, eps, &mu, &r);
      float mean_g = 0.f, mean_gx = 0.f;  // means of dy*gamma and dy*gamma*xhat
      for (int64_t j = 0; j < cols; ++j) {
        xhat[j] = (xi[j] - mu) * r;
        const float g = dyi[j] * gamma[j];
        mean_g += g;
        mean_gx += g * xhat[j];
        g_sum[j] += dyi[j] * xhat[j];
        b_sum[j] += dyi[j];
      }
      mean_g /= cols;
      mean_gx /= cols;
      for (int64_t j = 0; j < cols; ++j)
        dxi[j] = r * (dyi[j] * gamma[j] - mean_g - xhat[j] * mean_gx);
    }
  });
  for (int64_t j = 0; j < cols; ++j) {
    float g = 0.f, b = 0.f;
    for (int t = 0; t < 8; ++t) {
      g += dg[t][j];
      b += db[t][j];
    }
    dgamma[j] = g;
    dbeta[j] = b;
  }
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(d2l_layer_norm)
    .setParseAttrs(parse_attrs)
    .setInferType(infer_type)
    .setInferShape(infer_shape)
    .setForward(forward, "cpu")
    .setBackward(backward, "cpu");

MXReturnValue initialize(int version) {
  if (version >= 10900) return MX_SUCCESS;
  MX_ERROR_MSG << "d2l_layer_norm needs MXNet 1.9 or newer, found " << version;
  return MX_FAIL;
}
