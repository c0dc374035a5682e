using Svg.ML.Diffusion;
using Svg.ML.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Training;

[Collection(SerialTrainingCollection.Name)]
public class DiffusionTrainingTests(ITestOutputHelper output)
{
    /// <summary>A DiT of 2 blocks, 32 wide, on a 4×4 grid of 8 channels, 4 classes.</summary>
    static SvgDiTConfig Tiny => new(InChannels: 8, HiddenSize: 32, Depth: 2, NumHeads: 2, NumClasses: 4, GridSize: 4);

    /// <summary>Learnable features: a random pattern per class plus a little noise, latents [N, 8, 4, 4].</summary>
    static DiffusionDataset Synthetic(int n, long seed = 1, Action<Tensor>? edit = null)
    {
        var g = new Generator((ulong)seed);
        var means = randn(new long[] { 4, 8, 4, 4 }, generator: g) * 2 + 0.5;
        var labels = Enumerable.Range(0, n).Select(i => (long)(i % 4)).ToArray();
        var features = (means.index_select(0, tensor(labels)) + 0.05 * randn(new long[] { n, 8, 4, 4 }, generator: g)).DetachFromDisposeScope();
        edit?.Invoke(features);
        return DiffusionDataset.FromFeatures(features, labels, 4);
    }

    static DiffusionTrainingOptions Options(long steps, int batch = 8, string? dir = null) => new()
    {
        Model = Tiny, Steps = steps, BatchSize = batch, LearningRate = 1e-3, Seed = 42,
        CheckpointDirectory = dir, CheckpointEvery = 0, EmaDecay = 0.9,
    };

    sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }

    [Fact]
    public void Loss_Decreases_OnLearnableFeatures()
    {
        var data = Synthetic(64);
        using var result = DiffusionTraining.Train(data, Options(120, batch: 16) with { LearningRate = 3e-3 });
        var losses = result.LossHistory;
        Assert.Equal(120, losses.Count);
        double first = losses.Take(20).Average(), last = losses.TakeLast(20).Average();
        output.WriteLine($"mean loss: first 20 steps {first:F4}, last 20 steps {last:F4} ({result.Elapsed.TotalSeconds:F1} s)");
        Assert.True(last < 0.7 * first, $"loss did not decrease enough: {first:F4} → {last:F4}");
        Assert.False(result.Model.training);
        Assert.Equal(Tiny, result.Config);
        // The normaliser was fitted on the data: normalised features have per-channel mean 0 and std 1.
        using var tokens = result.Normalizer.Normalize(data.ReadTokens(Enumerable.Range(0, 64).Select(i => (long)i).ToArray()));
        Assert.True(tokens.mean([0, 1]).abs().max().item<float>() < 1e-4);
        Assert.True((tokens.std([0, 1]) - 1).abs().max().item<float>() < 1e-4);
    }

    [Fact]
    public void StreamedFeatures_FromTheCache_TrainExactlyLikeInMemoryOnes()
    {
        using var dir = new TempDirectory();
        var g = new Generator(3);
        var features = randn(new long[] { 20, 8, 4, 4 }, generator: g) * 3 + 1;
        var labels = Enumerable.Range(0, 20).Select(i => (long)(i % 4)).ToArray();
        var cache = new Svg.ML.Data.FeatureCache(dir.Path);
        var key = new Svg.ML.Data.FeatureCacheKey("test", "w", "cfg", 16, "synthetic", "");
        cache.GetOrCompute(key, () => features.clone()).Dispose();
        var streamed = DiffusionDataset.FromCache(cache.TryOpen(key)!, labels, 4);
        var memory = DiffusionDataset.FromFeatures(features, labels, 4);
        Assert.True(streamed.IsStreamed);
        Assert.Equal((8, 4, 4, 16), (streamed.Channels, streamed.GridHeight, streamed.GridWidth, streamed.Tokens));

        long[] rows = [5, 0, 17, 3, 5];
        using var a = streamed.ReadTokens(rows);
        using var b = memory.ReadTokens(rows);
        Assert.Equal(new long[] { 5, 16, 8 }, a.shape);
        Assert.True(TrainingAssert.BitwiseEqual(a, b));
        // Token n of row r is the latent column (n / 4, n % 4).
        Assert.Equal(features[17, 6, 2, 1].item<float>(), b[2, 2 * 4 + 1, 6].item<float>());

        // Chunked float64 statistics equal the one-shot ones.
        using var fitted = streamed.FitNormalizer(chunkRows: 3);
        var all = memory.ReadTokens(Enumerable.Range(0, 20).Select(i => (long)i).ToArray()).reshape(-1, 8).to(ScalarType.Float64);
        Assert.True((fitted.Mean.flatten().to(ScalarType.Float64) - all.mean([0])).abs().max().item<double>() < 1e-5);
        Assert.True((fitted.Std.flatten().to(ScalarType.Float64) - all.std(0)).abs().max().item<double>() < 1e-5);

        using var r1 = DiffusionTraining.Train(streamed, Options(3));
        using var r2 = DiffusionTraining.Train(memory, Options(3));
        Assert.Equal(r2.LossHistory, r1.LossHistory);
    }

    [Fact]
    public void Resume_ContinuesBitwise_LikeAnUninterruptedRun()
    {
        var data = Synthetic(20);               // batch 8 → 2 steps per epoch: the run crosses epochs
        using var full = DiffusionTraining.Train(data, Options(7));

        using var dir = new TempDirectory();
        using (var part = DiffusionTraining.Train(data, Options(3, dir: dir.Path)))
            Assert.Equal(full.LossHistory.Take(3), part.LossHistory);
        using var resumed = DiffusionTraining.Train(data, Options(7, dir: dir.Path));

        Assert.Equal(3, resumed.ResumedFromStep);
        Assert.Equal(full.LossHistory, resumed.LossHistory);                      // float equality, bitwise
        TrainingAssert.ModulesBitwiseEqual(full.Model, resumed.Model);
        TrainingAssert.ModulesBitwiseEqual(full.EmaModel, resumed.EmaModel);
        Assert.Equal(dir.File(TrainingCheckpoint.FileName(TrainingStage.Diffusion, 7)), resumed.CheckpointPath);

        // The checkpoint reads back into the same models.
        using var loaded = DiffusionTraining.LoadCheckpoint(resumed.CheckpointPath!);
        TrainingAssert.ModulesBitwiseEqual(full.EmaModel, loaded.EmaModel);
        Assert.Equal(full.LossHistory, loaded.LossHistory);
        Assert.True(TrainingAssert.BitwiseEqual(full.Normalizer.Mean, loaded.Normalizer.Mean));
    }

    [Fact]
    public void Cancellation_WritesACheckpoint_AndResumesBitwise()
    {
        var data = Synthetic(20);
        using var full = DiffusionTraining.Train(data, Options(5));

        using var dir = new TempDirectory();
        using var cts = new CancellationTokenSource();
        var options = Options(5, dir: dir.Path) with
        {
            CancellationToken = cts.Token,
            Progress = new SyncProgress(p => { if (p.Step == 2) cts.Cancel(); }),
        };
        var e = Assert.Throws<TrainingCanceledException>(() => DiffusionTraining.Train(data, options));
        Assert.IsAssignableFrom<OperationCanceledException>(e);
        Assert.Equal(2, e.Step);
        Assert.Equal(dir.File(TrainingCheckpoint.FileName(TrainingStage.Diffusion, 2)), e.CheckpointPath);

        using var resumed = DiffusionTraining.Train(data, Options(5, dir: dir.Path));
        Assert.Equal(2, resumed.ResumedFromStep);
        Assert.Equal(full.LossHistory, resumed.LossHistory);
        TrainingAssert.ModulesBitwiseEqual(full.Model, resumed.Model);
    }

    [Fact]
    public void Resume_WithOtherSettings_IsRefused_AndResumeFalseStartsAfresh()
    {
        var data = Synthetic(16);
        using var dir = new TempDirectory();
        DiffusionTraining.Train(data, Options(2, dir: dir.Path)).Dispose();

        var e = Assert.Throws<TrainingResumeException>(() => DiffusionTraining.Train(data, Options(4, dir: dir.Path) with { LearningRate = 5e-4 }));
        Assert.Contains("learning_rate", e.Message);
        var other = Synthetic(16, seed: 2);
        var e2 = Assert.Throws<TrainingResumeException>(() => DiffusionTraining.Train(other, Options(4, dir: dir.Path)));
        Assert.Contains("data", e2.Message);

        using var fresh = DiffusionTraining.Train(data, Options(1, dir: dir.Path) with { Resume = false });
        Assert.Equal(0, fresh.ResumedFromStep);
        Assert.Equal(new long[] { 1 }, TrainingCheckpoint.List(dir.Path, TrainingStage.Diffusion).Select(c => c.Step));
    }

    [Fact]
    public void NaNInTheData_StopsTraining_AndKeepsTheLastGoodCheckpoint()
    {
        // Batch 4 of 16 samples: 4 steps per epoch. Poison the first sample of step 3 (epoch 0, position 2).
        long poisoned = TrainingRandom.EpochPermutation(42, 0, 16)[2 * 4];
        var data = Synthetic(16, edit: f => f[poisoned, 0, 0, 0] = float.NaN);
        using var dir = new TempDirectory();
        // Raw features (a fitted normalisation would already be NaN: see NaNInTheData_WithNormalisation_IsADataError).
        var options = Options(8, batch: 4, dir: dir.Path) with { CheckpointEvery = 1, NormalizeFeatures = false };

        var e = Assert.Throws<TrainingDivergedException>(() => DiffusionTraining.Train(data, options));
        output.WriteLine(e.Message);
        Assert.Equal(3, e.Step);
        Assert.True(double.IsNaN(e.Value));
        string good = dir.File(TrainingCheckpoint.FileName(TrainingStage.Diffusion, 2));
        Assert.Equal(good, e.LastGoodCheckpoint);
        Assert.Contains("step 3", e.Message);
        Assert.Contains(good, e.Message);
        Assert.Contains("learning rate", e.Message);
        Assert.Contains("normalis", e.Message);

        // Nothing of step 3 was written; the last good checkpoint loads with finite weights.
        Assert.Equal(new long[] { 1, 2 }, TrainingCheckpoint.List(dir.Path, TrainingStage.Diffusion).Select(c => c.Step));
        using var loaded = DiffusionTraining.LoadCheckpoint(good);
        Assert.All(loaded.Model.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
        Assert.Equal(2, loaded.LossHistory.Count);
    }

    [Fact]
    public void NaNInTheData_WithNormalisation_IsADataError()
    {
        var data = Synthetic(16, edit: f => f[3, 5, 1, 1] = float.PositiveInfinity);
        var e = Assert.Throws<InvalidDataException>(() => DiffusionTraining.Train(data, Options(2)));
        Assert.Contains("channel 5", e.Message);
        Assert.Contains("NaN or infinite", e.Message);
    }

    [Fact]
    public void AbsurdLearningRate_Diverges_WithoutWritingBadWeights()
    {
        var data = Synthetic(16);
        using var dir = new TempDirectory();
        var options = Options(20, batch: 4, dir: dir.Path) with { LearningRate = 1e30, CheckpointEvery = 1 };
        var e = Assert.Throws<TrainingDivergedException>(() => DiffusionTraining.Train(data, options));
        output.WriteLine(e.Message);
        Assert.True(e.Step >= 2);
        foreach (var (step, path) in TrainingCheckpoint.List(dir.Path, TrainingStage.Diffusion))
        {
            Assert.True(step < e.Step);
            using var c = TrainingCheckpoint.Load(path);
            Assert.All(c.WithPrefix("model.").Values, t => Assert.True(t.isfinite().all().item<bool>()));
        }
    }
}
