using Svg.ML.Metrics;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Metrics;

public class ImageQualityTests
{
    /// <summary>
    /// A fixed 3×48×40 pair from integer formulas (exactly reproducible anywhere), as float64 in [0, 1]:
    /// x[c,i,j] = (7i + 13j + 29c + (i·j mod 17)) mod 256,
    /// y[c,i,j] = clip(x[c,i,j] + ((31i + 17j + 5c) mod 41) − 20, 0, 255), both divided by 255.
    /// </summary>
    static (Tensor X, Tensor Y) FixedPair()
    {
        const int H = 48, W = 40;
        var x = new double[3 * H * W];
        var y = new double[3 * H * W];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++)
                {
                    int v = (i * 7 + j * 13 + c * 29 + (i * j) % 17) % 256;
                    int u = Math.Clamp(v + (i * 31 + j * 17 + c * 5) % 41 - 20, 0, 255);
                    x[(c * H + i) * W + j] = v / 255.0;
                    y[(c * H + i) * W + j] = u / 255.0;
                }
        return (tensor(x).view(1, 3, H, W), tensor(y).view(1, 3, H, W));
    }

    // Expected values computed once with Debian python3-skimage 0.19.3 on FixedPair():
    //   from skimage.metrics import structural_similarity, peak_signal_noise_ratio
    //   structural_similarity(x, y, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
    //                         use_sample_covariance=False)                     -> 0.9257744493117702
    //   structural_similarity(x[0], y[0], data_range=1.0, gaussian_weights=True, sigma=1.5,
    //                         use_sample_covariance=False)                     -> 0.9260542162870271
    //   peak_signal_noise_ratio(x, y, data_range=1.0)                          -> 26.839003219448387
    const double SkimageSsimRgb = 0.9257744493117702;
    const double SkimageSsimChannel0 = 0.9260542162870271;
    const double SkimagePsnr = 26.839003219448387;

    [Fact]
    public void Ssim_MatchesScikitImage_OnAFixedPair()
    {
        using var scope = NewDisposeScope();
        var (x, y) = FixedPair();
        Assert.Equal(SkimageSsimRgb, Ssim.Compute(x, y), 9);
        Assert.Equal(SkimageSsimChannel0, Ssim.Compute(x.narrow(1, 0, 1), y.narrow(1, 0, 1)), 9);
        // float32 inputs give the same value to float32 precision.
        Assert.Equal(SkimageSsimRgb, Ssim.Compute(x.to(ScalarType.Float32), y.to(ScalarType.Float32)), 6);
        Assert.Equal(Ssim.Compute(x, y), Ssim.Compute(y, x), 12);
    }

    [Fact]
    public void Ssim_IsOneForIdenticalImages_AndPerImageInABatch()
    {
        using var scope = NewDisposeScope();
        var (x, y) = FixedPair();
        Assert.Equal(1.0, Ssim.Compute(x, x.clone()), 12);
        var batchA = cat(new[] { x, x, y }, 0);
        var batchB = cat(new[] { x, y, x }, 0);
        var per = Ssim.PerImage(batchA, batchB).data<double>().ToArray();
        Assert.Equal(1.0, per[0], 12);
        Assert.Equal(SkimageSsimRgb, per[1], 9);
        Assert.Equal(SkimageSsimRgb, per[2], 9);
        var g = GaussianWindow();
        Assert.Equal(1.0, g.sum().item<double>(), 12);
        Assert.Equal(11, g.shape[0]);
    }

    static Tensor GaussianWindow() => Ssim.GaussianWindow();

    [Fact]
    public void Psnr_OfAKnownMse_AndAgainstScikitImage()
    {
        using var scope = NewDisposeScope();
        var a = full(new long[] { 2, 3, 8, 8 }, 0.5f);
        var b = a.clone();
        b[0] += 0.1f;   // MSE 0.01 → 20 dB
        b[1] -= 0.01f;  // MSE 1e-4 → 40 dB
        var per = Psnr.PerImage(a, b).data<double>().ToArray();
        Assert.Equal(20.0, per[0], 5);
        Assert.Equal(40.0, per[1], 4);
        Assert.Equal(30.0, Psnr.Compute(a, b), 4);
        Assert.True(double.IsPositiveInfinity(Psnr.Compute(a, a)));
        // A data range of 255 on 0–255 values gives the same number.
        Assert.Equal(20.0, Psnr.PerImage(a * 255, b * 255, dataRange: 255)[0].item<double>(), 4);

        var (x, y) = FixedPair();
        Assert.Equal(SkimagePsnr, Psnr.Compute(x, y), 9);
    }
}
