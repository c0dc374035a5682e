using Svg.ML.Dense;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Dense;

public class DenseMetricsTests
{
    // Values are sums of a handful of terms in float64: 1e-12 is far below any value tested (all ≥ 0.1 or exactly 0).
    const double Tol = 1e-12;

    [Fact]
    public void Segmentation_HandCase_MatchesTheMmsegDefinitions()
    {
        // K = 3, ignore 255. gt = [0 0 1 1 2 255], pred = [0 1 1 1 0 2]; the last pixel is ignored.
        // class 0: TP 1, GT 2, pred 2 → union 3: IoU 1/3, Acc 1/2
        // class 1: TP 2, GT 2, pred 3 → union 3: IoU 2/3, Acc 1
        // class 2: TP 0, GT 1, pred 0 → union 1: IoU 0,   Acc 0
        // mIoU = (1/3 + 2/3 + 0)/3 = 1/3; mAcc = (1/2 + 1 + 0)/3 = 1/2; aAcc = 3/5.
        var m = new SegmentationMetrics(3);
        m.Update(tensor(new long[] { 0, 1, 1, 1, 0, 2 }).reshape(1, 2, 3), tensor(new long[] { 0, 0, 1, 1, 2, 255 }).reshape(1, 2, 3));
        var s = m.Compute();
        Assert.Equal(1.0 / 3, s.MeanIoU, Tol);
        Assert.Equal(0.5, s.MeanAccuracy, Tol);
        Assert.Equal(0.6, s.PixelAccuracy, Tol);
        Assert.Equal(new[] { 1.0 / 3, 2.0 / 3, 0 }, s.ClassIoU.ToArray(), new Close(Tol));
        Assert.Equal(5, s.ValidPixels);
        Assert.Equal(1, m.Confusion(0, 1));
        Assert.Equal(1, m.Confusion(2, 0));
    }

    [Fact]
    public void Segmentation_AbsentClasses_AreNaN_AndLeftOutOfTheMeans()
    {
        // K = 4, gt = [0 1], pred = [0 3] (managed overload).
        // class 0: IoU 1, Acc 1; class 1: TP 0, GT 1 → IoU 0, Acc 0; class 2: neither → IoU NaN, Acc NaN;
        // class 3: GT 0, pred 1 → IoU 0/1 = 0, Acc NaN (absent from the ground truth).
        // mIoU = (1 + 0 + 0)/3 = 1/3; mAcc = (1 + 0)/2 = 1/2; aAcc = 1/2.
        var m = new SegmentationMetrics(4);
        m.Update(new[] { 0, 3 }, new[] { 0, 1 });
        var s = m.Compute();
        Assert.True(double.IsNaN(s.ClassIoU[2]) && double.IsNaN(s.ClassAccuracy[2]) && double.IsNaN(s.ClassAccuracy[3]));
        Assert.Equal(0, s.ClassIoU[3]);
        Assert.Equal(1.0 / 3, s.MeanIoU, Tol);
        Assert.Equal(0.5, s.MeanAccuracy, Tol);
        Assert.Equal(0.5, s.PixelAccuracy, Tol);
    }

    [Fact]
    public void Segmentation_OutOfRangeClass_Throws_NamingTheValue()
    {
        var m = new SegmentationMetrics(3);
        var e = Assert.Throws<ArgumentException>(() => m.Update(new[] { 0, 1 }, new[] { 0, 7 }));
        Assert.Contains("7", e.Message);
        Assert.Throws<ArgumentException>(() => m.Update(new[] { 0, 5 }, new[] { 0, 1 }));
        m.Update(new[] { 9 }, new[] { 255 });      // an ignored pixel's prediction is not checked (mmseg drops it first)
        Assert.Equal(0, m.Compute().ValidPixels);
    }

