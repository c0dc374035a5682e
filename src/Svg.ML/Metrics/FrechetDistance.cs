using Svg.ML.Encoders;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Metrics;

/// <summary>Mean and covariance of a feature set, in float64.</summary>
/// <param name="Mean">[D].</param>
/// <param name="Covariance">[D, D], unbiased (divided by N − 1, as numpy.cov and pytorch-fid).</param>
/// <param name="Count">Number of feature vectors.</param>
public sealed record GaussianStatistics(Tensor Mean, Tensor Covariance, long Count) : IDisposable
{
    /// <summary>Feature dimension.</summary>
    public int Dimensions => (int)Mean.shape[0];

    public void Dispose() { Mean.Dispose(); Covariance.Dispose(); }
}

/// <summary>A Fréchet distance and what it was measured on.</summary>
/// <param name="Distance">‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½).</param>
/// <param name="EncoderName">The feature extractor (a frozen encoder's name), so distances of different encoders are not mixed up.</param>
/// <param name="CountA">Feature vectors of the first set.</param>
/// <param name="CountB">Feature vectors of the second set.</param>
/// <param name="Dimensions">Feature dimension.</param>
/// <param name="MeanTerm">‖μ₁ − μ₂‖².</param>
/// <param name="CovarianceTerm">tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½).</param>
public sealed record FrechetDistanceResult(double Distance, string EncoderName, long CountA, long CountB, int Dimensions, double MeanTerm, double CovarianceTerm)
{
    public override string ToString() => $"FD[{EncoderName}] = {Distance:G6} (N = {CountA} vs {CountB}, D = {Dimensions})";
}

/// <summary>
/// Accumulates feature batches [n, D] into <see cref="GaussianStatistics"/> in float64 without keeping them
/// (sums shifted by the first batch's mean, for accuracy).
/// </summary>
public sealed class GaussianStatisticsAccumulator : IDisposable
{
    Tensor? _shift, _sum, _outer;
    long _count;

    /// <summary>Adds a batch of feature vectors [n, D] (any float dtype, any device).</summary>
    public void Add(Tensor features)
    {
        if (features.dim() != 2) throw new ArgumentException($"expected features [N, D], got [{string.Join(",", features.shape)}].", nameof(features));
        if (features.shape[0] == 0) return;
        using var scope = NewDisposeScope();
        var x = features.detach().to(ScalarType.Float64, CPU);
        if (_shift is null)
        {
            // Running state lives until Dispose, outside any caller's dispose scope.
            _shift = x.mean(new long[] { 0 }).DetachFromDisposeScope();
            _sum = zeros_like(_shift).DetachFromDisposeScope();
            _outer = zeros(x.shape[1], x.shape[1], dtype: ScalarType.Float64).DetachFromDisposeScope();
        }
        else if (x.shape[1] != _shift.shape[0]) throw new ArgumentException($"feature dimension {x.shape[1]}, earlier batches {_shift.shape[0]}.", nameof(features));
        var c = x - _shift;
        _sum!.add_(c.sum(new long[] { 0 }));
        _outer!.add_(c.T.matmul(c));
        _count += x.shape[0];
    }

    /// <summary>Vectors added so far.</summary>
    public long Count => _count;

    /// <summary>Mean and unbiased covariance of everything added (at least two vectors).</summary>
    public GaussianStatistics Finish()
    {
        if (_count < 2) throw new InvalidOperationException($"a covariance needs at least 2 feature vectors, got {_count}.");
        using var scope = NewDisposeScope();
        var d = _sum! / _count;                       // mean − shift
        var mean = _shift! + d;
        var cov = (_outer! - _count * d.outer(d)) / (_count - 1);
        cov = (cov + cov.T) / 2;
        return new GaussianStatistics(mean.MoveToOuterDisposeScope(), cov.MoveToOuterDisposeScope(), _count);
    }

    public void Dispose() { _shift?.Dispose(); _sum?.Dispose(); _outer?.Dispose(); }
}

