using System.Diagnostics;
using Svg.ML.Autoencoder;
using Svg.ML.Data;
using Svg.ML.Diffusion;
using Svg.ML.Encoders;
using Svg.ML.Metrics;
using Svg.ML.Training;
using Svg.Quickstart;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.PaperClaims;

/// <summary>Fréchet distances of one image set under the two feature networks.</summary>
public sealed record FdPair(double ResNet, double Cnn);

/// <summary>One arm of the comparison: an autoencoder (stage 1), its latents, and the DiT trained on them (stage 2).</summary>
public sealed class Arm : IDisposable
{
    public required string Name { get; init; }
    public required string Key { get; init; }
    /// <summary>RGB [B, 3, 32, 32] in [0, 1] (on the model's device) → latent [B, 264, 4, 4]; eval mode, no gradients.</summary>
    public required Func<Tensor, Tensor> Encode { get; init; }
    public required LdmDecoder Decoder { get; init; }
    public required IDisposable Owner { get; init; }
    public required TimeSpan Stage1Time { get; init; }
    public long TrainableEncoderParameters { get; init; }
    public ReconstructionReport? Reconstruction { get; set; }
    public FdPair? ReconstructionFd { get; set; }
    public FeatureSet? Train { get; set; }
    public FeatureSet? Test { get; set; }
    public TimeSpan FeaturizeTime { get; set; }
    public TimeSpan Stage2Time { get; set; }
    public TimeSpan EvaluationTime { get; set; }
    public List<(int Step, FdPair Fd)> Curve { get; } = new();
    public SortedDictionary<int, FdPair> BySamplingSteps { get; } = new();
    public ProbeResult? Probe { get; set; }
    /// <summary>FD of a second sample set of the final model with other noise seeds (the sampling noise of the FD).</summary>
    public FdPair? ResampledFd { get; set; }
    public string? SamplesPath { get; set; }

    public void Dispose()
    {
        Train?.Dispose();
        Test?.Dispose();
        Owner.Dispose();
    }
}

/// <summary>Runs both arms with identical settings and collects the measurements.</summary>
public sealed class Experiment
{
    readonly ClaimsOptions _o;
    readonly DataSplit _data;
    readonly ResNet18 _resnet;
    readonly FashionClassifier _cnn;
    readonly Tensor _realResNet, _realCnn;
    readonly TextWriter _w;

    public Experiment(ClaimsOptions options, DataSplit data, ResNet18 resnet, FashionClassifier cnn, TextWriter w)
    {
        _o = options; _data = data; _resnet = resnet; _cnn = cnn; _w = w;
        using var real = data.Test.Images(0, data.Test.Count, 32, ResizeMode.Stretch);
        _realResNet = FrechetEvaluation.Features(resnet, real, QuickstartPipeline.ConvBatch).DetachFromDisposeScope();
        _realCnn = cnn.FeaturesOf(real).DetachFromDisposeScope();
    }

    /// <summary>Name of the ResNet18 feature space.</summary>
    public string ResNetName => FrechetEvaluation.EncoderName(_resnet);

    /// <summary>FD of <paramref name="images"/> [N, 3, 32, 32] against all held-out images, under both networks.</summary>
    public FdPair Fd(Tensor images)
    {
        using var scope = NewDisposeScope();
        var r = FrechetDistance.Compute(FrechetEvaluation.Features(_resnet, images, QuickstartPipeline.ConvBatch), _realResNet, ResNetName);
        var c = FrechetDistance.Compute(_cnn.FeaturesOf(images), _realCnn, "cnn");
        return new FdPair(r.Distance, c.Distance);
    }

    /// <summary>The stage-1 settings shared by both arms.</summary>
    public AutoencoderTrainingOptions AutoencoderOptions(IProgress<TrainingProgress> progress) => new()
    {
        Steps = _o.AutoencoderSteps,
        BatchSize = _o.AutoencoderBatch,
        LearningRate = _o.AutoencoderLearningRate,
        Seed = _o.Seed,
        Decoder = Architecture.Decoder(264, 32, 4),
        ImageSize = 32,
        Resize = ResizeMode.Stretch,
        Progress = progress,
        EstimateAlignment = true,
        AlignmentImages = Math.Min(512, _data.Train.Count),
    };

