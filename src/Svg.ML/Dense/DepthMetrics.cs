using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Dense;

/// <summary>
/// Depth errors with the Eigen et al. (2014) definitions as evaluated on NYUv2 (BTS, Monocular-Depth-Estimation-Toolbox):
/// valid pixels have a ground truth g with <c>MinDepth &lt; g &lt; MaxDepth</c> (0, NaN = invalid); predictions d are
/// clamped to [MinDepth, MaxDepth] (NaN → MinDepth, +∞ → MaxDepth); per image,
/// AbsRel = mean(|d − g| / g), SqRel = mean((d − g)² / g), RMSE = √mean((d − g)²), RMSE log = √mean((ln d − ln g)²),
/// log10 = mean(|log₁₀ d − log₁₀ g|), δ_k = share of pixels with max(d/g, g/d) &lt; 1.25^k; the reported values are the
/// means over images (images without a valid pixel are skipped and counted). No Eigen crop is applied (crop the maps
/// before calling for NYUv2's 480×640 protocol).
/// </summary>
public sealed class DepthMetrics
{
    /// <summary>NYUv2 lower cap, metres.</summary>
    public const double DefaultMinDepth = 1e-3;

    /// <summary>NYUv2 upper cap, metres.</summary>
    public const double DefaultMaxDepth = 10;

    const int Count = 9;   // abs_rel, sq_rel, rmse, rmse_log, log10, d1, d2, d3, pixels
    readonly double[] _sums = new double[Count];

    /// <summary>An empty accumulator with depth caps <paramref name="minDepth"/>..<paramref name="maxDepth"/> metres.</summary>
    public DepthMetrics(double minDepth = DefaultMinDepth, double maxDepth = DefaultMaxDepth)
    {
        if (!(minDepth > 0) || !(maxDepth > minDepth)) throw new ArgumentException($"Need 0 < minDepth < maxDepth (got {minDepth}, {maxDepth}).");
        MinDepth = minDepth;
        MaxDepth = maxDepth;
    }

    /// <summary>Lower cap (exclusive for the ground truth).</summary>
    public double MinDepth { get; }

    /// <summary>Upper cap (exclusive for the ground truth).</summary>
    public double MaxDepth { get; }

    /// <summary>Images scored so far.</summary>
    public long Images { get; private set; }

    /// <summary>Images skipped because no pixel was valid.</summary>
    public long EmptyImages { get; private set; }

    /// <summary>The valid-pixel mask: finite ground truth strictly between the caps.</summary>
    public static Tensor ValidMask(Tensor truth, double minDepth, double maxDepth) =>
        truth.isfinite().logical_and(truth.gt(minDepth)).logical_and(truth.lt(maxDepth));

    /// <summary>Adds predicted and ground-truth depth maps in metres, <c>[N, H, W]</c> or one <c>[H, W]</c> image.</summary>
    public void Update(Tensor predicted, Tensor truth)
    {
        if (!predicted.shape.SequenceEqual(truth.shape))
            throw new ArgumentException($"Prediction [{string.Join(", ", predicted.shape)}] and ground truth [{string.Join(", ", truth.shape)}] differ in shape.");
        if (truth.dim() is not (2 or 3)) throw new ArgumentException("Depth maps must be [H, W] or [N, H, W].");
        using var scope = NewDisposeScope();
        var g = truth.to(ScalarType.Float64, CPU);
        var d = predicted.to(ScalarType.Float64, CPU);
        if (g.dim() == 2) { g = g.unsqueeze(0); d = d.unsqueeze(0); }
        var valid = ValidMask(g, MinDepth, MaxDepth);
        d = d.nan_to_num(nan: MinDepth, posinf: MaxDepth, neginf: MinDepth).clamp(MinDepth, MaxDepth);
        g = where(valid, g, ones_like(g));
        d = where(valid, d, ones_like(d));                 // invalid pixels: d = g = 1, zero error, masked anyway
        var m = valid.to(ScalarType.Float64);
        var n = m.sum([1, 2]);
        var diff = d - g;
        var logDiff = d.log() - g.log();
        var ratio = maximum(d / g, g / d);
        Tensor Mean(Tensor perPixel) => (perPixel * m).sum([1, 2]) / n.clamp_min(1);
        var perImage = stack([
            Mean(diff.abs() / g), Mean(diff.square() / g), Mean(diff.square()).sqrt(), Mean(logDiff.square()).sqrt(),
            Mean((d.log10() - g.log10()).abs()),
            Mean(ratio.lt(1.25).to(ScalarType.Float64)), Mean(ratio.lt(1.25 * 1.25).to(ScalarType.Float64)),
            Mean(ratio.lt(1.25 * 1.25 * 1.25).to(ScalarType.Float64)), n], 1);   // [N, 9]
        var rows = perImage.data<double>().ToArray();
        for (int i = 0; i < rows.Length / Count; i++)
        {
            if (rows[i * Count + Count - 1] == 0) { EmptyImages++; continue; }
            for (int j = 0; j < Count; j++) _sums[j] += rows[i * Count + j];
            Images++;
        }
    }

    /// <summary>The means over the images scored so far (NaN before any).</summary>
    public DepthScores Compute()
    {
        double Avg(int j) => Images == 0 ? double.NaN : _sums[j] / Images;
        return new DepthScores(Avg(0), Avg(1), Avg(2), Avg(3), Avg(4), Avg(5), Avg(6), Avg(7), (long)_sums[8], Images, EmptyImages);
    }
}

/// <summary>Depth errors averaged over images (see <see cref="DepthMetrics"/>).</summary>
public sealed record DepthScores(
    double AbsRel, double SqRel, double Rmse, double RmseLog, double Log10,
    double Delta1, double Delta2, double Delta3, long ValidPixels, long Images, long EmptyImages);
