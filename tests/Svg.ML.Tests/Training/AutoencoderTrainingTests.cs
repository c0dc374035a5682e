using Svg.ML.Autoencoder;
using Svg.ML.Data;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.Tests.Encoders;
using Svg.ML.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Training;

[Collection(SerialTrainingCollection.Name)]
public class AutoencoderTrainingTests(ITestOutputHelper output)
{
    /// <summary>A 4-level decoder 32 channels wide (×8: a 2×2 grid → 16×16 pixels), 40 latent channels.</summary>
    static LdmDecoderConfig TinyDecoder => new(Ch: 32, ChMult: [1, 1, 1, 1], NumResBlocks: 0, AttnResolutions: [], ZChannels: 40, Resolution: 16);

    /// <summary>A tiny SVG encoder on 16×16 images (patch 8, 2×2 grid): a 2-block DINOv3 base (random weights, frozen)
    /// + a 1-layer residual ViT; 32 + 8 latent channels.</summary>
    static SvgEncoder TinySvg(long seed = 1)
    {
        var dino = TinyEncoders.Randomized(new DinoVisionTransformer(TinyEncoders.Dino with { PatchSize = 8 }), seed);
        return TrainingRandom.WithGlobalSeed(seed, () =>
            new SvgEncoder(dino, new SvgEncoderConfig { Residual = TinyEncoders.Residual with { ImageSize = 16, PatchSize = 8 } }));
    }

    [Fact]
    public void L1_Decreases_OnFashionMnist_AndPsnrSsimAreReported()
    {
        using var train = FashionMnist.Load(train: false, limit: 24);
        using var all = FashionMnist.Load(train: false, limit: 40);
        using var heldOut = new LabeledImages(all.Pixels.narrow(0, 24, 16).clone(), all.Labels[24..], all.ClassNames, "held-out");
        var encoder = TinySvg();
        var decoder = TrainingRandom.WithGlobalSeed(3, () => new LdmDecoder(TinyDecoder));
        var before = AutoencoderTraining.Evaluate(encoder, decoder, heldOut, batchSize: 8);

        var log = new List<string>();
        using var result = AutoencoderTraining.Train(encoder, train, new AutoencoderTrainingOptions
        {
            Steps = 40, BatchSize = 8, LearningRate = 2e-3, Seed = 5, Validation = heldOut, Log = log.Add,
        }, decoder);

        var losses = result.LossHistory;
        double first = losses.Take(5).Average(), last = losses.TakeLast(5).Average();
        output.WriteLine($"loss (Σ|x − x̂| / B): first 5 steps {first:F1}, last 5 steps {last:F1}; {result.Elapsed.TotalSeconds:F1} s");
        output.WriteLine($"held-out before: {before}; after: {result.Validation}");
        Assert.True(last < 0.6 * first, $"L1 did not decrease: {first} → {last}");
        Assert.NotNull(result.Validation);
        Assert.True(result.Validation!.Psnr > before.Psnr + 3, $"PSNR {before.Psnr:F2} → {result.Validation.Psnr:F2}");
        Assert.True(result.Validation.Ssim > before.Ssim, $"SSIM {before.Ssim:F4} → {result.Validation.Ssim:F4}");
        Assert.Equal(16, result.Validation.Images);

        Assert.False(result.UsedLpips);
        Assert.Contains("LPIPS off", result.LossDescription);
        Assert.Contains(log, l => l.Contains("LPIPS off"));
        Assert.NotNull(result.Alignment);
        Assert.Equal(24, result.Alignment!.Rows);
        Assert.Same(result.Alignment, encoder.Statistics);
        Assert.Same(decoder, result.Decoder);
        Assert.False(encoder.training);
    }