    /// <summary>Arm (i): SVG — frozen ResNet18 at 64 px + residual ViT, trained with Svg.ML's <see cref="AutoencoderTraining"/>.</summary>
    public Arm TrainSvg(FeatureCache cache)
    {
        var clock = Stopwatch.StartNew();
        var spec = new BaseSpec(BaseSpec.ResNet18Kind, null, null, 32, 64);
        var baseEncoder = Architecture.BuildBase(spec);
        var encoder = Architecture.NewSvgEncoder(baseEncoder, 32, _o.Seed);   // init stream of the plain arm's encoder
        var stage1 = AutoencoderTraining.Train(encoder, _data.Train, AutoencoderOptions(new ConsoleProgressBar()));
        var stored = QuickstartPipeline.WithStoredAlignment(encoder, stage1.Alignment!);
        long trainable = encoder.ResidualEncoder.parameters().Sum(p => p.numel()) + 8;
        var arm = new Arm
        {
            Name = "SVG (ResNet18 + residual)",
            Key = "svg",
            Encode = x => stored.Encode(x),
            Decoder = stage1.Decoder,
            Owner = stage1,   // the encoders share the frozen base; they live until the process ends
            Stage1Time = clock.Elapsed,
            TrainableEncoderParameters = trainable,
        };
        clock.Restart();
        arm.Train = QuickstartPipeline.Featurize(stored, _data.Train, 32, cache);
        arm.Test = QuickstartPipeline.Featurize(stored, _data.Test, 32, cache);
        arm.FeaturizeTime = clock.Elapsed;
        return arm;
    }

    /// <summary>Arm (ii): a plain autoencoder (LDM conv encoder + the same decoder) trained from scratch, same budget.</summary>
    public Arm TrainPlain()
    {
        var clock = Stopwatch.StartNew();
        var options = AutoencoderOptions(new ConsoleProgressBar());
        var (encoder, decoder, _) = PlainAutoencoderTraining.Train(_data.Train, options.Decoder!, options, options.Progress);
        Tensor Encode(Tensor x)
        {
            using var _ = no_grad();
            return encoder.call(x);
        }
        var arm = new Arm
        {
            Name = "Plain AE (from scratch)",
            Key = "plain",
            Encode = Encode,
            Decoder = decoder,
            Owner = new Disposables(encoder, decoder),
            Stage1Time = clock.Elapsed,
            TrainableEncoderParameters = encoder.parameters().Sum(p => p.numel()),
        };
        clock.Restart();
        arm.Train = Latents(arm, _data.Train);
        arm.Test = Latents(arm, _data.Test);
        arm.FeaturizeTime = clock.Elapsed;
        return arm;
    }

