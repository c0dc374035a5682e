using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Dense;

/// <summary>
/// Segmentation scores over a confusion matrix, with mmsegmentation's <c>IoUMetric</c> definitions: pixels whose
/// ground truth is the ignore index are left out; per class c, IoU_c = TP / (TP + FP + FN) and Acc_c = TP / (TP + FN);
/// a class with an empty union (IoU) or absent from the ground truth (Acc) is NaN and skipped by the means
/// (<c>nanmean</c>); pixel accuracy aAcc = Σ TP / valid pixels.
/// </summary>
public sealed class SegmentationMetrics
{
    readonly long[] _confusion;

    /// <summary>An empty accumulator for <paramref name="numClasses"/> classes.</summary>
    public SegmentationMetrics(int numClasses, long ignoreIndex = DenseLosses.IgnoreIndex)
    {
        if (numClasses < 1) throw new ArgumentException($"numClasses must be positive (got {numClasses}).");
        NumClasses = numClasses;
        IgnoreIndex = ignoreIndex;
        _confusion = new long[(long)numClasses * numClasses];
    }

    /// <summary>Classes K.</summary>
    public int NumClasses { get; }

    /// <summary>Ground-truth value left out.</summary>
    public long IgnoreIndex { get; }

    /// <summary>Confusion counts: row = ground truth, column = prediction.</summary>
    public long Confusion(int truth, int predicted) => _confusion[(long)truth * NumClasses + predicted];

    /// <summary>
    /// Adds predicted and ground-truth class maps of the same shape (any shape, e.g. <c>[N, H, W]</c>; integer tensors).
    /// Throws when a valid ground-truth value or a prediction lies outside [0, K).
    /// </summary>
    public void Update(Tensor predicted, Tensor truth)
    {
        if (!predicted.shape.SequenceEqual(truth.shape))
            throw new ArgumentException($"Prediction [{string.Join(", ", predicted.shape)}] and ground truth [{string.Join(", ", truth.shape)}] differ in shape.");
        using var scope = NewDisposeScope();
        var gt = truth.to(ScalarType.Int64, CPU).flatten();
        var pr = predicted.to(ScalarType.Int64, CPU).flatten();
        var valid = gt.ne(IgnoreIndex);
        gt = gt.masked_select(valid);
        pr = pr.masked_select(valid);
        if (gt.numel() == 0) return;
        CheckRange(gt, "ground-truth");
        CheckRange(pr, "predicted");
        var counts = (gt * NumClasses + pr).bincount(null, NumClasses * NumClasses).data<long>().ToArray();
        for (int i = 0; i < counts.Length; i++) _confusion[i] += counts[i];
    }

    /// <summary>Adds managed class maps (e.g. an ML.NET output column and its label column).</summary>
    public void Update(ReadOnlySpan<int> predicted, ReadOnlySpan<int> truth)
    {
        using var p = tensor(predicted.ToArray());
        using var t = tensor(truth.ToArray());
        Update(p, t);
    }

    void CheckRange(Tensor values, string what)
    {
        long min = values.min().item<long>(), max = values.max().item<long>();
        if (min < 0 || max >= NumClasses)
            throw new ArgumentException(
                $"A {what} class index ({(min < 0 ? min : max)}) lies outside [0, {NumClasses}) and is not the ignore index {IgnoreIndex}.");
    }

    /// <summary>The scores of everything added so far.</summary>
    public SegmentationScores Compute()
    {
        int k = NumClasses;
        var iou = new double[k];
        var acc = new double[k];
        long tpSum = 0, total = 0;
        for (int c = 0; c < k; c++)
        {
            long tp = Confusion(c, c), gt = 0, pred = 0;
            for (int j = 0; j < k; j++) { gt += Confusion(c, j); pred += Confusion(j, c); }
            long union = gt + pred - tp;
            iou[c] = union > 0 ? (double)tp / union : double.NaN;
            acc[c] = gt > 0 ? (double)tp / gt : double.NaN;
            tpSum += tp;
            total += gt;
        }
        return new SegmentationScores(NanMean(iou), NanMean(acc), total > 0 ? (double)tpSum / total : double.NaN, iou, acc, total);
    }

    static double NanMean(double[] values)
    {
        var finite = values.Where(v => !double.IsNaN(v)).ToArray();
        return finite.Length == 0 ? double.NaN : finite.Average();
    }
}

/// <summary>Segmentation scores (fractions in [0, 1]; NaN where undefined).</summary>
/// <param name="MeanIoU">mIoU: mean IoU over classes with a non-empty union.</param>
/// <param name="MeanAccuracy">mAcc: mean per-class accuracy over classes present in the ground truth.</param>
/// <param name="PixelAccuracy">aAcc: correctly classified valid pixels / valid pixels.</param>
/// <param name="ClassIoU">IoU per class (NaN: class neither present nor predicted).</param>
/// <param name="ClassAccuracy">Accuracy per class (NaN: class absent from the ground truth).</param>
/// <param name="ValidPixels">Pixels counted (ground truth not ignored).</param>
public sealed record SegmentationScores(
    double MeanIoU, double MeanAccuracy, double PixelAccuracy,
    IReadOnlyList<double> ClassIoU, IReadOnlyList<double> ClassAccuracy, long ValidPixels);
