using System.Diagnostics;
using Svg.ML.Dense;
using Svg.ML.Training;
using static TorchSharp.torch;

namespace Svg.ML.DenseTasks;

/// <summary>One trained head's scores and speeds (training images/s = steps × batch / training time).</summary>
public sealed record HeadResult(string Arm, string ArmKey, DenseHeadKind Head, DenseTask Task, long Seed, SegmentationScores? Segmentation, DepthScores? Depth,
                                double TrainSeconds, double TrainImagesPerSecond, int EvalImages, double EvalSeconds, double EvalImagesPerSecond);

/// <summary>Trains and scores a dense head (Svg.ML's <see cref="DenseHeadTraining"/>, <see cref="DenseEvaluation"/>) on one arm's features.</summary>
public static class HeadRuns
{
    /// <summary>Segmentation targets int64 [N, S, S] (0 = background, 1..10) or depth float32 [N, S, S] (metres).</summary>
    public static HeadResult Run(FeatureArm arm, DenseTask task, DenseHeadKind kind, Tensor trainTargets, Tensor testTargets,
                                 DenseOptions o, int steps, long seed, TextWriter w, out DenseHead head, Tensor? trainFeatures = null, Tensor? testFeatures = null)
    {
        var train = DenseDataset.FromTensors(trainFeatures ?? arm.Train, trainTargets, $"{arm.Key}-train-{task}");
        var test = DenseDataset.FromTensors(testFeatures ?? arm.Test, testTargets, $"{arm.Key}-test-{task}");
        var options = new DenseHeadTrainingOptions
        {
            Task = task,
            Head = kind,
            NumClasses = task == DenseTask.Segmentation ? Dense.Synthetic.SceneGenerator.NumClasses : 0,
            DecoderChannels = o.DecoderChannels,
            Steps = steps,
            BatchSize = o.HeadBatch,
            LearningRate = o.HeadLearningRate,
            Seed = seed,
            Progress = new ConsoleProgressBar(),
        };
        var clock = Stopwatch.StartNew();
        var result = DenseHeadTraining.Train(train, options);
        double trainSeconds = clock.Elapsed.TotalSeconds;
        head = result.Head;
        clock.Restart();
        SegmentationScores? seg = null;
        DepthScores? depth = null;
        if (task == DenseTask.Segmentation) seg = DenseEvaluation.Segmentation(head, test);
        else depth = DenseEvaluation.Depth(head, test);
        double evalSeconds = clock.Elapsed.TotalSeconds;
        var r = new HeadResult(arm.Name, arm.Key, kind, task, seed, seg, depth, trainSeconds, steps * (double)options.BatchSize / trainSeconds,
                               (int)test.Count, evalSeconds, test.Count / evalSeconds);
        w.WriteLine($"    {arm.Name}, {kind} {task}, seed {seed}: {Describe(r)}; train {trainSeconds:F0} s ({r.TrainImagesPerSecond:F0} img/s), " +
                    $"eval {r.EvalImages} images {evalSeconds:F1} s ({r.EvalImagesPerSecond:F0} img/s)");
        return r;
    }

    public static string Describe(HeadResult r) => r.Segmentation is { } s
        ? $"mIoU {100 * s.MeanIoU:F1}, mAcc {100 * s.MeanAccuracy:F1}, aAcc {100 * s.PixelAccuracy:F1}"
        : $"AbsRel {r.Depth!.AbsRel:F3}, RMSE {r.Depth.Rmse:F3} m, δ1 {100 * r.Depth.Delta1:F1}";
}
