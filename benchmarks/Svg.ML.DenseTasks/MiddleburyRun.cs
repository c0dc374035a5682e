using Svg.ML.Dense;
using static TorchSharp.torch;

namespace Svg.ML.DenseTasks;

/// <summary>Depth on the real Middlebury scene: per arm a decoder head's errors on the held-out third, and a constant baseline.</summary>
public sealed record MiddleburyResult(int TrainTiles, int TestTiles, int TileSize, int Width, int Height, int SplitColumn,
                                      double ConstantDepth, DepthScores Constant, IReadOnlyList<HeadResult> Heads);

public static class MiddleburyRun
{
    /// <summary>
    /// Tiles the half-size motorcycle (<see cref="Middlebury.Tiles"/>), featurizes them with each arm's encoder (the
    /// residual and plain encoders were trained on the synthetic scenes only), trains a decoder depth head per arm on
    /// the left two thirds and scores the right third. The baseline predicts the training tiles' median depth everywhere.
    /// </summary>
    public static MiddleburyResult Run(DenseOptions o, IReadOnlyList<FeatureArm> arms, string figures, TextWriter w)
    {
        int size = o.SceneSize;
        var (image, depth) = Middlebury.Load(o.MiddleburyDirectory);
        var (trainImages, trainDepth, testImages, testDepth, split) = Middlebury.Tiles(image, depth, size);
        w.WriteLine($"[middlebury] motorcycle at {image.shape[2]}×{image.shape[1]}: {trainImages.shape[0]} training tiles of {size}² left of column {split}, " +
                    $"{testImages.shape[0]} held-out tiles right of it; depth {depth[depth.gt(0)].min().item<float>():F2}–{depth.max().item<float>():F2} m.");

        var valid = trainDepth[trainDepth.gt(0)];
        double median = valid.median().item<float>();
        var constantMetrics = new DepthMetrics();
        using (var c = full_like(testDepth, median)) constantMetrics.Update(c, testDepth);
        var constant = constantMetrics.Compute();
        w.WriteLine($"    constant {median:F2} m: AbsRel {constant.AbsRel:F3}, RMSE {constant.Rmse:F3} m, δ1 {100 * constant.Delta1:F1}");

        var heads = new List<HeadResult>();
        DenseHead? figureHead = null;
        Tensor? figureFeatures = null;
        foreach (var arm in arms)
        {
            var trainFeatures = FeatureArms.Featurize(arm.Encode, trainImages);
            var testFeatures = FeatureArms.Featurize(arm.Encode, testImages);
            heads.Add(HeadRuns.Run(arm, DenseTask.Depth, DenseHeadKind.Decoder, trainDepth, testDepth, o, o.MiddleburySteps, o.Seed, w, out var head,
                                   trainFeatures, testFeatures));
            if (arm.Key == "svg") (figureHead, figureFeatures) = (head, testFeatures);
            else
            {
                head.Dispose();
                testFeatures.Dispose();
            }
            trainFeatures.Dispose();
        }
        if (figureHead is not null)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var predicted = figureHead.PredictDepth(figureFeatures!, size, size);
            var pick = arange(0, testImages.shape[0], Math.Max(1, testImages.shape[0] / 6), dtype: ScalarType.Int64).narrow(0, 0, Math.Min(6, testImages.shape[0]));
            DenseFigures.SaveTriptych(testImages.index_select(0, pick), DenseFigures.ColourDepth(testDepth.index_select(0, pick), 2, 5.5),
                                      DenseFigures.ColourDepth(predicted.index_select(0, pick), 2, 5.5),
                                      Path.Combine(figures, "dense_middlebury.png"), scale: 2);
            figureHead.Dispose();
            figureFeatures!.Dispose();
        }
        return new MiddleburyResult((int)trainImages.shape[0], (int)testImages.shape[0], size, (int)image.shape[2], (int)image.shape[1], split,
                                    median, constant, heads);
    }
}
