using Svg.ML.Diffusion;
using Svg.ML.Distributed;
using Svg.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.DistributedHost;

/// <summary>The data and settings of the MPI test scenarios, shared by the host (every rank) and the tests (the
/// one-process reference).</summary>
public static class Scenarios
{
    /// <summary>A DiT of 2 blocks, 32 wide, on a 4×4 grid of 8 channels, 4 classes, class dropout 0.1 (official).</summary>
    public static SvgDiTConfig TinyDiT => new(InChannels: 8, HiddenSize: 32, Depth: 2, NumHeads: 2, NumClasses: 4, GridSize: 4);

    /// <summary>Learnable features [n, 8, 4, 4]: a random pattern per class plus a little noise. With
    /// <paramref name="nanRow"/>, that row is NaN (and the normaliser fixed, so that only its batch diverges).</summary>
    public static DiffusionDataset Features(int n, int nanRow = -1)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(1);
        var means = randn(new long[] { 4, 8, 4, 4 }, generator: g) * 2 + 0.5;
        var labels = Enumerable.Range(0, n).Select(i => (long)(i % 4)).ToArray();
        var features = means.index_select(0, tensor(labels)) + 0.05 * randn(new long[] { n, 8, 4, 4 }, generator: g);
        if (nanRow >= 0) features[nanRow].fill_(float.NaN);
        return DiffusionDataset.FromFeatures(features.DetachFromDisposeScope(), labels, 4);
    }

    /// <summary>Random latents [n, channels, 4, 4] with 10 classes (for timing only).</summary>
    public static DiffusionDataset Latents(int n, int channels)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(2);
        var labels = Enumerable.Range(0, n).Select(i => (long)(i % 10)).ToArray();
        return DiffusionDataset.FromFeatures(randn(new long[] { n, channels, 4, 4 }, generator: g).DetachFromDisposeScope(), labels, 10);
    }

    /// <summary>Stage-2 options; <paramref name="batch"/> is per rank.</summary>
    public static DiffusionTrainingOptions Diffusion(long steps, int batch, string? checkpoints, ProcessGroup? group) => new()
    {
        Model = TinyDiT, Steps = steps, BatchSize = batch, LearningRate = 1e-3, Seed = 42, EmaDecay = 0.9,
        CheckpointDirectory = checkpoints, CheckpointEvery = 0, ProcessGroup = group,
    };

    /// <summary>The weights a scenario compares: model and EMA.</summary>
    public static Dictionary<string, Tensor> Weights(DiffusionTrainingResult result) =>
        result.Model.state_dict().Select(kv => ("model." + kv.Key, kv.Value))
              .Concat(result.EmaModel.state_dict().Select(kv => ("ema." + kv.Key, kv.Value)))
              .ToDictionary(p => p.Item1, p => p.Item2);
}
