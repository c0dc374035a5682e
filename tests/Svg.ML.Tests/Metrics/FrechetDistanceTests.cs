using Svg.ML.Encoders;
using Svg.ML.Metrics;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Metrics;

public class FrechetDistanceTests
{
    static Tensor RandomSpd(int d, Generator g)
    {
        var a = randn(d, d, dtype: ScalarType.Float64, generator: g);
        return a.matmul(a.T) / d + 0.1 * eye(d, dtype: ScalarType.Float64);
    }

    /// <summary>N samples whose sample mean and unbiased sample covariance are exactly <paramref name="mean"/> and <paramref name="cov"/>.</summary>
    static Tensor SamplesWithMoments(Tensor mean, Tensor cov, int n, Generator g)
    {
        long d = mean.shape[0];
        var z = randn(n, d, dtype: ScalarType.Float64, generator: g);
        z = z - z.mean(new long[] { 0 });
        var sampleCov = z.T.matmul(z) / (n - 1);
        z = z.matmul(linalg.inv(linalg.cholesky(sampleCov)).T);   // sample covariance = I
        return z.matmul(linalg.cholesky(cov).T) + mean;           // sample covariance = cov
    }

    [Fact]
    public void IdenticalSets_HaveDistanceZero()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var f = randn(300, 32, generator: g) * 2 + 1;   // float32 features, as encoders give
        var r = FrechetDistance.Compute(f, f.clone(), "test encoder");
        Assert.True(Math.Abs(r.Distance) < 1e-6, $"FD = {r.Distance}");
        Assert.Equal("test encoder", r.EncoderName);
        Assert.Equal(32, r.Dimensions);
        Assert.Equal(300, r.CountA);
    }

    /// <summary>
    /// 2×2 covariances that do not commute: for 2×2 SPD M, tr √M = √(tr M + 2√det M), and M = Σ₁^½ Σ₂ Σ₁^½ has
    /// tr M = tr(Σ₁Σ₂), det M = det Σ₁ · det Σ₂ — a closed form independent of the eigendecomposition route.
    /// </summary>
    [Fact]
    public void Statistics_MatchTheClosedForm_ForNonCommutingCovariances()
    {
        using var scope = NewDisposeScope();
        var s1 = tensor(new double[] { 2.0, 0.6, 0.6, 1.0 }).view(2, 2);
        var s2 = tensor(new double[] { 1.5, -0.7, -0.7, 0.8 }).view(2, 2);
        Assert.True((s1.matmul(s2) - s2.matmul(s1)).abs().max().item<double>() > 0.1);
        var m1 = tensor(new double[] { 0.5, -1.0 });
        var m2 = tensor(new double[] { -0.25, 2.0 });
        double trProd = s1.matmul(s2).trace().item<double>();
        double det = linalg.det(s1).item<double>() * linalg.det(s2).item<double>();
        double expected = (m1 - m2).square().sum().item<double>() + s1.trace().item<double>() + s2.trace().item<double>()
                          - 2 * Math.Sqrt(trProd + 2 * Math.Sqrt(det));

        var r = FrechetDistance.Compute(new GaussianStatistics(m1, s1, 100), new GaussianStatistics(m2, s2, 100), "closed form");
        Assert.Equal(expected, r.Distance, 10);
        Assert.Equal(0.5625 + 9.0, r.MeanTerm, 12);

        // The same through samples with exactly these moments.
        var g = new Generator(5);
        var a = SamplesWithMoments(m1, s1, 500, g);
        var b = SamplesWithMoments(m2, s2, 700, g);
        Assert.Equal(expected, FrechetDistance.Compute(a, b, "samples").Distance, 9);
    }

    /// <summary>Σ₂ = c²Σ₁ (D = 16): FD = ‖Δμ‖² + (1 − c)² tr Σ₁.</summary>
    [Fact]
    public void ScaledCovariance_MatchesTheClosedForm_InHigherDimension()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(11);
        var s1 = RandomSpd(16, g);
        var m1 = randn(16, dtype: ScalarType.Float64, generator: g);
        var m2 = m1 + 0.3;
        double c = 1.7;
        var a = SamplesWithMoments(m1, s1, 400, g);
        var b = SamplesWithMoments(m2, s1 * (c * c), 400, g);
        double expected = 16 * 0.09 + (1 - c) * (1 - c) * s1.trace().item<double>();
        var r = FrechetDistance.Compute(a, b, "scaled");
        Assert.Equal(expected, r.Distance, 8);
    }

    [Fact]
    public void Accumulator_InBatches_EqualsOneShotStatistics()
    {
        using var scope = NewDisposeScope();
        var f = randn(103, 8, generator: new Generator(2)) + 5;
        using var whole = FrechetDistance.Statistics(f);
        using var acc = new GaussianStatisticsAccumulator();
        for (int s = 0; s < 103; s += 25) acc.Add(f.narrow(0, s, Math.Min(25, 103 - s)));
        using var batched = acc.Finish();
        var f64 = f.to(ScalarType.Float64);
        var centered = f64 - f64.mean(new long[] { 0 });
        var cov = centered.T.matmul(centered) / 102;
        Assert.True((batched.Mean - whole.Mean).abs().max().item<double>() < 1e-12);
        Assert.True((batched.Covariance - cov).abs().max().item<double>() < 1e-10);
        Assert.Equal(103, batched.Count);
    }

    [Fact]
    public void ImagesThroughAFrozenEncoder_AreNamedAfterIt()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(0);
        using var encoder = new ResNet18(ResNetConfig.MlNetResNet18 with { Layers = new[] { 1, 1, 1, 1 }, Widths = new[] { 8, 8, 8, 8 } });
        var g = new Generator(4);
        var a = rand(12, 3, 32, 32, generator: g);
        var b = (rand(12, 3, 32, 32, generator: g) * 0.5f).clamp(0, 1);
        var same = FrechetDistance.Compute(encoder, a, a, batchSize: 5);
        var diff = FrechetDistance.Compute(encoder, a, b, batchSize: 5);
        Assert.Equal(encoder.Name, diff.EncoderName);
        Assert.Equal(8, diff.Dimensions);
        Assert.True(Math.Abs(same.Distance) < 1e-6, $"FD(a, a) = {same.Distance}");
        Assert.True(diff.Distance > 1e-3, $"FD(a, b) = {diff.Distance}");
        var fa = FrechetDistance.EncoderFeatures(encoder, a, batchSize: 5);
        var fb = FrechetDistance.EncoderFeatures(encoder, b, batchSize: 7);
        Assert.Equal(diff.Distance, FrechetDistance.Compute(fa, fb, encoder.Name).Distance, 8);
    }
}
