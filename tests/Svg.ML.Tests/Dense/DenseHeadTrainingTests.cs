using Svg.ML.Dense;
using Svg.ML.Tests.Training;
using Svg.ML.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Dense;

/// <summary>
/// Heads on a trivially learnable synthetic map: every 4×4 patch of a 16×16 label map has one class c, and its feature
/// vector (C = 6) is 2·onehot(c) plus N(0, 0.3²) noise (0.05 for depth: a linear regression passes feature noise
/// straight into the prediction, ~0.16 log-RMSE at 0.3) — so a 1×1 projection separates the classes; depth is
/// 1 + c metres per patch, given at the grid resolution (4×4: with a linear head, bilinear upsampling of patch
/// logits cannot reproduce hard patch edges, which would cap the reachable error). Data come from an explicit generator.
/// </summary>
public class DenseHeadTrainingTests
{
    const int Classes = 4, Grid = 4, Size = 16, Channels = 6;

    internal static (Tensor Features, Tensor Classes, Tensor Depth) Synthetic(int n, ulong seed, float noise = 0.3f)
    {
        var gen = new Generator(seed);
        var cls = randint(0, Classes, [n, Grid, Grid], generator: gen);
        var features = nn.functional.one_hot(cls, Channels).permute(0, 3, 1, 2).to(ScalarType.Float32) * 2
                       + randn([n, Channels, Grid, Grid], generator: gen) * noise;
        var labels = cls.repeat_interleave(Size / Grid, 1).repeat_interleave(Size / Grid, 2);
        return (features, labels, (cls + 1).to(ScalarType.Float32));
    }

    static DenseHeadTrainingOptions Options(DenseTask task, DenseHeadKind kind, long steps, string? dir = null) => new()
    {
        Task = task, Head = kind, NumClasses = Classes, Steps = steps, BatchSize = 8, LearningRate = 1e-2,
        WarmupSteps = 5, DecoderChannels = 16, Seed = 7, CheckpointDirectory = dir, CheckpointEvery = 0,
    };

    [Theory]
    [InlineData(DenseHeadKind.Linear, 0.85)]    // measured 0.884: bilinear upsampling of a 4×4 map blurs patch edges
    [InlineData(DenseHeadKind.Decoder, 0.95)]   // measured > 0.99: the learned ×4 upsampling recovers the edges
    public void Segmentation_LearnsTheSyntheticMap(DenseHeadKind kind, double minIoU)
    {
        var (f, c, _) = Synthetic(64, 1);
        var (tf, tc, _) = Synthetic(32, 2);
        using var result = DenseHeadTraining.Train(DenseDataset.FromTensors(f, c), Options(DenseTask.Segmentation, kind, 100) with { LearningRate = 2e-2 });
        var scores = DenseEvaluation.Segmentation(result.Head, DenseDataset.FromTensors(tf, tc));
        // Chance is 1/4 mIoU; the classes are separable up to patch boundaries blurred by bilinear upsampling.
        Assert.True(scores.MeanIoU > minIoU, $"{kind}: held-out mIoU {scores.MeanIoU:F3}, aAcc {scores.PixelAccuracy:F3}");
        Assert.True(result.LossHistory[^1] < result.LossHistory[0] / 4);
    }

    [Fact]
    public void Depth_LearnsTheSyntheticMap()
    {
        var (f, _, d) = Synthetic(64, 3, noise: 0.05f);
        var (tf, _, td) = Synthetic(32, 4, noise: 0.05f);
        using var result = DenseHeadTraining.Train(DenseDataset.FromTensors(f, d), Options(DenseTask.Depth, DenseHeadKind.Linear, 100) with { LearningRate = 5e-2, MaxDepth = 5 });
        var scores = DenseEvaluation.Depth(result.Head, DenseDataset.FromTensors(tf, td));
        // Depths 1..4 m; predicting the mean (2.5 m) everywhere gives AbsRel ≈ 0.55.
        Assert.True(scores.AbsRel < 0.05, $"AbsRel {scores.AbsRel:F3}, RMSE {scores.Rmse:F3}, δ1 {scores.Delta1:F3}");
        Assert.Equal(32, scores.Images);
    }

    [Fact]
    public void Resume_ContinuesBitwise_AndLoadCheckpoint_ReturnsTheHead()
    {
        var (f, c, _) = Synthetic(16, 5);
        var data = DenseDataset.FromTensors(f, c);
        using var full = DenseHeadTraining.Train(data, Options(DenseTask.Segmentation, DenseHeadKind.Decoder, 6));
        using var dir = new TempDirectory();
        using (DenseHeadTraining.Train(data, Options(DenseTask.Segmentation, DenseHeadKind.Decoder, 6, dir.Path) with { Steps = 3 }
                   with { Log = null }))
        { }
        // The poly schedule depends on the run length, so a run cut at 3 of 6 steps is a different trajectory…
        Assert.Throws<TrainingResumeException>(() =>
            DenseHeadTraining.Train(data, Options(DenseTask.Segmentation, DenseHeadKind.Decoder, 6, dir.Path)));
        // …whereas cancellation keeps the schedule: cancel after 3 steps, then resume to 6.
        using var dir2 = new TempDirectory();
        using var cts = new CancellationTokenSource();
        var progress = new Progress(p => { if (p.Step == 3) cts.Cancel(); });
        Assert.Throws<TrainingCanceledException>(() => DenseHeadTraining.Train(data,
            Options(DenseTask.Segmentation, DenseHeadKind.Decoder, 6, dir2.Path) with { CancellationToken = cts.Token, Progress = progress }));
        using var resumed = DenseHeadTraining.Train(data, Options(DenseTask.Segmentation, DenseHeadKind.Decoder, 6, dir2.Path));
        Assert.Equal(3, resumed.ResumedFromStep);
        TrainingAssert.ModulesBitwiseEqual(full.Head, resumed.Head);
        Assert.Equal(full.LossHistory, resumed.LossHistory);
        using var loaded = DenseHeadTraining.LoadCheckpoint(resumed.CheckpointPath!);
        TrainingAssert.ModulesBitwiseEqual(full.Head, loaded.Head);
        Assert.IsType<DecoderHead>(loaded.Head);
    }

