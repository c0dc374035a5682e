using System.Diagnostics;
using Svg.ML.Autoencoder;
using Svg.ML.Data;
using Svg.ML.PaperClaims;
using Svg.ML.Training;
using Svg.Quickstart;
using static TorchSharp.torch;

namespace Svg.ML.DenseTasks;

/// <summary>
/// One feature space of the comparison: how it encodes RGB images [B, 3, S, S] in [0, 1] into a map [B, C, h, w],
/// and the features of the training and held-out scenes (in memory, computed once).
/// </summary>
public sealed class FeatureArm
{
    public required string Name { get; init; }
    public required string Key { get; init; }
    public required Func<Tensor, Tensor> Encode { get; init; }
    public required string Stage1 { get; init; }
    public string BaseName { get; init; } = "";
    public required TimeSpan Stage1Time { get; init; }
    public Tensor Train { get; set; } = null!;
    public Tensor Test { get; set; } = null!;
    public TimeSpan FeaturizeTime { get; set; }
    public int Channels => (int)Train.shape[1];
}

/// <summary>
/// Builds the three arms on the training scenes: (i) SVG = frozen ResNet18 (stage 3, on scenes enlarged to the base
/// size) + a residual ViT trained by Svg.ML's <see cref="AutoencoderTraining"/> (reconstruction), (ii) the same frozen
/// base's channels alone, (iii) the paper-claims program's plain convolutional autoencoder, trained from scratch with
/// the same objective, steps and batch, giving a latent of the SVG latent's shape. Nothing sees a label.
/// </summary>
public static class FeatureArms
{
    public static (FeatureArm Svg, FeatureArm Base, FeatureArm Plain) Build(DenseOptions o, LabeledImages train, Tensor testImages, TextWriter w)
    {
        int s = o.SceneSize;
        var spec = new BaseSpec(BaseSpec.ResNet18Kind, null, null, s, o.BaseSize);
        var baseEncoder = Architecture.BuildBase(spec);
        int grid = s / baseEncoder.PatchSize;
        var options = new AutoencoderTrainingOptions
        {
            Steps = o.AutoencoderSteps,
            BatchSize = o.AutoencoderBatch,
            LearningRate = o.AutoencoderLearningRate,
            Seed = o.Seed,
            Decoder = Architecture.Decoder(baseEncoder.Channels + Architecture.Residual(s, baseEncoder.PatchSize).OutputDim, s, grid),
            ImageSize = s,
            Resize = ResizeMode.Stretch,
            Progress = new ConsoleProgressBar(),
            EstimateAlignment = true,
            AlignmentImages = Math.Min(512, train.Count),
        };
        string stage1 = $"{o.AutoencoderSteps} steps × batch {o.AutoencoderBatch}, Adam lr {o.AutoencoderLearningRate}, L1 reconstruction";

        w.WriteLine($"[stage 1] (i) SVG: {baseEncoder.Name}, {grid}×{grid} grid, + residual ViT ({stage1})");
        var clock = Stopwatch.StartNew();
        var encoder = Architecture.NewSvgEncoder(baseEncoder, s, o.Seed);
        var trained = AutoencoderTraining.Train(encoder, train, options);
        var svgEncoder = QuickstartPipeline.WithStoredAlignment(encoder, trained.Alignment!);
        int baseChannels = baseEncoder.Channels;
        var svg = new FeatureArm
        {
            Name = "SVG (ResNet18 + residual)", Key = "svg", Encode = x => svgEncoder.Encode(x),
            Stage1 = $"residual ViT, {stage1}", Stage1Time = clock.Elapsed, BaseName = baseEncoder.Name,
        };
        var baseArm = new FeatureArm
        {
            Name = "ResNet18 alone (base)", Key = "base",
            Encode = x => svgEncoder.Encode(x).narrow(1, 0, baseChannels), Stage1 = "none (frozen)", Stage1Time = TimeSpan.Zero,
        };

        w.WriteLine($"[stage 1] (iii) plain autoencoder from scratch ({stage1})");
        clock.Restart();
        var (plainEncoder, _, _) = PlainAutoencoderTraining.Train(train, options.Decoder, options, new ConsoleProgressBar());
        var plain = new FeatureArm
        {
            Name = "Plain AE (from scratch)", Key = "plain", Stage1 = $"conv encoder + decoder, {stage1}", Stage1Time = clock.Elapsed,
            Encode = x => plainEncoder.call(x),
        };

        clock.Restart();
        svg.Train = Featurize(svg.Encode, train.Pixels);
        svg.Test = Featurize(svg.Encode, testImages);
        baseArm.Train = svg.Train.narrow(1, 0, baseChannels).contiguous();   // the same forward pass: the base's channels
        baseArm.Test = svg.Test.narrow(1, 0, baseChannels).contiguous();
        svg.FeaturizeTime = baseArm.FeaturizeTime = clock.Elapsed;
        clock.Restart();
        plain.Train = Featurize(plain.Encode, train.Pixels);
        plain.Test = Featurize(plain.Encode, testImages);
        plain.FeaturizeTime = clock.Elapsed;
        foreach (var arm in new[] { svg, baseArm, plain })
            w.WriteLine($"[features] {arm.Name}: [{string.Join(", ", arm.Train.shape.Skip(1))}] per image; stage 1 {arm.Stage1Time.TotalSeconds:F0} s, " +
                        $"featurize {train.Count + testImages.shape[0]} images {arm.FeaturizeTime.TotalSeconds:F0} s");
        return (svg, baseArm, plain);
    }

    /// <summary>Feature maps of <paramref name="images"/> (uint8 or float in [0, 1], [N, 3, S, S]) in batches (no gradients), on the CPU.</summary>
    public static Tensor Featurize(Func<Tensor, Tensor> encode, Tensor images)
    {
        var parts = new List<Tensor>();
        try
        {
            using var _ = no_grad();
            for (long start = 0; start < images.shape[0]; start += QuickstartPipeline.ConvBatch)
            {
                using var scope = NewDisposeScope();
                var batch = images.narrow(0, start, Math.Min(QuickstartPipeline.ConvBatch, images.shape[0] - start));
                var x = batch.dtype == ScalarType.Byte ? batch.to(ScalarType.Float32) / 255f : batch;
                parts.Add(encode(x).cpu().MoveToOuterDisposeScope());
            }
            return cat(parts, 0).DetachFromDisposeScope();
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }
}