/// <summary>
/// Fréchet distance between two feature sets modelled as Gaussians (FID when the features are Inception's; here any
/// frozen encoder's). Computed in float64; tr((Σ₁^½ Σ₂ Σ₁^½)^½) through symmetric eigendecompositions, which needs no
/// general matrix square root: Σ₁^½ = V diag(√λ) Vᵀ, then the eigenvalues μᵢ of the symmetric PSD Σ₁^½ Σ₂ Σ₁^½ give Σ √μᵢ
/// (negative round-off eigenvalues are clamped to 0).
/// </summary>
public static class FrechetDistance
{
    /// <summary>Mean and unbiased covariance of features [N, D].</summary>
    public static GaussianStatistics Statistics(Tensor features)
    {
        using var acc = new GaussianStatisticsAccumulator();
        acc.Add(features);
        return acc.Finish();
    }

    /// <summary>The distance between two sets of statistics, named after <paramref name="encoderName"/>.</summary>
    public static FrechetDistanceResult Compute(GaussianStatistics a, GaussianStatistics b, string encoderName)
    {
        if (a.Dimensions != b.Dimensions) throw new ArgumentException($"feature dimensions differ: {a.Dimensions} vs {b.Dimensions}.");
        using var scope = NewDisposeScope();
        var diff = a.Mean - b.Mean;
        double meanTerm = diff.dot(diff).item<double>();
        double trA = a.Covariance.trace().item<double>(), trB = b.Covariance.trace().item<double>();
        double covTerm = trA + trB - 2 * TraceSqrtProduct(a.Covariance, b.Covariance);
        return new FrechetDistanceResult(meanTerm + covTerm, encoderName, a.Count, b.Count, a.Dimensions, meanTerm, covTerm);
    }

    /// <summary>The distance between feature sets [N, D] and [M, D].</summary>
    public static FrechetDistanceResult Compute(Tensor featuresA, Tensor featuresB, string encoderName)
    {
        using var a = Statistics(featuresA);
        using var b = Statistics(featuresB);
        return Compute(a, b, encoderName);
    }

    /// <summary>
    /// The distance between two image sets (RGB in [0, 1], [N, 3, H, W]) in <paramref name="encoder"/>'s feature space:
    /// each image's feature is its grid averaged over positions (<see cref="EncoderFeatures"/>).
    /// </summary>
    public static FrechetDistanceResult Compute(IFrozenEncoder encoder, Tensor imagesA, Tensor imagesB, int batchSize = 32)
    {
        using var a = Accumulate(encoder, imagesA, batchSize);
        using var b = Accumulate(encoder, imagesB, batchSize);
        return Compute(a, b, encoder.Name);
    }

    /// <summary>Per-image features [N, Channels]: <c>EncodeGrid(Preprocess(x))</c> averaged over the grid, in batches, without gradients.</summary>
    public static Tensor EncoderFeatures(IFrozenEncoder encoder, Tensor images01, int batchSize = 32)
    {
        var parts = new List<Tensor>();
        try
        {
            using var _ = no_grad();
            for (long s = 0; s < images01.shape[0]; s += batchSize)
            {
                using var scope = NewDisposeScope();
                var x = images01.narrow(0, s, Math.Min(batchSize, images01.shape[0] - s));
                parts.Add(encoder.EncodeGrid(encoder.Preprocess(x)).mean(new long[] { 2, 3 }).cpu().MoveToOuterDisposeScope());
            }
            return cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>tr((A^½ B A^½)^½) for symmetric PSD A and B (float64).</summary>
    public static double TraceSqrtProduct(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var (la, va) = linalg.eigh(a.to(ScalarType.Float64));
        var sqrtA = (va * la.clamp_min(0).sqrt().unsqueeze(0)).matmul(va.T);
        var m = sqrtA.matmul(b.to(ScalarType.Float64)).matmul(sqrtA);
        m = (m + m.T) / 2;
        return linalg.eigvalsh(m).clamp_min(0).sqrt().sum().item<double>();
    }

    static GaussianStatistics Accumulate(IFrozenEncoder encoder, Tensor images, int batchSize)
    {
        using var acc = new GaussianStatisticsAccumulator();
        using var _ = no_grad();
        for (long s = 0; s < images.shape[0]; s += batchSize)
        {
            using var scope = NewDisposeScope();
            var x = images.narrow(0, s, Math.Min(batchSize, images.shape[0] - s));
            acc.Add(encoder.EncodeGrid(encoder.Preprocess(x)).mean(new long[] { 2, 3 }));
        }
        return acc.Finish();
    }
}