    /// <summary>The plain arm's latents, in memory (the same token layout as the SVG features).</summary>
    FeatureSet Latents(Arm arm, LabeledImages images)
    {
        var parts = new List<Tensor>();
        try
        {
            using var _ = no_grad();
            for (int s = 0; s < images.Count; s += QuickstartPipeline.ConvBatch)
            {
                using var scope = NewDisposeScope();
                int n = Math.Min(QuickstartPipeline.ConvBatch, images.Count - s);
                parts.Add(LatentTokens.ToTokens(arm.Encode(images.Images(s, n, 32, ResizeMode.Stretch))).MoveToOuterDisposeScope());
            }
            var tokens = cat(parts, 0).DetachFromDisposeScope();
            var dataset = DiffusionDataset.FromFeatures(tokens, images.Labels, images.ClassNames.Count);
            return new FeatureSet(dataset, tokens, images.Labels);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>Reconstruction PSNR/SSIM and the FD of the reconstructions (the decoder's floor for generated images).</summary>
    public void EvaluateReconstruction(Arm arm)
    {
        int n = Math.Min(_o.ReconstructionImages, _data.Test.Count);
        var parts = new List<Tensor>();
        double psnr = 0, ssim = 0, l1 = 0;
        using (no_grad())
            for (int s = 0; s < n; s += QuickstartPipeline.ConvBatch)
            {
                using var scope = NewDisposeScope();
                int k = Math.Min(QuickstartPipeline.ConvBatch, n - s);
                var x = _data.Test.Images(s, k, 32, ResizeMode.Stretch);
                var rec = ((arm.Decoder.call(arm.Encode(x)) + 1) / 2).clamp(0, 1);
                psnr += Psnr.PerImage(x, rec).sum().item<double>();
                ssim += Ssim.PerImage(x, rec).sum().item<double>();
                l1 += (x - rec).abs().flatten(1).mean([1]).sum().item<float>();
                parts.Add(rec.MoveToOuterDisposeScope());
            }
        arm.Reconstruction = new ReconstructionReport(psnr / n, ssim / n, l1 / n, n);
        using var all = cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        arm.ReconstructionFd = Fd(all);
        ImagePng.SaveGrid(Interleave(_data.Test.Images(0, 8, 32, ResizeMode.Stretch), all.narrow(0, 0, 8)), 8,
                          Path.Combine(_o.DocsDirectory, "results", $"reconstructions_{arm.Key}.png"));
    }

    static Tensor Interleave(Tensor a, Tensor b) => cat(new[] { a, b }, 0);

    /// <summary>
    /// Stage 2 with Svg.ML's <see cref="DiffusionTraining"/>, stopping at every milestone (the run resumes its own
    /// checkpoint, bitwise as if uninterrupted) to measure the FD of the EMA model; at the end also the FD for every
    /// sampling-step count of the table, and a sample grid.
    /// </summary>
    public void TrainDiffusion(Arm arm, string checkpoints)
    {
        var config = Architecture.DiT(_o.Model, arm.Train!.Channels, arm.Train.GridHeight, arm.Train.NumClasses);
        var options = new DiffusionTrainingOptions
        {
            Model = config,
            BatchSize = _o.DiffusionBatch,
            LearningRate = _o.DiffusionLearningRate,
            EmaDecay = _o.EmaDecay,
            Seed = _o.Seed,
            CheckpointDirectory = checkpoints,
            CheckpointEvery = 0,
            KeepLast = 1,
        };
        var train = Stopwatch.StartNew();
        var eval = new Stopwatch();
        foreach (int milestone in _o.Milestones)
        {
            train.Start();
            using var result = DiffusionTraining.Train(arm.Train.Dataset, options with { Steps = milestone, Progress = new ConsoleProgressBar() });
            train.Stop();
            eval.Start();
            var fd = FdOfModel(arm, result, _o.CurveSamplingSteps);
            arm.Curve.Add((milestone, fd));
            _w.WriteLine($"    {arm.Name}: step {milestone}: FD ResNet18 {fd.ResNet:F2}, FD CNN {fd.Cnn:F2} ({_o.CurveSamplingSteps} sampling steps)");
            if (milestone == _o.Milestones[^1])
            {
                foreach (int steps in _o.TableSamplingSteps)
                {
                        var f = steps == _o.CurveSamplingSteps ? fd : FdOfModel(arm, result, steps);
                    arm.BySamplingSteps[steps] = f;
                    _w.WriteLine($"    {arm.Name}: {steps} sampling steps: FD ResNet18 {f.ResNet:F2}, FD CNN {f.Cnn:F2}");
                }
                arm.ResampledFd = FdOfModel(arm, result, _o.CurveSamplingSteps, seedOffset: 2_000_000);
                _w.WriteLine($"    {arm.Name}: other noise seeds, {_o.CurveSamplingSteps} sampling steps: FD ResNet18 {arm.ResampledFd.ResNet:F2}, FD CNN {arm.ResampledFd.Cnn:F2}");
                using var grid = GenerateImages(arm, result, Generation.GridLabels(_data.ClassNames.Count, 8), _o.TableSamplingSteps.Max());
                arm.SamplesPath = Path.Combine(_o.DocsDirectory, "results", $"samples_{arm.Key}.png");
                ImagePng.SaveGrid(grid, 8, arm.SamplesPath);
            }
            eval.Stop();
        }
        arm.Stage2Time = train.Elapsed;
        arm.EvaluationTime = eval.Elapsed;
    }

    FdPair FdOfModel(Arm arm, DiffusionTrainingResult result, int samplingSteps, long seedOffset = 1_000_000)
    {
        using var images = GenerateImages(arm, result, Generation.BalancedLabels(_o.FdSamples, _data.ClassNames.Count), samplingSteps, seedOffset);
        return Fd(images);
    }

    /// <summary>Samples with the EMA weights (the same noise seeds for both arms) and decodes.</summary>
    Tensor GenerateImages(Arm arm, DiffusionTrainingResult result, int[] labels, int samplingSteps, long seedOffset = 1_000_000)
    {
        var sampler = new SamplerOptions(Steps: samplingSteps, CfgScale: _o.Cfg);
        using var latents = Generation.SampleLatents(result.EmaModel, result.Normalizer, labels, _o.Seed + seedOffset, sampler);
        return Generation.Decode(arm.Decoder, latents, QuickstartPipeline.ConvBatch);
    }

    /// <summary>Linear probes on pooled features: the frozen base's channels, the SVG latent, the plain latent.</summary>
    public (ProbeResult Base, ProbeResult Svg, ProbeResult Plain) Probes(Arm svg, Arm plain)
    {
        var (b, s) = QuickstartPipeline.ProbeFeatures(svg.Train!, svg.Test!, 256, _o.Seed);
        var (_, p) = QuickstartPipeline.ProbeFeatures(plain.Train!, plain.Test!, 256, _o.Seed);
        return (b, s, p);
    }

    /// <summary>FD of as many real training images as generated ones against the held-out set (the floor).</summary>
    public FdPair RealReference()
    {
        int n = Math.Min(_o.FdSamples, _data.Train.Count);
        using var real = _data.Train.Images(_data.Train.Count - n, n, 32, ResizeMode.Stretch);
        return Fd(real);
    }

    sealed class Disposables(params IDisposable[] items) : IDisposable
    {
        public void Dispose() { foreach (var i in items) i.Dispose(); }
    }
}
