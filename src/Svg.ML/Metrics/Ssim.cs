using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Svg.ML.Metrics;

/// <summary>
/// Structural similarity (Wang et al. 2004) as in scikit-image (<c>gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False</c>) and pytorch-msssim: local statistics under an 11×11 Gaussian window (σ = 1.5),
/// C₁ = (K₁L)², C₂ = (K₂L)², K₁ = 0.01, K₂ = 0.03,
/// SSIM = (2μₓμᵧ + C₁)(2σₓᵧ + C₂) / ((μₓ² + μᵧ² + C₁)(σₓ² + σᵧ² + C₂)),
/// evaluated where the window fits inside the image ("valid"), per channel, then averaged. Computed in float64.
/// </summary>
public static class Ssim
{
    /// <summary>The normalised 1-D Gaussian window of <paramref name="size"/> taps (float64).</summary>
    public static Tensor GaussianWindow(int size = 11, double sigma = 1.5)
    {
        var g = arange(size, dtype: ScalarType.Float64) - (size - 1) / 2.0;
        using var e = (-(g * g) / (2 * sigma * sigma)).exp();
        g.Dispose();
        return e / e.sum();
    }

    /// <summary>Per-image SSIM [B] of images [B, C, H, W] (H, W ≥ <paramref name="windowSize"/>).</summary>
    public static Tensor PerImage(Tensor a, Tensor b, double dataRange = 1.0, int windowSize = 11, double sigma = 1.5, double k1 = 0.01, double k2 = 0.03)
    {
        Psnr.CheckPair(a, b);
        if (a.shape[2] < windowSize || a.shape[3] < windowSize)
            throw new ArgumentException($"images of {a.shape[2]}×{a.shape[3]} are smaller than the {windowSize}×{windowSize} window.");
        using var scope = NewDisposeScope();
        long c = a.shape[1];
        var x = a.to(ScalarType.Float64);
        var y = b.to(ScalarType.Float64);
        var g = GaussianWindow(windowSize, sigma).to(x.device);
        // Separable Gaussian, depthwise (each channel on its own), valid region.
        var gh = g.view(1, 1, windowSize, 1).expand(c, 1, windowSize, 1);
        var gw = g.view(1, 1, 1, windowSize).expand(c, 1, 1, windowSize);
        Tensor Filter(Tensor t) => F.conv2d(F.conv2d(t, gh, groups: c), gw, groups: c);

        var mx = Filter(x);
        var my = Filter(y);
        var vx = Filter(x * x) - mx * mx;
        var vy = Filter(y * y) - my * my;
        var cxy = Filter(x * y) - mx * my;
        double c1 = Math.Pow(k1 * dataRange, 2), c2 = Math.Pow(k2 * dataRange, 2);
        var map = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
        return map.flatten(1).mean(new long[] { 1 }).MoveToOuterDisposeScope();
    }

    /// <summary>Mean over the batch of the per-image SSIM.</summary>
    public static double Compute(Tensor a, Tensor b, double dataRange = 1.0)
    {
        using var s = PerImage(a, b, dataRange);
        return s.mean().item<double>();
    }
}