    [Fact]
    public void Depth_HandCase_MatchesTheEigenDefinitions()
    {
        // Image 1: g = [1 2 4 | 0 NaN 20], d = [2 2 3 | 5 5 5]; 0, NaN and 20 (≥ 10 m) are invalid → 3 valid pixels.
        //   d − g = 1, 0, −1           AbsRel = (1/1 + 0 + 1/4)/3 = 0.41666…   SqRel = (1/1 + 0 + 1/4)/3 = 0.41666…
        //   RMSE = √(2/3) = 0.81649…   ln d − ln g = ln 2, 0, ln ¾ → RMSE log = √((ln²2 + ln²¾)/3)
        //   log10 = (log₁₀2 + log₁₀(4/3))/3;  max(d/g, g/d) = 2, 1, 4/3 → δ1 = 1/3, δ2 = 2/3 (1.5625), δ3 = 2/3 (1.953)
        // Image 2: g = [5 5 5 5 5 5], d = 5 except one NaN prediction (→ MinDepth 1e-3) and one 100 (→ MaxDepth 10):
        //   AbsRel = (|1e-3 − 5|/5 + |10 − 5|/5)/6 = (0.9998 + 1)/6, ...
        // Reported values are means over the two images.
        var g = tensor(new double[] { 1, 2, 4, 0, double.NaN, 20, 5, 5, 5, 5, 5, 5 }).reshape(2, 2, 3);
        var d = tensor(new double[] { 2, 2, 3, 5, 5, 5, double.NaN, 100, 5, 5, 5, 5 }).reshape(2, 2, 3);
        var m = new DepthMetrics();
        m.Update(d, g);
        var s = m.Compute();
        double ln2 = Math.Log(2), ln34 = Math.Log(0.75);
        double abs2 = (4.999 / 5 + 1) / 6, sq2 = (4.999 * 4.999 / 5 + 5) / 6, rmse2 = Math.Sqrt((4.999 * 4.999 + 25) / 6);
        double rmseLog2 = Math.Sqrt((Math.Pow(Math.Log(1e-3 / 5), 2) + Math.Pow(Math.Log(2), 2)) / 6);
        double log10_2 = (Math.Abs(Math.Log10(1e-3 / 5)) + Math.Log10(2)) / 6;
        Assert.Equal((1.25 / 3 + abs2) / 2, s.AbsRel, Tol);
        Assert.Equal((1.25 / 3 + sq2) / 2, s.SqRel, Tol);
        Assert.Equal((Math.Sqrt(2.0 / 3) + rmse2) / 2, s.Rmse, Tol);
        Assert.Equal((Math.Sqrt((ln2 * ln2 + ln34 * ln34) / 3) + rmseLog2) / 2, s.RmseLog, Tol);
        Assert.Equal(((Math.Log10(2) + Math.Log10(4.0 / 3)) / 3 + log10_2) / 2, s.Log10, Tol);
        Assert.Equal((1.0 / 3 + 4.0 / 6) / 2, s.Delta1, Tol);
        Assert.Equal((2.0 / 3 + 4.0 / 6) / 2, s.Delta2, Tol);
        Assert.Equal((2.0 / 3 + 4.0 / 6) / 2, s.Delta3, Tol);
        Assert.Equal(9, s.ValidPixels);
        Assert.Equal(2, s.Images);
    }

    [Fact]
    public void Depth_ImageWithoutValidPixels_IsSkipped_AndCounted()
    {
        var m = new DepthMetrics();
        m.Update(tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 1, 2), tensor(new float[] { 0, float.NaN, 2, 2 }).reshape(2, 1, 2));
        var s = m.Compute();
        Assert.Equal(1, s.Images);
        Assert.Equal(1, s.EmptyImages);
        Assert.Equal((1 / 2.0 + 2 / 2.0) / 2, s.AbsRel, 1e-7);     // image 2: g = [2 2], d = [3 4]; float32 input: 1e-7 relative
        Assert.True(double.IsNaN(new DepthMetrics().Compute().Rmse));
    }

    sealed class Close(double tol) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(double v) => 0;
    }
}
