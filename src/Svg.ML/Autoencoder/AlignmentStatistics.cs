using Svg.ML.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Autoencoder;

/// <summary>
/// The four scalars of SVG's residual alignment (official <c>match_distribution</c>):
/// <code>
///   h_vit_aligned = (h_vit − ResidualMean) / (ResidualStd + eps) · BaseStd + BaseMean
/// </code>
/// where, for features [rows, C, N], a mean is the average over channels of the per-channel mean over (rows, N) and
/// a std is the average over channels of the per-channel unbiased std over (rows, N). The official code computes them
/// on every batch; <see cref="SvgEncoder.EstimateAlignment"/> computes them once over a data set (then stored with the
/// model, see <see cref="ToMetadata"/>).
/// </summary>
/// <param name="BaseMean">Mean of the base (DINOv3) features.</param>
/// <param name="BaseStd">Std of the base features.</param>
/// <param name="ResidualMean">Mean of the raw residual features.</param>
/// <param name="ResidualStd">Std of the raw residual features.</param>
/// <param name="Rows">Number of images the statistics were estimated on (0 when unknown).</param>
public sealed record AlignmentStatistics(double BaseMean, double BaseStd, double ResidualMean, double ResidualStd, long Rows = 0)
{
    const string Prefix = "svg.alignment.";

    /// <summary>The affine map (h_vit − ResidualMean) / (ResidualStd + eps) · BaseStd + BaseMean, elementwise (so
    /// batch-independent), in the dtype of <paramref name="residual"/>.</summary>
    public Tensor Apply(Tensor residual, double eps = 1e-6)
    {
        using var scope = NewDisposeScope();
        var normed = (residual - ResidualMean) / (ResidualStd + eps);
        return scope.MoveToOuter(normed * BaseStd + BaseMean);
    }

    /// <summary>String metadata (e.g. for a safetensors header): keys <c>svg.alignment.*</c>, round-trip exact.</summary>
    public Dictionary<string, string> ToMetadata() => new()
    {
        [Prefix + "base_mean"] = BaseMean.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        [Prefix + "base_std"] = BaseStd.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        [Prefix + "residual_mean"] = ResidualMean.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        [Prefix + "residual_std"] = ResidualStd.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        [Prefix + "rows"] = Rows.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Reads what <see cref="ToMetadata"/> wrote; null when the keys are absent.</summary>
    public static AlignmentStatistics? FromMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        static double D(string s) => double.Parse(s, System.Globalization.CultureInfo.InvariantCulture);
        if (!metadata.TryGetValue(Prefix + "base_mean", out var bm)) return null;
        return new AlignmentStatistics(
            D(bm), D(metadata[Prefix + "base_std"]), D(metadata[Prefix + "residual_mean"]), D(metadata[Prefix + "residual_std"]),
            metadata.TryGetValue(Prefix + "rows", out var r) ? long.Parse(r, System.Globalization.CultureInfo.InvariantCulture) : 0);
    }
}

/// <summary>
/// Streaming estimator of <see cref="AlignmentStatistics"/>: fed batch by batch with base and raw residual features
/// ([B, C, N] or [B, C, h, w]), it keeps per-channel counts, means and sums of squared deviations in float64 and merges
/// batches exactly (Chan et al.'s parallel update), so the result equals the per-channel mean and unbiased std over
/// all rows at once, averaged over channels as the official code does.
/// </summary>
public sealed class AlignmentStatisticsAccumulator : IDisposable
{
    readonly ChannelMoments _base = new(), _residual = new();
    long _rows;

    /// <summary>Adds one batch of base features and the matching raw residual features (same batch size).</summary>
    public void Add(Tensor baseFeatures, Tensor residualFeatures)
    {
        if (baseFeatures.shape[0] != residualFeatures.shape[0])
            throw new ArgumentException("Base and residual features must have the same batch size.");
        _base.Add(baseFeatures);
        _residual.Add(residualFeatures);
        _rows += baseFeatures.shape[0];
    }

    /// <summary>Releases the running per-channel moments.</summary>
    public void Dispose()
    {
        _base.Dispose();
        _residual.Dispose();
    }

    /// <summary>Images seen so far.</summary>
    public long Rows => _rows;

    /// <summary>The statistics of everything added (needs at least two feature values per channel).</summary>
    public AlignmentStatistics ToStatistics()
    {
        var (bm, bs) = _base.ChannelAverages();
        var (rm, rs) = _residual.ChannelAverages();
        return new AlignmentStatistics(bm, bs, rm, rs, _rows);
    }
}
