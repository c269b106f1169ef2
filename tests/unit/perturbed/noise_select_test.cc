// NoiseSelector against the full pass it replaces: FillNoise + η = fl(θ + εZ) + the oracle.
#include "solvers/perturbed/noise_select.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "solvers/oracles/oracle_factory.h"
#include "solvers/perturbed/noise.h"

namespace perturbd {
namespace {

NoiseRow Row(uint64_t key, uint32_t instance, uint32_t sample, NoiseDistribution dist,
             bool antithetic) {
  return NoiseRow{.key = key,
                  .instance = instance,
                  .sample = sample,
                  .antithetic = antithetic,
                  .distribution = dist,
                  .single = true};
}

// d = 1, 33, 100, 160 and 513 end NoiseWords' chunks on steps of one, two, four and four +
// one Philox chains (the AVX-512 kernel writes exactly the words of the padded row).
TEST(NoiseWords, ExactNoiseFromWordsIsFillNoiseBitForBit) {
  for (NoiseDistribution dist : {NoiseDistribution::kNormal, NoiseDistribution::kGumbel}) {
    for (size_t d : {1u, 7u, 8u, 9u, 31u, 32u, 33u, 100u, 160u, 513u, 1000u}) {
      for (uint32_t sample : {0u, 1u, 6u}) {  // sample 1 is the flipped one of a pair
        const NoiseRow row = Row(99, 2, sample, dist, /*antithetic=*/true);
        std::vector<double> z(d);
        FillNoise(row, absl::MakeSpan(z), {});
        std::vector<uint32_t> words((d + 31) / 32 * 32), portable(words.size());
        NoiseWords(row, d, words.data());
        NoiseWords(row, d, portable.data(), /*vector_kernel=*/false);
        ASSERT_EQ(words, portable) << "d=" << d << " sample=" << sample;
        for (size_t i = 0; i < d; ++i) {
          ASSERT_EQ(static_cast<double>(NoiseFromWordsF(row, words.data(), i)), z[i])
              << "d=" << d << " i=" << i << " sample=" << sample;
        }
      }
    }
  }
}

// The selector's GUMBEL ∇ν from the words of its last row against FillNoise's, bit for bit.
TEST(NoiseSelector, GumbelGradFromTheRowsWordsIsFillNoisesScore) {
  for (size_t d : {64u, 100u, 513u, 1000u}) {
    NoiseSelector selector(d, 3);
    std::vector<double> theta(d, 0.0);
    for (size_t i = 0; i < d; ++i) theta[i] = std::sin(0.37 * static_cast<double>(i));
    for (uint32_t sample : {0u, 1u, 6u}) {  // sample 1 is the flipped one of a pair
      const NoiseRow row = Row(7, 1, sample, NoiseDistribution::kGumbel, /*antithetic=*/true);
      SparseVector y(static_cast<int64_t>(d));
      std::vector<double> eta(d);
      selector.Select(row, theta, 0.5, true, Sense::kMaximize, y, eta.data());
      std::vector<double> z(d), g(d), grad(d);
      FillNoise(row, absl::MakeSpan(z), absl::MakeSpan(g));
      selector.GumbelGrad(absl::MakeSpan(grad));
      ASSERT_EQ(grad, g) << "d=" << d << " sample=" << sample;
    }
  }
}

struct Case {
  size_t d;
  size_t k;
  NoiseDistribution dist;
  Sense sense;
  bool f32;
  double epsilon;
  int theta_kind;  // 0: N(0,1); 1: a few tied levels; 2: spread over 1e6; 3: all equal;
                   // 4: sin(0.37 i), crowded at ±1 (the estimator benchmark's θ);
                   // 5: 1 at every 17th coordinate, else 0 (equal block maxima, anywhere in
                   // their blocks, and tied best keys); 6: the lowest finite value
};

std::vector<double> Theta(const Case& c, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> level(0, 3);
  std::vector<double> theta(c.d);
  for (size_t i = 0; i < c.d; ++i) {
    double& t = theta[i];
    switch (c.theta_kind) {
      case 0: t = normal(rng); break;
      case 1: t = 0.25 * level(rng); break;
      case 2: t = 1e6 * normal(rng); break;
      case 4: t = std::sin(0.37 * static_cast<double>(i)); break;
      case 5: t = i % 17 == 0 ? 1.0 : 0.0; break;
      case 6:
        t = c.f32 ? std::numeric_limits<float>::lowest() : std::numeric_limits<double>::lowest();
        break;
      default: t = 1.5; break;
    }
    if (c.f32) t = static_cast<float>(t);
  }
  return theta;
}

// The selector's y and η against the full pass, over samples of both parities; with
// `samples_per_row` > 1 each θ is drawn once and its samples go through Select as one row
// (same_row), and *threshold_samples counts those its threshold decided.
void ExpectSameAsFullPass(const Case& c, int rows, size_t* exact_total = nullptr,
                          bool vector_kernels = true, int samples_per_row = 1,
                          size_t* threshold_samples = nullptr) {
  std::mt19937_64 rng(c.d * 131 + c.k * 7 + static_cast<int>(c.dist) * 3 + c.theta_kind);
  std::unique_ptr<Oracle> oracle =
      c.k == 1 ? MakeOracle(ArgmaxSpec{}, static_cast<int64_t>(c.d), c.sense).value()
               : MakeOracle(TopKSpec{.k = static_cast<uint32_t>(c.k)},
                            static_cast<int64_t>(c.d), c.sense).value();
  ASSERT_EQ(oracle->selection_k(), static_cast<int64_t>(c.k));
  std::unique_ptr<OracleWorkspace> ws = oracle->NewWorkspace();
  NoiseSelector selector(c.d, c.k, vector_kernels);
  SparseVector y_full(static_cast<int64_t>(c.d)), y_sel(static_cast<int64_t>(c.d));
  std::vector<double> z(c.d), eta(c.d), eta_sel(c.d);
  std::vector<double> theta;
  uint64_t key = 0;
  for (int r = 0; r < rows * samples_per_row; ++r) {
    const bool same_row = r % samples_per_row != 0;
    if (!same_row) {
      theta = Theta(c, rng);
      key = rng();
    }
    const uint32_t sample = static_cast<uint32_t>(samples_per_row > 1 ? r % samples_per_row : r);
    const NoiseRow row = Row(key, static_cast<uint32_t>(r / samples_per_row % 3), sample, c.dist,
                             /*antithetic=*/(r / samples_per_row % 4) < 2);
    FillNoise(row, absl::MakeSpan(z), {});
    for (size_t i = 0; i < c.d; ++i) {
      const double v = theta[i] + c.epsilon * z[i];
      eta[i] = c.f32 ? static_cast<double>(static_cast<float>(v)) : v;
    }
    std::vector<double> eta_oracle = eta;
    oracle->Solve(absl::MakeSpan(eta_oracle), *ws, y_full);
    // Some coordinates whose η is wanted as well (FY targets), most of them not chosen; not
    // when counting the transforms.
    std::vector<int32_t> also;
    for (size_t i = r % 5; exact_total == nullptr && i < c.d; i += 37) {
      also.push_back(static_cast<int32_t>(i));
    }
    const size_t exact = selector.Select(row, theta, c.epsilon, c.f32, c.sense, y_sel,
                                         eta_sel.data(), also, same_row);
    for (const int32_t i : also) {
      EXPECT_EQ(eta_sel[static_cast<size_t>(i)], eta[static_cast<size_t>(i)]) << "also " << i;
    }
    if (exact_total != nullptr) *exact_total += exact;
    ASSERT_EQ(std::vector<int32_t>(y_sel.indices().begin(), y_sel.indices().end()),
              std::vector<int32_t>(y_full.indices().begin(), y_full.indices().end()))
        << "row " << r << " d=" << c.d << " k=" << c.k << " eps=" << c.epsilon;
    for (size_t j = 0; j < y_sel.size(); ++j) {
      EXPECT_EQ(y_sel.value(j), 1.0);
      const size_t i = static_cast<size_t>(y_sel.index(j));
      EXPECT_EQ(eta_sel[i], eta[i]) << "row " << r << " coordinate " << i;
    }
  }
  if (threshold_samples != nullptr) *threshold_samples += selector.threshold_samples();
}

TEST(NoiseSelector, ArgmaxAndTopKEqualTheFullPassTiesAndSensesIncluded) {
  for (NoiseDistribution dist : {NoiseDistribution::kGumbel, NoiseDistribution::kNormal}) {
    for (Sense sense : {Sense::kMaximize, Sense::kMinimize}) {
      for (bool f32 : {false, true}) {
        for (size_t k : {1u, 3u, 10u, 32u}) {
          for (size_t d : {64u, 100u, 1003u}) {
            for (int theta_kind : {0, 1, 2, 3, 4}) {
              for (double eps : {0.0, 1e-3, 0.5, 20.0}) {
                ExpectSameAsFullPass({d, k, dist, sense, f32, eps, theta_kind}, 6);
                // The portable kernels (what a CPU without AVX-512 runs).
                ExpectSameAsFullPass({d, k, dist, sense, f32, eps, theta_kind}, 2, nullptr,
                                     /*vector_kernels=*/false);
              }
            }
          }
        }
      }
    }
  }
}

// Rows of one seed per block (at least 2k blocks) whose block maxima are mostly equal: the seeds
// must still be k distinct coordinates. With ε = 0 and θ of kind 5 the k best are tied with
// dozens of others, few enough to be ranked rather than offered to a k-buffer: ties go to the
// lower index there too.
TEST(NoiseSelector, EqualBlockMaximaAndTiedBestKeys) {
  for (bool vector_kernels : {true, false}) {
    for (NoiseDistribution dist : {NoiseDistribution::kGumbel, NoiseDistribution::kNormal}) {
      for (Sense sense : {Sense::kMaximize, Sense::kMinimize}) {
        for (size_t k : {1u, 10u, 32u}) {
          for (size_t d : {1024u, 1031u, 1040u}) {
            for (int theta_kind : {3, 5}) {
              for (double eps : {0.0, 1e-3, 0.5}) {
                ExpectSameAsFullPass({d, k, dist, sense, true, eps, theta_kind}, 4, nullptr,
                                     vector_kernels);
              }
            }
          }
        }
      }
    }
  }
}

// η overflowing to −∞ (θ the lowest finite value, a huge ε) for about half the coordinates:
// with fewer than k finite keys T is −∞ and every coordinate is a candidate, but not the
// padding of the last block of 16.
TEST(NoiseSelector, KeysOfMinusInfinity) {
  for (bool vector_kernels : {true, false}) {
    for (NoiseDistribution dist : {NoiseDistribution::kGumbel, NoiseDistribution::kNormal}) {
      for (bool f32 : {false, true}) {
        for (size_t k : {10u, 32u}) {
          for (size_t d : {65u, 100u, 1003u}) {
            ExpectSameAsFullPass({d, k, dist, Sense::kMaximize, f32, f32 ? 1e38 : 1e308, 6}, 6,
                                 nullptr, vector_kernels);
          }
        }
      }
    }
  }
}

// The portable kernels are the reference of the vector ones: the same bounds, seeds and
// candidates, so as many transforms (trivially on a CPU without AVX-512, where both are
// portable).
TEST(NoiseSelector, PortableKernelsTransformAsManyCoordinates) {
  for (NoiseDistribution dist : {NoiseDistribution::kGumbel, NoiseDistribution::kNormal}) {
    for (size_t k : {1u, 3u, 10u, 17u, 32u}) {
      for (size_t d : {100u, 1003u, 2000u}) {
        for (int theta_kind : {0, 4}) {
          const Case c{d, k, dist, Sense::kMaximize, true, 0.5, theta_kind};
          size_t vector = 0, portable = 0;
          ExpectSameAsFullPass(c, 20, &vector);
          ExpectSameAsFullPass(c, 20, &portable, /*vector_kernels=*/false);
          EXPECT_EQ(vector, portable) << "d=" << d << " k=" << k;
        }
      }
    }
  }
}

// The point of the selector: on the e2e workloads' shapes it transforms a small fraction of the
// noise. A bound table that were wrong in the loose direction would still pass the test
// above and fail here.
TEST(NoiseSelector, TransformsFewCoordinatesOnTypicalRows) {
  size_t exact = 0;
  const int rows = 200;
  ExpectSameAsFullPass({1000, 1, NoiseDistribution::kGumbel, Sense::kMaximize, true, 0.5, 0},
                       rows, &exact);
  EXPECT_LT(exact, static_cast<size_t>(rows) * 8) << "argmax GUMBEL: Z per row";
  exact = 0;
  ExpectSameAsFullPass({1000, 10, NoiseDistribution::kNormal, Sense::kMaximize, true, 0.5, 0},
                       rows, &exact);
  EXPECT_LT(exact, static_cast<size_t>(rows) * 40) << "top-10 NORMAL: Z per row";
  exact = 0;
  ExpectSameAsFullPass({1000, 1, NoiseDistribution::kNormal, Sense::kMinimize, false, 0.5, 0},
                       rows, &exact);
  EXPECT_LT(exact, static_cast<size_t>(rows) * 20) << "argmin NORMAL: Z per row";
  exact = 0;
  ExpectSameAsFullPass({1000, 10, NoiseDistribution::kNormal, Sense::kMaximize, true, 0.5, 4},
                       rows, &exact);
  EXPECT_LT(exact, static_cast<size_t>(rows) * 40) << "top-10 NORMAL, θ crowded at 1: Z per row";
  exact = 0;
  ExpectSameAsFullPass({1000, 1, NoiseDistribution::kGumbel, Sense::kMaximize, true, 0.5, 4},
                       rows, &exact);
  EXPECT_LT(exact, static_cast<size_t>(rows) * 8) << "argmax GUMBEL, θ crowded at 1: Z per row";
}

// Rows of many samples: after a few, a row's threshold decides the samples, with the same y
// and η as the full pass — ties, −∞ keys, both senses, dtypes and kernels included.
TEST(NoiseSelector, RowThresholdGivesTheFullPassesAnswers) {
  for (bool vector_kernels : {true, false}) {
    for (NoiseDistribution dist : {NoiseDistribution::kGumbel, NoiseDistribution::kNormal}) {
      for (Sense sense : {Sense::kMaximize, Sense::kMinimize}) {
        for (bool f32 : {false, true}) {
          for (size_t k : {1u, 10u, 32u}) {
            for (size_t d : {64u, 1003u}) {
              for (int theta_kind : {0, 2, 3, 4, 5, 6}) {
                for (double eps : {0.0, 1e-3, 0.5, 20.0}) {
                  ExpectSameAsFullPass({d, k, dist, sense, f32, eps, theta_kind}, 2, nullptr,
                                       vector_kernels, 24);
                }
              }
            }
          }
        }
      }
    }
  }
}

// On the e2e workloads' shapes the threshold decides nearly every sample after the first few,
// and the transforms stay few: a threshold or need_i that were too loose would pass every
// coordinate and fail here, one that were too tight would fail the test above.
TEST(NoiseSelector, RowThresholdDecidesMostSamplesWithFewTransforms) {
  constexpr int kRows = 4, kSamples = 100;
  for (const Case& c :
       {Case{1000, 1, NoiseDistribution::kGumbel, Sense::kMaximize, true, 0.5, 0},
        Case{1000, 10, NoiseDistribution::kNormal, Sense::kMaximize, true, 0.5, 0},
        Case{1000, 10, NoiseDistribution::kNormal, Sense::kMinimize, false, 0.5, 4},
        Case{1000, 1, NoiseDistribution::kGumbel, Sense::kMaximize, true, 0.5, 4}}) {
    SCOPED_TRACE(testing::Message() << "k=" << c.k << " theta_kind=" << c.theta_kind);
    size_t exact = 0, decided = 0;
    ExpectSameAsFullPass(c, kRows, &exact, true, kSamples, &decided);
    std::printf("k=%zu dist=%d theta=%d: %zu of %d samples by the threshold, %.1f Z per sample\n",
                c.k, static_cast<int>(c.dist), c.theta_kind, decided, kRows * kSamples,
                static_cast<double>(exact) / (kRows * kSamples));
    EXPECT_GE(decided, static_cast<size_t>(kRows * (kSamples - 10)));
    EXPECT_LT(exact, static_cast<size_t>(kRows * kSamples) * (32 + 4 * c.k));
  }
}

}  // namespace
}  // namespace perturbd
