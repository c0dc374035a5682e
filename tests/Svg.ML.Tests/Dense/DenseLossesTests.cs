using Svg.ML.Dense;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Dense;

public class DenseLossesTests
{
    [Fact]
    public void CrossEntropy_SkipsIgnoredPixels_HandValue()
    {
        // 3 pixels, K = 2: logits [0,0] target 0 → ln 2 = 0.693147; logits [2,0] target 1 → ln(1 + e²) = 2.126928;
        // logits [50,−50] target 255 (ignored). Mean over the 2 valid pixels = (ln 2 + ln(1 + e²))/2 = 1.410038.
        var logits = tensor(new float[] { 0, 2, 50, 0, 0, -50 }).reshape(1, 2, 1, 3);
        var target = tensor(new long[] { 0, 1, 255 }).reshape(1, 1, 3);
        double expected = (Math.Log(2) + Math.Log(1 + Math.Exp(2))) / 2;
        // float32 log-softmax of O(1) values: 1e-6 relative is a few ulps.
        Assert.Equal(expected, DenseLosses.CrossEntropy(logits, target).item<float>(), 1e-6 * expected);
        Assert.Equal(0f, DenseLosses.CrossEntropy(logits, full(1, 1, 3, 255L)).item<float>());
    }

    [Fact]
    public void Silog_HandValue_IgnoresInvalidPixels_AndIsScaleInvariantAtLambdaOne()
    {
        // g = [1, e, 0 (invalid), NaN (invalid)], d = [e, e, 7, 7]: errors e_i = ln d − ln g = 1, 0 on the valid pixels.
        // mean(e²) = 0.5, mean(e) = 0.5 → L = √(0.5 − 0.85·0.25) = √0.2875 = 0.536190.
        var g = tensor(new float[] { 1, MathF.E, 0, float.NaN }).reshape(1, 2, 2);
        var logD = tensor(new float[] { 1, 1, MathF.Log(7), MathF.Log(7) }).reshape(1, 2, 2);
        double expected = Math.Sqrt(0.2875 + 1e-8);
        Assert.Equal(expected, DenseLosses.Silog(logD, g).item<float>(), 1e-6);   // float32: a few ulps of 0.54
        // A prediction off by a constant factor (×2 everywhere) costs nothing at λ = 1 (only the 1e-8 guard: √1e-8 = 1e-4).
        var g2 = tensor(new float[] { 1, 2, 3, 4 }).reshape(1, 2, 2);
        Assert.Equal(1e-4, DenseLosses.Silog((g2 * 2).log(), g2, lambda: 1).item<float>(), 1e-5);
        Assert.Equal(0f, DenseLosses.Silog(logD, zeros(1, 2, 2)).item<float>());
    }
}
