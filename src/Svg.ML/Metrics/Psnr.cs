using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Metrics;

/// <summary>
/// Peak signal-to-noise ratio: PSNR = 10 · log₁₀(L² / MSE), MSE over each image's channels and pixels,
/// L = <c>dataRange</c> (1 for images in [0, 1]). Identical images give +∞. Computed in float64.
/// </summary>
public static class Psnr
{
    /// <summary>Per-image PSNR [B] in dB of images [B, C, H, W].</summary>
    public static Tensor PerImage(Tensor a, Tensor b, double dataRange = 1.0)
    {
        CheckPair(a, b);
        using var scope = NewDisposeScope();
        var diff = a.to(ScalarType.Float64) - b.to(ScalarType.Float64);
        var mse = diff.square().flatten(1).mean(new long[] { 1 });
        return (10.0 * (dataRange * dataRange / mse).log10()).MoveToOuterDisposeScope();
    }

    /// <summary>Mean over the batch of the per-image PSNR (dB).</summary>
    public static double Compute(Tensor a, Tensor b, double dataRange = 1.0)
    {
        using var p = PerImage(a, b, dataRange);
        return p.mean().item<double>();
    }

    internal static void CheckPair(Tensor a, Tensor b)
    {
        if (a.dim() != 4 || !a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"expected two image batches [B, C, H, W] of one shape, got [{string.Join(",", a.shape)}] and [{string.Join(",", b.shape)}].");
    }
}
