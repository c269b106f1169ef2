#include "solvers/perturbed/noise.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "solvers/perturbed/philox.h"

namespace perturbd {
namespace {

// Known-answer vectors of Philox4x32-10 published with Random123 (kat_vectors).
TEST(Philox, MatchesRandom123KnownAnswers) {
  PhiloxBlock a = Philox4x32_10(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(a.x[0], 0x6627e8d5u);
  EXPECT_EQ(a.x[1], 0xe169c58du);
  EXPECT_EQ(a.x[2], 0xbc57ac4cu);
  EXPECT_EQ(a.x[3], 0x9b00dbd8u);
  PhiloxBlock b =
      Philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(b.x[0], 0x408f276du);
  EXPECT_EQ(b.x[1], 0x41c83b0eu);
  EXPECT_EQ(b.x[2], 0xa20bc7c6u);
  EXPECT_EQ(b.x[3], 0x6d5451fdu);
  PhiloxBlock c =
      Philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(c.x[0], 0xd16cfe09u);
  EXPECT_EQ(c.x[1], 0x94fdccebu);
  EXPECT_EQ(c.x[2], 0x5001e420u);
  EXPECT_EQ(c.x[3], 0x24126ea1u);
}

std::vector<double> Draw(const NoiseRow& row, size_t d, std::vector<double>* grad = nullptr) {
  std::vector<double> z(d), g(d);
  FillNoise(row, absl::MakeSpan(z), absl::MakeSpan(g));
  if (grad != nullptr) *grad = g;
  return z;
}

TEST(FillNoise, CoordinateDoesNotDependOnLength) {
  NoiseRow row{.key = 42, .instance = 3, .sample = 7};
  const std::vector<double> long_row = Draw(row, 23);
  for (size_t d : {1u, 2u, 3u, 5u, 8u, 13u}) {
    const std::vector<double> short_row = Draw(row, d);
    for (size_t i = 0; i < d; ++i) EXPECT_EQ(short_row[i], long_row[i]) << d << " " << i;
  }
}

TEST(FillNoise, StreamsDifferByKeyInstanceSampleAndDistribution) {
  const NoiseRow base{.key = 1, .instance = 0, .sample = 0};
  const double z0 = Draw(base, 1)[0];
  NoiseRow other = base;
  other.key = 2;
  EXPECT_NE(Draw(other, 1)[0], z0);
  other = base;
  other.key = uint64_t{1} | (uint64_t{1} << 32);  // the high half of the seed matters
  EXPECT_NE(Draw(other, 1)[0], z0);
  other = base;
  other.instance = 1;
  EXPECT_NE(Draw(other, 1)[0], z0);
  other = base;
  other.sample = 1;
  EXPECT_NE(Draw(other, 1)[0], z0);
  other = base;
  other.distribution = NoiseDistribution::kGumbel;
  EXPECT_NE(Draw(other, 1)[0], z0);
}

// Moments over n variates: mean within 5 standard errors, variance within 5 of its own.
void ExpectMoments(NoiseDistribution dist, double mean, double var, double fourth_central,
                   bool single = false) {
  const size_t d = 1000;
  const int rows = 200;
  double s = 0, s2 = 0;
  for (int m = 0; m < rows; ++m) {
    NoiseRow row{.key = 9,
                 .instance = 0,
                 .sample = static_cast<uint32_t>(m),
                 .distribution = dist,
                 .single = single};
    for (double z : Draw(row, d)) {
      s += z;
      s2 += z * z;
    }
  }
  const double n = static_cast<double>(d) * rows;
  const double m1 = s / n;
  const double v = s2 / n - m1 * m1;
  EXPECT_NEAR(m1, mean, 5 * std::sqrt(var / n));
  EXPECT_NEAR(v, var, 5 * std::sqrt((fourth_central - var * var) / n));
}

TEST(FillNoise, NormalHasZeroMeanUnitVariance) {
  ExpectMoments(NoiseDistribution::kNormal, 0.0, 1.0, 3.0);
}

TEST(FillNoise, GumbelHasMeanGammaVariancePiSquaredOverSix) {
  const double pi = 3.14159265358979323846;
  const double var = pi * pi / 6;
  // Gumbel excess kurtosis is 12/5: μ₄ = (3 + 12/5) σ⁴.
  ExpectMoments(NoiseDistribution::kGumbel, 0.5772156649015329, var, 5.4 * var * var);
}

TEST(FillNoise, ScoreIsTheGradientOfNu) {
  std::vector<double> g;
  NoiseRow normal{.key = 5, .sample = 1};
  std::vector<double> z = Draw(normal, 9, &g);
  for (size_t i = 0; i < z.size(); ++i) EXPECT_EQ(g[i], z[i]);
  NoiseRow gumbel{.key = 5, .sample = 1, .distribution = NoiseDistribution::kGumbel};
  z = Draw(gumbel, 9, &g);
  for (size_t i = 0; i < z.size(); ++i) EXPECT_NEAR(g[i], 1.0 - std::exp(-z[i]), 1e-12);
}

TEST(FillNoise, AntitheticPairsNegateNormalAndComplementGumbelUniforms) {
  NoiseRow first{.key = 77, .sample = 4, .antithetic = true};
  NoiseRow second = first;
  second.sample = 5;
  const auto z0 = Draw(first, 11), z1 = Draw(second, 11);
  for (size_t i = 0; i < z0.size(); ++i) EXPECT_EQ(z1[i], -z0[i]);
  // The next pair is a fresh draw.
  NoiseRow third = first;
  third.sample = 6;
  EXPECT_NE(Draw(third, 1)[0], z0[0]);

  first.distribution = second.distribution = NoiseDistribution::kGumbel;
  const auto g0 = Draw(first, 11), g1 = Draw(second, 11);
  for (size_t i = 0; i < g0.size(); ++i) {
    // U = exp(−exp(−G)); the pair has U₀ + U₁ = 1 up to the 2⁻³² grid.
    const double u0 = std::exp(-std::exp(-g0[i])), u1 = std::exp(-std::exp(-g1[i]));
    EXPECT_NEAR(u0 + u1, 1.0, 1e-9);
  }
}

TEST(NoiseMath, LogMatchesLibmToAFewUlp) {
  for (uint64_t x = 1; x < (uint64_t{1} << 32); x = x * 3 + 7) {
    const double u = (static_cast<double>(x) + 0.5) * 0x1p-32;
    EXPECT_NEAR(noise_math::Log(u), std::log(u), 4e-16 * std::fabs(std::log(u)) + 1e-300) << u;
  }
  for (double v : {1e-300, 0.1, 0.5, 0.999999, 1.0, 1.5, 2.0, 22.18, 1e10}) {
    EXPECT_NEAR(noise_math::Log(v), std::log(v), 4e-16 * std::fabs(std::log(v)) + 1e-300) << v;
  }
}

TEST(NoiseMath, SinCos2PiMatchesLibm) {
  for (int k = 0; k <= 4096; ++k) {
    const double u = k / 4096.0;
    double s, c;
    noise_math::SinCos2Pi(u, s, c);
    EXPECT_NEAR(s, std::sin(2 * M_PI * u), 1e-15) << u;
    EXPECT_NEAR(c, std::cos(2 * M_PI * u), 1e-15) << u;
  }
}

// FillNoise's Z and ∇ν of a row against the scalar NoiseQuad (and NoiseLane for single rows),
// bit for bit, for d = 1500 (several chunks and a ragged tail), 1088 (ends on 16 quads: the
// Philox kernel's two-chain step after its four-chain ones), 100 and 13 (rows of 28 and 8
// quads: 28 drawn as 32).
void ExpectScalarReferences(const NoiseRow& row) {
  for (const size_t d : {1500u, 1088u, 100u, 13u}) {
    std::vector<double> g;
    const std::vector<double> z = Draw(row, d, &g);
    for (uint32_t i = 0; i < d; ++i) {
      double zq[4], gq[4];
      NoiseQuad(row, NoiseQuadOf(i), zq, gq);
      ASSERT_EQ(z[i], zq[NoiseLaneOf(i)]) << i;
      ASSERT_EQ(g[i], gq[NoiseLaneOf(i)]) << i;
      ASSERT_EQ(NoiseCoordinate(NoiseQuadOf(i), NoiseLaneOf(i)), i);
      if (row.single) {
        double zl, gl;
        NoiseLane(row, i, zl, gl);
        ASSERT_EQ(z[i], zl) << i;
        ASSERT_EQ(g[i], gl) << i;
      }
    }
  }
}

TEST(FillNoise, VectorKernelEqualsScalarReferenceBitForBit) {
  for (auto dist : {NoiseDistribution::kNormal, NoiseDistribution::kGumbel}) {
    for (bool antithetic : {false, true}) {
      ExpectScalarReferences(NoiseRow{.key = 0x123456789abcdefull,
                                      .instance = 5,
                                      .sample = 3,
                                      .antithetic = antithetic,
                                      .distribution = dist});
    }
  }
}

// ---- single precision (NoiseRow::single, the noise of FLOAT32 requests) ----

TEST(FillNoiseSingle, NormalHasZeroMeanUnitVariance) {
  ExpectMoments(NoiseDistribution::kNormal, 0.0, 1.0, 3.0, /*single=*/true);
}

TEST(FillNoiseSingle, GumbelHasMeanGammaVariancePiSquaredOverSix) {
  const double pi = 3.14159265358979323846;
  const double var = pi * pi / 6;
  ExpectMoments(NoiseDistribution::kGumbel, 0.5772156649015329, var, 5.4 * var * var,
                /*single=*/true);
}

TEST(FillNoiseSingle, ValuesAreFloatsAndDifferFromDoublePrecision) {
  for (auto dist : {NoiseDistribution::kNormal, NoiseDistribution::kGumbel}) {
    NoiseRow row{.key = 3, .sample = 2, .distribution = dist, .single = true};
    const std::vector<double> z = Draw(row, 64);
    NoiseRow dbl = row;
    dbl.single = false;
    const std::vector<double> zd = Draw(dbl, 64);
    int differ = 0;
    for (size_t i = 0; i < z.size(); ++i) {
      EXPECT_EQ(z[i], static_cast<double>(static_cast<float>(z[i])));
      // Same Philox words, so the same variate up to float precision (2⁻²³ uniforms).
      EXPECT_NEAR(z[i], zd[i], 1e-4 * (1.0 + std::fabs(zd[i]))) << i;
      differ += z[i] != zd[i] ? 1 : 0;
    }
    EXPECT_GT(differ, 0);
  }
}

TEST(FillNoiseSingle, ScoreIsTheGradientOfNu) {
  std::vector<double> g;
  NoiseRow normal{.key = 5, .sample = 1, .single = true};
  std::vector<double> z = Draw(normal, 9, &g);
  for (size_t i = 0; i < z.size(); ++i) EXPECT_EQ(g[i], z[i]);
  NoiseRow gumbel{.key = 5, .sample = 1, .distribution = NoiseDistribution::kGumbel, .single = true};
  z = Draw(gumbel, 9, &g);
  for (size_t i = 0; i < z.size(); ++i) EXPECT_NEAR(g[i], 1.0 - std::exp(-z[i]), 1e-6);
}

TEST(FillNoiseSingle, AntitheticPairsNegateNormalAndComplementGumbelUniforms) {
  NoiseRow first{.key = 77, .sample = 4, .antithetic = true, .single = true};
  NoiseRow second = first;
  second.sample = 5;
  const auto z0 = Draw(first, 11), z1 = Draw(second, 11);
  for (size_t i = 0; i < z0.size(); ++i) EXPECT_EQ(z1[i], -z0[i]);
  first.distribution = second.distribution = NoiseDistribution::kGumbel;
  const auto g0 = Draw(first, 11), g1 = Draw(second, 11);
  for (size_t i = 0; i < g0.size(); ++i) {
    const double u0 = std::exp(-std::exp(-g0[i])), u1 = std::exp(-std::exp(-g1[i]));
    EXPECT_NEAR(u0 + u1, 1.0, 1e-6);
  }
}

TEST(NoiseMathSingle, UniformIsExactOddMultipleOfTwoToMinus24AndComplements) {
  for (uint32_t x : {0u, 1u, 511u, 512u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFE00u, 0xFFFFFFFFu,
                     0x12345678u}) {
    const float u = noise_internal::UniformOpenF(x);
    const double expect = (2.0 * static_cast<double>(x >> 9) + 1.0) * 0x1p-24;
    EXPECT_EQ(static_cast<double>(u), expect) << x;
    EXPECT_GT(u, 0.0f);
    EXPECT_LT(u, 1.0f);
    EXPECT_EQ(static_cast<double>(noise_internal::UniformOpenF(~x)), 1.0 - expect) << x;
  }
}

TEST(NoiseMathSingle, LogFMatchesLibmToAFewUlp) {
  for (uint32_t k = 0; k < (1u << 23); k = k * 3 + 1) {
    const float u = static_cast<float>(2 * k + 1) * 0x1p-24f;
    const double ref = std::log(static_cast<double>(u));
    EXPECT_NEAR(noise_math::LogF(u), ref, 3e-7 * std::fabs(ref) + 1e-37) << u;
  }
  for (float v : {1e-37f, 5.96e-8f, 0.1f, 0.5f, 0.9999999f, 1.0f, 1.5f, 2.0f, 16.6f, 1e10f}) {
    const double ref = std::log(static_cast<double>(v));
    EXPECT_NEAR(noise_math::LogF(v), ref, 3e-7 * std::fabs(ref) + 1e-37) << v;
  }
}

TEST(NoiseMathSingle, SinCos2PiFMatchesLibm) {
  for (int k = 0; k <= 4096; ++k) {
    const float u = static_cast<float>(k) / 4096.0f;
    float s, c;
    noise_math::SinCos2PiF(u, s, c);
    EXPECT_NEAR(s, std::sin(2 * M_PI * u), 3e-7) << u;
    EXPECT_NEAR(c, std::cos(2 * M_PI * u), 3e-7) << u;
  }
}

TEST(FillNoiseSingle, VectorKernelEqualsScalarReferencesBitForBit) {
  for (auto dist : {NoiseDistribution::kNormal, NoiseDistribution::kGumbel}) {
    for (bool antithetic : {false, true}) {
      for (uint32_t sample : {2u, 3u}) {
        ExpectScalarReferences(NoiseRow{.key = 0x123456789abcdefull,
                                        .instance = 5,
                                        .sample = sample,
                                        .antithetic = antithetic,
                                        .distribution = dist,
                                        .single = true});
      }
    }
  }
}

TEST(FillNoise, EmptyScoreSpanGivesTheSameZ) {
  for (bool single : {false, true}) {
    for (auto dist : {NoiseDistribution::kNormal, NoiseDistribution::kGumbel}) {
      NoiseRow row{.key = 11, .sample = 7, .distribution = dist, .single = single};
      const std::vector<double> z = Draw(row, 777);
      std::vector<double> z2(777);
      FillNoise(row, absl::MakeSpan(z2), absl::Span<double>());
      EXPECT_EQ(z, z2);
    }
  }
}

// FillNoiseEta (the estimator's single-precision additive pass) against FillNoise followed by
// AdditiveEta, bit for bit: η in both dtypes and ∇ν, over whole blocks, a ragged tail and
// several chunks, with θ of mixed magnitudes.
TEST(FillNoiseSingle, FillNoiseEtaIsFillNoiseThenAdditiveEta) {
  for (auto dist : {NoiseDistribution::kNormal, NoiseDistribution::kGumbel}) {
    for (bool antithetic : {false, true}) {
      const NoiseRow row{.key = 0xfeedull,
                         .instance = 2,
                         .sample = 1,
                         .antithetic = antithetic,
                         .distribution = dist,
                         .single = true};
      for (const size_t d : {1u, 31u, 32u, 100u, 1088u, 1500u}) {
        std::vector<double> theta(d);
        for (size_t i = 0; i < d; ++i) theta[i] = std::sin(0.37 * i) * std::pow(10.0, i % 5);
        std::vector<double> g;
        const std::vector<double> z = Draw(row, d, &g);
        for (const bool f32 : {false, true}) {
          for (const double eps : {0.5, 1e-3}) {
            std::vector<double> eta(d), grad(d);
            FillNoiseEta(row, theta.data(), eps, f32, absl::MakeSpan(eta), absl::MakeSpan(grad));
            for (size_t i = 0; i < d; ++i) {
              ASSERT_EQ(eta[i], AdditiveEta(theta[i], eps, z[i], f32)) << d << " " << i;
              ASSERT_EQ(grad[i], g[i]) << d << " " << i;
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace perturbd
