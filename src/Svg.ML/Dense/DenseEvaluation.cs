using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Dense;

/// <summary>Scores a trained head on a <see cref="DenseDataset"/> in batches (evaluation mode, no gradients).</summary>
public static class DenseEvaluation
{
    /// <summary>mIoU, mAcc and aAcc of a segmentation head (see <see cref="SegmentationMetrics"/>).</summary>
    public static SegmentationScores Segmentation(DenseHead head, DenseDataset data, int batchSize = 64,
                                                  long ignoreIndex = DenseLosses.IgnoreIndex)
    {
        var metrics = new SegmentationMetrics(head.Config.NumClasses, ignoreIndex);
        ForEachBatch(head, data, batchSize, (features, target) =>
            metrics.Update(head.PredictClasses(features, data.Height, data.Width), target));
        return metrics.Compute();
    }

    /// <summary>AbsRel, RMSE, δ… of a depth head (see <see cref="DepthMetrics"/>).</summary>
    public static DepthScores Depth(DenseHead head, DenseDataset data, int batchSize = 64,
                                    double minDepth = DepthMetrics.DefaultMinDepth, double maxDepth = DepthMetrics.DefaultMaxDepth)
    {
        var metrics = new DepthMetrics(minDepth, maxDepth);
        ForEachBatch(head, data, batchSize, (features, target) =>
            metrics.Update(head.PredictDepth(features, data.Height, data.Width), target));
        return metrics.Compute();
    }

    static void ForEachBatch(DenseHead head, DenseDataset data, int batchSize, Action<Tensor, Tensor> score)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize));
        bool wasTraining = head.training;
        head.eval();
        var device = head.parameters().First().device;
        try
        {
            using var _ = no_grad();
            for (long start = 0; start < data.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var idx = Enumerable.Range(0, (int)Math.Min(batchSize, data.Count - start)).Select(i => start + i).ToArray();
                score(data.ReadFeatures(idx).to(device), data.ReadTargets(idx));
            }
        }
        finally { if (wasTraining) head.train(); }
    }
}