    [Fact]
    public void WithLpipsAndGan_ResumeContinuesBitwise()
    {
        using var images = FashionMnist.Load(train: false, limit: 6);       // batch 2 → 3 steps per epoch
        using var lpips = TrainingRandom.WithGlobalSeed(9, () => new Lpips());   // untrained weights: exercises the path
        AutoencoderTrainingOptions Options(long steps, string? dir) => new()
        {
            Steps = steps, BatchSize = 2, LearningRate = 1e-3, Seed = 11, Decoder = TinyDecoder,
            Lpips = lpips, Gan = true, DiscStart = 1, Discriminator = new NLayerDiscriminatorConfig(Ndf: 8, Layers: 2),
            CheckpointDirectory = dir, CheckpointEvery = 0, EstimateAlignment = false,
        };

        var metrics = new List<IReadOnlyDictionary<string, double>>();
        var fullEncoder = TinySvg();
        using var full = AutoencoderTraining.Train(fullEncoder, images, Options(4, null) with
        {
            Progress = new SyncProgress(p => metrics.Add(p.Metrics!)),
        });
        Assert.True(full.UsedLpips);
        Assert.Contains("hinge GAN", full.LossDescription);
        Assert.DoesNotContain("d_weight", metrics[0].Keys);                 // step index 0 < DiscStart
        Assert.Contains("d_weight", metrics[1].Keys);
        Assert.Contains("d_loss", metrics[1].Keys);
        Assert.Contains("lpips", metrics[1].Keys);
        Assert.All(full.LossHistory, l => Assert.True(float.IsFinite(l)));

        using var dir = new TempDirectory();
        using (AutoencoderTraining.Train(TinySvg(), images, Options(2, dir.Path))) { }
        var resumedEncoder = TinySvg();
        using var resumed = AutoencoderTraining.Train(resumedEncoder, images, Options(4, dir.Path));
        output.WriteLine($"full run {full.Elapsed.TotalSeconds:F1} s, resumed part {resumed.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(2, resumed.ResumedFromStep);
        Assert.Equal(full.LossHistory, resumed.LossHistory);
        TrainingAssert.ModulesBitwiseEqual(fullEncoder, resumedEncoder);
        TrainingAssert.ModulesBitwiseEqual(full.Decoder, resumed.Decoder);
        TrainingAssert.ModulesBitwiseEqual(full.Discriminator!, resumed.Discriminator!);

        // The checkpoint restores encoder and decoder.
        var loadedEncoder = TinySvg();
        using var loadedDecoder = AutoencoderTraining.LoadCheckpoint(resumed.CheckpointPath!, loadedEncoder);
        TrainingAssert.ModulesBitwiseEqual(fullEncoder, loadedEncoder);
        TrainingAssert.ModulesBitwiseEqual(full.Decoder, loadedDecoder);
    }

    [Fact]
    public void Encode_GivesLatentsForStage2_InMemoryOrCached()
    {
        using var images = FashionMnist.Load(train: false, limit: 10);
        var encoder = TinySvg();
        encoder.Statistics = AutoencoderTraining.EstimateAlignment(encoder, images, batchSize: 4);
        // The same weights with stored alignment statistics (rows encoded independently of their batch).
        var stored = new SvgEncoder(encoder.BaseEncoder, encoder.Config with { Alignment = ResidualAlignment.Stored });
        Svg.ML.Checkpoints.StateDict.Load(stored, encoder.state_dict());
        stored.Statistics = encoder.Statistics;

        var memory = DiffusionDataset.Encode(stored, images, batchSize: 4);
        Assert.Equal((10L, 40, 2, 2, 10), (memory.Count, memory.Channels, memory.GridHeight, memory.GridWidth, memory.NumClasses));
        Assert.Equal(images.Labels, memory.Labels);
        using var dir = new TempDirectory();
        var cached = DiffusionDataset.Encode(stored, images, batchSize: 4, cache: new FeatureCache(dir.Path));
        Assert.True(cached.IsStreamed);
        long[] all = Enumerable.Range(0, 10).Select(i => (long)i).ToArray();
        using var a = memory.ReadTokens(all);
        using var b = cached.ReadTokens(all);
        Assert.True(TrainingAssert.BitwiseEqual(a, b));

        // Row 7 equals encoding image 7 alone (stored alignment: rows are independent of their batch).
        using (no_grad())
        {
            stored.eval();
            using var single = stored.Encode(images.Images(7, 1, 16));
            // Batch of 1 vs batch of 4: the same convolutions with differently blocked float sums (oneDNN orders them
            // by batch size). Agreement relative to the values' scale: 1e-5 of the largest magnitude (~80 ulps).
            float scale = a[7].abs().max().item<float>();
            float worst = (Svg.ML.Diffusion.LatentTokens.ToTokens(single)[0] - a[7]).abs().max().item<float>();
            Assert.True(worst <= 1e-5f * scale, $"row 7 alone vs in its batch: max abs difference {worst:G3} for values up to {scale:G3}");
        }

        using var result = DiffusionTraining.Train(memory, new DiffusionTrainingOptions
        {
            Model = new Svg.ML.Diffusion.SvgDiTConfig(InChannels: 40, HiddenSize: 32, Depth: 1, NumHeads: 2, NumClasses: 10, GridSize: 2),
            Steps = 2, BatchSize = 4,
        });
        Assert.Equal(2, result.LossHistory.Count);
    }

    sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }
}