    [Fact]
    public void Schedule_WarmsUpLinearly_ThenDecaysPolynomially()
    {
        var o = new DenseHeadTrainingOptions { LearningRate = 1.0, WarmupSteps = 10, WarmupRatio = 0 };
        // 100 steps: warm-up 10 → lr(5) = poly(5)·5/10 = 0.95·0.5; lr(50) = 1 − 50/100 = 0.5; lr(0) = 0.
        Assert.Equal(0.475, o.LearningRateAt(5, 100), 1e-12);
        Assert.Equal(0.5, o.LearningRateAt(50, 100), 1e-12);
        Assert.Equal(0, o.LearningRateAt(0, 100));
        Assert.Equal(5, o.EffectiveWarmup(50));   // a short run warms up over its first tenth

        // DINOv3's cosine: the same warm-up, then LR·(1 + cos(π·(step+1)/T))/2: step 49 of 100 → (1 + cos(π/2))/2 = 0.5;
        // step 74 → (1 + cos(3π/4))/2 = (1 − √2/2)/2 = 0.146447; step 99 (the last) → (1 + cos π)/2 = 0.
        var c = o with { Decay = DenseLrDecay.Cosine };
        Assert.Equal(0.475, c.LearningRateAt(5, 100), 1e-12);
        Assert.Equal(0.5, c.LearningRateAt(49, 100), 1e-12);
        Assert.Equal(0.1464466094, c.LearningRateAt(74, 100), 1e-9);
        Assert.Equal(0, c.LearningRateAt(99, 100), 1e-12);
    }

    [Fact]
    public void SeveralRanks_AreRefusedBeforeAnyStep()
    {
        var (f, c, _) = Synthetic(8, 1);
        var e = Assert.Throws<NotSupportedException>(() => DenseHeadTraining.Train(DenseDataset.FromTensors(f, c),
            Options(DenseTask.Segmentation, DenseHeadKind.Linear, 1) with { ProcessGroup = new TwoRanks() }));
        Assert.Contains("2 ranks", e.Message);
    }

    /// <summary>A two-rank group whose collectives must not be reached (the refusal comes first).</summary>
    sealed class TwoRanks : Svg.ML.Distributed.ProcessGroup
    {
        public override int Rank => 0;
        public override int WorldSize => 2;
        public override int LocalRank => 0;
        public override string Description => "two ranks (no transport)";
        public override void AllReduceSum(Span<double> values) => throw new InvalidOperationException("no collective expected");
        public override void AllReduceSum(Tensor hostFloat32) => throw new InvalidOperationException("no collective expected");
        public override void Barrier() => throw new InvalidOperationException("no collective expected");
        public override byte[][] AllGather(byte[] mine) => throw new InvalidOperationException("no collective expected");
    }

    [Fact]
    public void Heads_GiveTheDocumentedShapes_AndRejectWrongChannels()
    {
        using var lin = DenseHead.Create(new DenseHeadConfig(DenseTask.Segmentation, DenseHeadKind.Linear, Channels, Classes));
        using var dec = DenseHead.Create(new DenseHeadConfig(DenseTask.Depth, DenseHeadKind.Decoder, Channels, DecoderChannels: 12));
        using var x = randn([2, Channels, 3, 5], generator: new Generator(1));
        Assert.Equal(new long[] { 2, Classes, 3, 5 }, lin.forward(x).shape);
        Assert.Equal(new long[] { 2, 1, 12, 20 }, dec.forward(x).shape);
        Assert.Equal(new long[] { 2, 24, 40 }, lin.PredictClasses(x, 24, 40).shape);
        using var depth = dec.PredictDepth(x, 24, 40);
        Assert.True(depth.min().item<float>() > 0 && depth.max().item<float>() < 10);
        Assert.Throws<ArgumentException>(() => lin.forward(randn(2, Channels + 1, 3, 5)));
        Assert.Throws<InvalidOperationException>(() => lin.PredictDepth(x, 4, 4));
    }

    [Fact]
    public void DecoderHead_FreshWeights_AreAlwaysFinite()
    {
        // Regression: TorchSharp 0.107's GroupNorm could start with an uninitialised (NaN) bias, about one build in six.
        for (int i = 0; i < 12; i++)
        {
            using var head = DenseHead.Create(new DenseHeadConfig(DenseTask.Segmentation, DenseHeadKind.Decoder, Channels, Classes, 16));
            foreach (var (name, p) in head.named_parameters())
                Assert.True(p.isfinite().all().item<bool>(), $"build {i}: '{name}' is not finite");
        }
    }

    sealed class Progress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }
}
