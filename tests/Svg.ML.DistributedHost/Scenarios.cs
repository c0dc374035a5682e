using Svg.ML.Autoencoder;
using Svg.ML.Diffusion;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
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
        var (features, labels) = FeatureData(n, nanRow);
        return DiffusionDataset.FromFeatures(features, labels, 4);
    }

    /// <summary>The tensor [n, 8, 4, 4] and labels (class i mod 4) of <see cref="Features"/>.</summary>
    public static (Tensor Features, long[] Labels) FeatureData(int n, int nanRow = -1)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(1);
        var means = randn(new long[] { 4, 8, 4, 4 }, generator: g) * 2 + 0.5;
        var labels = Enumerable.Range(0, n).Select(i => (long)(i % 4)).ToArray();
        var features = means.index_select(0, tensor(labels)) + 0.05 * randn(new long[] { n, 8, 4, 4 }, generator: g);
        if (nanRow >= 0) features[nanRow].fill_(float.NaN);
        return (features.DetachFromDisposeScope(), labels);
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

    /// <summary>A tiny SVG encoder on 16×16 images (patch 8): a 2-block DINOv3 base with random frozen weights and a
    /// 1-layer residual ViT (32 + 8 latent channels), built from fixed seeds.</summary>
    public static SvgEncoder TinySvgEncoder()
    {
        var dino = new DinoVisionTransformer(DinoV3Config.ViTSPlus16 with { Name = "tiny DINOv3", EmbedDim = 32, Depth = 2, NumHeads = 2, PatchSize = 8 });
        var g = new Generator(1, CPU);
        using (no_grad())
            foreach (var p in dino.parameters()) p.normal_(0, 0.5, g);
        var residual = ResidualEncoderConfig.Released with { ImageSize = 16, PatchSize = 8, NumLayers = 1, NumHeads = 2, HiddenDim = 32, MlpDim = 64 };
        return TrainingRandom.WithGlobalSeed(1, () => new SvgEncoder(dino, new SvgEncoderConfig { Residual = residual }));
    }

    /// <summary>Stage-1 options (a 4-level decoder 32 wide); <paramref name="batch"/> is per rank.</summary>
    public static AutoencoderTrainingOptions Autoencoder(long steps, int batch, string? checkpoints, ProcessGroup? group) => new()
    {
        Steps = steps, BatchSize = batch, LearningRate = 2e-3, Seed = 5, EstimateAlignment = false, CheckpointEvery = 0,
        Decoder = new LdmDecoderConfig(Ch: 32, ChMult: [1, 1, 1, 1], NumResBlocks: 0, AttnResolutions: [], ZChannels: 40, Resolution: 16),
        CheckpointDirectory = checkpoints, ProcessGroup = group,
    };

    /// <summary>The trained stage-1 weights: residual encoder (+ mask token) and decoder.</summary>
    public static Dictionary<string, Tensor> Weights(AutoencoderTrainingResult result) =>
        result.Encoder.state_dict().Where(kv => kv.Key.StartsWith("extra_vit.", StringComparison.Ordinal) || kv.Key == "mask_token")
              .Select(kv => ("encoder." + kv.Key, kv.Value))
              .Concat(result.Decoder.state_dict().Select(kv => ("decoder." + kv.Key, kv.Value)))
              .ToDictionary(p => p.Item1, p => p.Item2);

    /// <summary>The weights a scenario compares: model and EMA.</summary>
    public static Dictionary<string, Tensor> Weights(DiffusionTrainingResult result) =>
        result.Model.state_dict().Select(kv => ("model." + kv.Key, kv.Value))
              .Concat(result.EmaModel.state_dict().Select(kv => ("ema." + kv.Key, kv.Value)))
              .ToDictionary(p => p.Item1, p => p.Item2);
}
