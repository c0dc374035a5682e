using System.Diagnostics;
using System.Globalization;
using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Data;
using Svg.ML.Diffusion;
using Svg.ML.Distributed;
using Svg.ML.Encoders;
using Svg.ML.Metrics;
using Svg.ML.Runtime;
using Svg.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.Quickstart;

/// <summary>What a quickstart run measured and wrote.</summary>
public sealed record QuickstartResult(
    string Data,
    string BaseEncoder,
    string Latent,
    ProbeResult ProbeBase,
    ProbeResult ProbeSvg,
    ReconstructionReport Reconstruction,
    FrechetDistanceResult Fd,
    FrechetDistanceResult FdReference,
    string GridPath,
    string ReconstructionPath,
    string ModelPath,
    IReadOnlyList<string> ClassNames,
    TimeSpan Elapsed);

/// <summary>
/// The SVG pipeline of the quickstart, one function per stage:
/// <list type="number">
/// <item>data: images at the working size (<see cref="QuickstartData"/>);</item>
/// <item>frozen base encoder (ResNet18 or DINOv3, <see cref="Architecture.BuildBase"/>);</item>
/// <item>stage 1: residual encoder + decoder on the frozen base (<see cref="TrainAutoencoder"/>);</item>
/// <item>featurize: SVG latents of every image, cached (<see cref="Featurize"/>);</item>
/// <item>stage 2: the DiT with rectified flow on the latents (<see cref="TrainDiffusion"/>);</item>
/// <item>sample: a class-conditional grid and images for the FD (<see cref="Generation"/>);</item>
/// <item>evaluate: linear probe, reconstruction PSNR/SSIM, Fréchet distance; save the model.</item>
/// </list>
/// </summary>
public static class QuickstartPipeline
{
    const int Stages = 7;

    /// <summary>
    /// Images per forward pass of the convolutional parts (base, decoder, FD network) outside training. Small on
    /// purpose: with oneDNN off (Svg.ML switches it off on CPUs where its convolutions are wrong), libtorch's fallback
    /// convolution unfolds the whole batch at once, and on a 2-core machine a batch of 32 at 32×32×32 ran 20× slower
    /// than two batches of 16 once that buffer outgrew the cache.
    /// </summary>
    public const int ConvBatch = 16;

    /// <summary>Runs everything and prints stages, progress bars and a summary to <paramref name="output"/> (default: the console).</summary>
    public static QuickstartResult Run(QuickstartOptions o, TextWriter? output = null) =>
        Run(o, output, ProcessGroup.Single) ?? throw new InvalidOperationException("one process is rank 0");

    /// <summary>
    /// Runs the quickstart on every rank of <paramref name="group"/>: the featurization and both training stages are
    /// shared (the batches stay the global ones); rank 0 then samples, evaluates, writes and returns the result, the
    /// other ranks return null after training. Only rank 0 prints.
    /// </summary>
    public static QuickstartResult? Run(QuickstartOptions o, TextWriter? output, ProcessGroup group)
    {
        var clock = Stopwatch.StartNew();
        InitializeRuntime();
        if (o.Threads is int threads) set_num_threads(threads);
        var w = group.IsWriter ? output ?? Console.Out : TextWriter.Null;
        var device = group.DeviceFor(TorchRuntime.ParseDevice(o.Device));
        Directory.CreateDirectory(o.OutputDirectory);
        var cache = new FeatureCache(o.CacheDirectory);
        w.WriteLine($"Svg.ML quickstart — TorchSharp {typeof(torch).Assembly.GetName().Version}, device {device}, {get_num_threads()} CPU threads, seed {o.Seed}" +
                    (group.WorldSize > 1 ? $", {group.WorldSize} MPI ranks." : "."));

        QuickstartModel? loaded = o.LoadPath is null ? null : QuickstartModel.Load(ModelFolder(o.LoadPath), device);
        var spec = loaded?.Base ?? BaseSpec.FromOptions(o);

        Stage(w, 1, "Data");
        using var data = QuickstartData.Load(o.DataPath, o.TrainImages, o.TestImages, spec.ImageSize, o.Seed);
        w.WriteLine($"      {data.Description}.");
        if (group.WorldSize > 1)
            PrintRanks(w, group, device, data, stage1Batch: loaded is null && spec.Kind != BaseSpec.SvgAutoencoderKind ? o.AutoencoderBatch : null,
                       stage2Batch: loaded is null ? o.DiffusionBatch : null);

        AutoencoderTrainingResult? stage1 = null;
        DiffusionTrainingResult? stage2 = null;
        SvgAutoencoder? official = null;
        QuickstartModel? model = loaded;
        try
        {
            SvgEncoder encoder;
            LdmDecoder decoder;
            Stage(w, 2, "Frozen base encoder");
            if (loaded is not null)
            {
                (encoder, decoder) = (loaded.Encoder, loaded.Decoder);
                w.WriteLine($"      loaded {ModelFolder(o.LoadPath!)}: {encoder.BaseEncoder.Name}.");
            }
            else if (spec.Kind == BaseSpec.SvgAutoencoderKind)
            {
                official = LoadOfficialAutoencoder(spec.WeightsPath!);
                official.to(device);
                (encoder, decoder) = (official.Encoder, official.Decoder);
                w.WriteLine($"      {encoder.BaseEncoder.Name} from the official SVG autoencoder {spec.WeightsPath}.");
            }
            else
            {
                var baseEncoder = Architecture.BuildBase(spec);
                baseEncoder.Module.to(device);
                encoder = Architecture.NewSvgEncoder(baseEncoder, spec.ImageSize, o.Seed);
                decoder = null!;
                int grid = spec.ImageSize / baseEncoder.PatchSize;
                w.WriteLine($"      {baseEncoder.Name}: {grid}×{grid} grid of {baseEncoder.Channels} channels per {spec.ImageSize} px image (frozen).");
            }

            Stage(w, 3, "Stage 1 — SVG autoencoder (residual encoder + decoder on the frozen base)");
            if (loaded is not null) w.WriteLine("      skipped (loaded model).");
            else if (official is not null)
            {
                w.WriteLine("      skipped (official autoencoder); estimating the stored residual alignment…");
                var stats = AutoencoderTraining.EstimateAlignment(encoder, data.Train, Math.Min(512, data.Train.Count), ConvBatch, spec.ImageSize, ResizeMode.Stretch);
                encoder = WithStoredAlignment(encoder, stats);
            }
            else
            {
                stage1 = TrainAutoencoder(o, encoder, data, spec.ImageSize, device, w, group);
                if (stage1.ResumedFromStep >= stage1.Steps) w.WriteLine($"      already trained: resumed the finished run from {stage1.CheckpointPath}.");
                encoder = WithStoredAlignment(encoder, stage1.Alignment!);
                decoder = stage1.Decoder;
            }
            encoder.to(device);
            encoder.eval();
            decoder.eval();
            w.WriteLine($"      SVG latent [{encoder.Channels}, {spec.ImageSize / encoder.PatchSize}, {spec.ImageSize / encoder.PatchSize}] = " +
                        $"{encoder.BaseEncoder.Channels} base + {encoder.Config.Residual.OutputDim} residual channels; residual aligned with stored statistics.");

            Stage(w, 4, "Featurize (SVG latents, feature cache)");
            var sw = Stopwatch.StartNew();
            using var trainSet = Featurize(encoder, data.Train, spec.ImageSize, cache, group);
            using var testSet = Featurize(encoder, data.Test, spec.ImageSize, cache, group);
            w.WriteLine($"      {trainSet.Count} + {testSet.Count} images → tokens [{trainSet.Tokens}, {trainSet.Channels}] in {Seconds(sw.Elapsed)} (cache: {cache.Directory}).");

            Stage(w, 5, "Stage 2 — diffusion transformer (rectified flow) on SVG latents");
            SvgDiT dit;
            FeatureNormalizer normalizer;
            if (loaded is not null)
            {
                (dit, normalizer) = (loaded.DiT, loaded.Normalizer);
                w.WriteLine($"      skipped (loaded model: {Architecture.Describe(dit.Config, dit)}).");
            }
            else
            {
                var ditConfig = Architecture.DiT(o.Model, trainSet.Channels, trainSet.GridHeight, trainSet.NumClasses);
                w.WriteLine($"      DiT ({o.Model}): {Architecture.Describe(ditConfig)}; {o.DiffusionSteps} steps × batch {o.DiffusionBatch}, " +
                            $"AdamW lr {Invariant(o.DiffusionLearningRate)}, EMA {Invariant(o.EmaDecay)}, label dropout 0.1, time shift 0.4.");
                stage2 = TrainDiffusion(o, ditConfig, trainSet.Dataset, device, w, group);
                if (stage2.ResumedFromStep >= stage2.Steps) w.WriteLine($"      already trained: resumed the finished run from {stage2.CheckpointPath}.");
                (dit, normalizer) = (stage2.EmaModel, stage2.Normalizer);
            }
            if (!group.IsWriter) return null;   // rank 0 alone samples, evaluates and writes
            model ??= new QuickstartModel(spec, encoder, decoder, dit, normalizer, data.ClassNames, owns: false);

            Stage(w, 6, "Sample");
            sw.Restart();
            var gridSampler = new SamplerOptions(Steps: o.SamplingSteps, CfgScale: 4.0);
            string gridPath = Path.Combine(o.OutputDirectory, "samples.png");
            using (var images = Generate(model, Generation.GridLabels(data.ClassNames.Count, o.GridColumns), o.Seed, gridSampler, o.Precision))
                ImagePng.SaveGrid(images, o.GridColumns, gridPath, scale: Math.Max(1, 64 / spec.ImageSize));
            w.WriteLine($"      {gridPath}: one row per class ({string.Join(", ", data.ClassNames)}), {o.GridColumns} samples each, " +
                        $"{o.SamplingSteps} Euler steps, CFG 4.");
            var fdSampler = new SamplerOptions(Steps: o.SamplingSteps, CfgScale: 1.5);
            using var generated = Generate(model, Generation.BalancedLabels(o.FdSamples, data.ClassNames.Count), o.Seed + 1_000_000, fdSampler, o.Precision);
            w.WriteLine($"      {o.FdSamples} class-balanced samples for the FD ({o.SamplingSteps} Euler steps, CFG 1.5) in {Seconds(sw.Elapsed)}.");

            Stage(w, 7, "Evaluate");
            var probes = ProbeFeatures(trainSet, testSet, encoder.BaseEncoder.Channels, o.Seed);
            w.WriteLine($"      linear probe (ML.NET LbfgsMaximumEntropy on pooled features): base {probes.Base}, SVG {probes.Svg}.");
            var recon = AutoencoderTraining.Evaluate(encoder, decoder, data.Test, Math.Min(500, data.Test.Count), ConvBatch, spec.ImageSize, ResizeMode.Stretch);
            w.WriteLine($"      reconstruction: {recon}.");
            string reconPath = Path.Combine(o.OutputDirectory, "reconstructions.png");
            SaveReconstructions(encoder, decoder, data.Test, spec.ImageSize, reconPath, o.GridColumns);
            var (fd, fdReference) = FrechetDistances(generated, data, o.FdSamples, device);
            w.WriteLine($"      {fd}.");
            w.WriteLine($"      reference (real training images vs the same held-out images): FD = {fdReference.Distance:F2}.");

            string modelPath = loaded is not null ? ModelFolder(o.LoadPath!) : Path.Combine(o.OutputDirectory, "model");
            if (loaded is null) model.Save(modelPath);

            var result = new QuickstartResult(data.Description, encoder.BaseEncoder.Name,
                $"[{encoder.Channels}, {trainSet.GridHeight}, {trainSet.GridWidth}]", probes.Base, probes.Svg, recon, fd, fdReference,
                gridPath, reconPath, modelPath, data.ClassNames, clock.Elapsed);
            Stage(w, 0, null);
            PrintSummary(w, result, loaded is null);
            return result;
        }
        finally
        {
            if (model is not null && !ReferenceEquals(model, loaded)) model.Dispose();
            loaded?.Dispose();
            stage2?.Dispose();
            stage1?.Dispose();
            official?.Dispose();
        }
    }

    /// <summary>Stage 1 with the library's <see cref="AutoencoderTraining"/> (L1 loss; LPIPS and GAN off for lack of weights and time).</summary>
    public static AutoencoderTrainingResult TrainAutoencoder(QuickstartOptions o, SvgEncoder encoder, DataSplit data, int imageSize, Device device, TextWriter w,
                                                             ProcessGroup? group = null)
    {
        var decoderConfig = Architecture.Decoder(encoder.Channels, imageSize, imageSize / encoder.PatchSize);
        var residual = encoder.Config.Residual;
        w.WriteLine($"      residual ViT: {residual.NumLayers} layers, width {residual.HiddenDim}, patch {residual.PatchSize} → {residual.OutputDim} channels; " +
                    $"LDM decoder: width 32·[{string.Join(",", decoderConfig.ChMult)}], {decoderConfig.LatentResolution}→{imageSize} px.");
        w.WriteLine($"      {o.AutoencoderSteps} steps × batch {o.AutoencoderBatch}, Adam lr {Invariant(o.AutoencoderLearningRate)} betas (0.5, 0.9), L1 loss.");
        var bar = Bar(w);
        var options = new AutoencoderTrainingOptions
        {
            Steps = o.AutoencoderSteps,
            BatchSize = PerRank(o.AutoencoderBatch, group, "--ae-batch"),
            ProcessGroup = group,
            LearningRate = o.AutoencoderLearningRate,
            Seed = o.Seed,
            Decoder = decoderConfig,
            ImageSize = imageSize,
            Resize = ResizeMode.Stretch,
            CheckpointDirectory = Path.Combine(o.OutputDirectory, "checkpoints"),
            CheckpointEvery = 0,
            KeepLast = 1,
            Device = device,
            Progress = bar,
            EstimateAlignment = true,
            AlignmentImages = Math.Min(512, data.Train.Count),
        };
        return WithFreshStartOnMismatch(w, bar, options, opts => AutoencoderTraining.Train(encoder, data.Train, opts), (opts, resume) => opts with { Resume = resume });
    }

    /// <summary>Stage 2 with the library's <see cref="DiffusionTraining"/>.</summary>
    public static DiffusionTrainingResult TrainDiffusion(QuickstartOptions o, SvgDiTConfig config, DiffusionDataset data, Device device, TextWriter w,
                                                         ProcessGroup? group = null)
    {
        var bar = Bar(w);
        var options = new DiffusionTrainingOptions
        {
            Model = config,
            Precision = o.Precision,
            Steps = o.DiffusionSteps,
            BatchSize = PerRank(o.DiffusionBatch, group, "--batch"),
            ProcessGroup = group,
            LearningRate = o.DiffusionLearningRate,
            EmaDecay = o.EmaDecay,
            Seed = o.Seed,
            CheckpointDirectory = Path.Combine(o.OutputDirectory, "checkpoints"),
            CheckpointEvery = 0,
            KeepLast = 1,
            Device = device,
            Progress = bar,
        };
        return WithFreshStartOnMismatch(w, bar, options, opts => DiffusionTraining.Train(data, opts), (opts, resume) => opts with { Resume = resume });
    }

    /// <summary>
    /// Every rank's device and share of the work, sent to rank 0, which prints one line per rank: the rows it
    /// featurizes and its rows of each global training batch (null: the stage does not run).
    /// </summary>
    static void PrintRanks(TextWriter w, ProcessGroup group, Device device, DataSplit data, int? stage1Batch, int? stage2Batch)
    {
        int r = group.Rank;
        string Encodes(long count)
        {
            var (start, n) = ShardedFeaturization.RankRows(count, ConvBatch, r, group.WorldSize);
            return $"[{start}, {start + n})";
        }
        string Trains(int? batch, string stage, string option) => batch is int global && PerRank(global, group, option) is var b
            ? $", rows [{r * b}, {(r + 1) * b}) of each {stage} batch of {global}" : "";
        var lines = group.AllGatherText($"{group.Description}: device {device}; encodes training images {Encodes(data.Train.Count)} " +
                                        $"and held-out images {Encodes(data.Test.Count)}" +
                                        Trains(stage1Batch, "stage-1", "--ae-batch") + Trains(stage2Batch, "stage-2", "--batch"));
        foreach (var line in lines) w.WriteLine($"      {line}.");
        w.WriteLine("      Gradients are averaged through host memory (MPI.NET has no CUDA-aware path); rank 0 alone writes " +
                    "checkpoints, samples, figures and the model.");
    }

    /// <summary>The per-rank share of a global batch (the global batch, and so the trajectory, does not depend on the ranks).</summary>
    static int PerRank(int batch, ProcessGroup? group, string option)
    {
        int ranks = group?.WorldSize ?? 1;
        return batch % ranks == 0 ? batch / ranks
            : throw new ArgumentException($"{option} {batch} does not split over {ranks} ranks; use a multiple of {ranks}.");
    }

    /// <summary>Resumes finished or interrupted runs from the checkpoint folder; when its checkpoints belong to other
    /// settings, says so and trains afresh.</summary>
    static TResult WithFreshStartOnMismatch<TOptions, TResult>(TextWriter w, ConsoleProgressBar bar, TOptions options,
                                                               Func<TOptions, TResult> train, Func<TOptions, bool, TOptions> withResume)
    {
        try { return train(withResume(options, true)); }
        catch (TrainingResumeException e)
        {
            bar.Finish();
            w.WriteLine($"      the checkpoints in the output folder belong to other settings ({e.Message}); training afresh.");
            return train(withResume(options, false));
        }
    }

    /// <summary>
    /// The same encoder with <see cref="ResidualAlignment.Stored"/> statistics, so each image's latent is independent of
    /// its batch (the official batch-statistics alignment makes a row depend on the other rows). Shares the base.
    /// </summary>
    public static SvgEncoder WithStoredAlignment(SvgEncoder trained, AlignmentStatistics statistics)
    {
        var stored = new SvgEncoder(trained.BaseEncoder, trained.Config with { Alignment = ResidualAlignment.Stored }) { Statistics = statistics };
        var residual = trained.state_dict().Where(kv => !kv.Key.StartsWith("encoder.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
        StateDict.Load(stored, residual, strict: false, source: "trained SVG encoder");
        var device = trained.ResidualEncoder.parameters().First().device;
        stored.to(device);
        stored.eval();
        return stored;
    }

    /// <summary>The official autoencoder (DINOv3 ViT-S+/16 + residual ViT + decoder) from its checkpoint.</summary>
    public static SvgAutoencoder LoadOfficialAutoencoder(string path) => SvgAutoencoder.LoadOfficial(path);

    /// <summary>SVG latents of <paramref name="images"/> (cached), held in memory as tokens [N, h·w, C].</summary>
    public static FeatureSet Featurize(SvgEncoder encoder, LabeledImages images, int imageSize, FeatureCache? cache, ProcessGroup? group = null)
    {
        var streamed = DiffusionDataset.Encode(encoder, images, batchSize: ConvBatch, imageSize, ResizeMode.Stretch, cache, group);
        var tokens = streamed.ReadTokens(Enumerable.Range(0, (int)streamed.Count).Select(i => (long)i).ToArray()).DetachFromDisposeScope();
        var dataset = DiffusionDataset.FromFeatures(tokens, images.Labels, images.ClassNames.Count, identity: streamed.Identity);
        return new FeatureSet(dataset, tokens, images.Labels);
    }

    /// <summary>Linear probes on the pooled base channels and on the pooled SVG latent (all channels).</summary>
    public static (ProbeResult Base, ProbeResult Svg) ProbeFeatures(FeatureSet train, FeatureSet test, int baseChannels, long seed)
    {
        using var scope = NewDisposeScope();
        var trainPooled = train.Features.mean([1]);
        var testPooled = test.Features.mean([1]);
        var probeBase = LinearProbe.Run(trainPooled.narrow(1, 0, baseChannels), train.Labels, testPooled.narrow(1, 0, baseChannels), test.Labels, (int)seed);
        var probeSvg = LinearProbe.Run(trainPooled, train.Labels, testPooled, test.Labels, (int)seed);
        return (probeBase, probeSvg);
    }

    /// <summary>Samples and decodes one image per label (RGB [N, 3, H, W] in [0, 1], CPU).</summary>
    public static Tensor Generate(QuickstartModel model, IReadOnlyList<int> labels, long seed, SamplerOptions sampler,
                                  Svg.ML.Runtime.Precision precision = Svg.ML.Runtime.Precision.Fp32)
    {
        using var latents = Generation.SampleLatents(model.DiT, model.Normalizer, labels, seed, sampler, precision: precision);
        return Generation.Decode(model.Decoder, latents, ConvBatch);
    }

    /// <summary>
    /// FD between <paramref name="generated"/> and the held-out images, and the same FD for as many real training
    /// images (the value a perfect generator would get with these sample sizes), over ResNet18 features.
    /// </summary>
    public static (FrechetDistanceResult Fd, FrechetDistanceResult Reference) FrechetDistances(Tensor generated, DataSplit data, int count, Device device)
    {
        using var resnet = ResNet18.FromModelDirectory();
        resnet.to(device);
        int size = data.Test.Height;
        using var scope = NewDisposeScope();
        var real = FrechetEvaluation.Features(resnet, data.Test.Images(0, data.Test.Count, size, ResizeMode.Stretch), ConvBatch);
        var fake = FrechetEvaluation.Features(resnet, generated, ConvBatch);
        int refCount = Math.Min(count, data.Train.Count);
        var reference = FrechetEvaluation.Features(resnet, data.Train.Images(data.Train.Count - refCount, refCount, size, ResizeMode.Stretch), ConvBatch);
        return (FrechetEvaluation.Compute(resnet, fake, real), FrechetEvaluation.Compute(resnet, reference, real));
    }

    /// <summary>Writes held-out images (odd rows) above their reconstructions (even rows).</summary>
    public static void SaveReconstructions(SvgEncoder encoder, LdmDecoder decoder, LabeledImages test, int imageSize, string path, int columns)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int n = Math.Min(columns * 2, test.Count);
        var device = decoder.parameters().First().device;
        var x = test.Images(0, n, imageSize, ResizeMode.Stretch);
        var rec = Generation.Decode(decoder, encoder.Encode(x.to(device)).cpu(), ConvBatch);
        var rows = new List<Tensor>();
        for (int start = 0; start < n; start += columns)
        {
            int k = Math.Min(columns, n - start);
            rows.Add(x.narrow(0, start, k));
            rows.Add(rec.narrow(0, start, k));
        }
        ImagePng.SaveGrid(cat(rows, 0), columns, path, scale: Math.Max(1, 64 / imageSize));
    }

    /// <summary>The model folder: DIR itself, or DIR/model when DIR is an output folder.</summary>
    public static string ModelFolder(string path) =>
        File.Exists(Path.Combine(path, "manifest.json")) ? path : Path.Combine(path, "model");

    static void PrintSummary(TextWriter w, QuickstartResult r, bool trained)
    {
        w.WriteLine();
        w.WriteLine("──────────────────────────────── Summary ────────────────────────────────");
        w.WriteLine($"Data            {r.Data}");
        w.WriteLine($"Base encoder    {r.BaseEncoder} (frozen)");
        w.WriteLine($"SVG latent      {r.Latent} (base channels + 8 residual channels)");
        w.WriteLine($"Linear probe    base features {r.ProbeBase.Accuracy * 100:F1} % ({r.ProbeBase.Dimensions}-d) | SVG features {r.ProbeSvg.Accuracy * 100:F1} % ({r.ProbeSvg.Dimensions}-d)");
        w.WriteLine($"                ML.NET LbfgsMaximumEntropy on grid-averaged features, {r.ProbeSvg.TrainRows} train / {r.ProbeSvg.TestRows} held-out images");
        w.WriteLine($"Reconstruction  PSNR {r.Reconstruction.Psnr:F2} dB, SSIM {r.Reconstruction.Ssim:F3} ({r.Reconstruction.Images} held-out images)");
        w.WriteLine($"FD              {r.Fd.Distance:F2}  ({r.Fd.CountA} generated vs {r.Fd.CountB} held-out images; real-vs-real reference {r.FdReference.Distance:F2})");
        w.WriteLine($"                encoder: {r.Fd.EncoderName}");
        w.WriteLine($"Samples         {r.GridPath} (rows: {string.Join(", ", r.ClassNames)})");
        w.WriteLine($"Reconstructions {r.ReconstructionPath} (held-out rows above their reconstructions)");
        w.WriteLine(trained ? $"Model           {r.ModelPath} (reload: --load {r.ModelPath})" : $"Model           {r.ModelPath} (loaded)");
        w.WriteLine($"                ML.NET generator: {Path.Combine(r.ModelPath, QuickstartModel.GeneratorFileName)} (SvgModel.Load → SvgGenerator.GenerateImages)");
        w.WriteLine($"Time            {Seconds(r.Elapsed)}");
    }

    static ConsoleProgressBar Bar(TextWriter w) =>
        ReferenceEquals(w, Console.Out) ? new ConsoleProgressBar() : new ConsoleProgressBar(w, interactive: false, plainInterval: TimeSpan.FromSeconds(30));

    static Stopwatch? _stageClock;
    static TimeSpan _stageCpu;

    static void Stage(TextWriter w, int index, string? title)
    {
        var process = Process.GetCurrentProcess();
        if (_stageClock is not null && Environment.GetEnvironmentVariable("SVG_QUICKSTART_TIMINGS") == "1")
            w.WriteLine($"      (stage wall {_stageClock.Elapsed.TotalSeconds:F1} s, process CPU {(process.TotalProcessorTime - _stageCpu).TotalSeconds:F1} s)");
        _stageClock = Stopwatch.StartNew();
        _stageCpu = process.TotalProcessorTime;
        if (title is not null) w.WriteLine($"[{index}/{Stages}] {title}");
    }

    /// <summary>
    /// TorchSharp set-up with the <see cref="NativeTuning"/> settings (passive OpenMP threads, glibc keeping freed
    /// memory), applied before libtorch loads.
    /// </summary>
    public static void InitializeRuntime()
    {
        NativeTuning.PassiveOpenMpThreads();
        NativeTuning.KeepFreedMemory();
        TorchRuntime.EnsureInitialized();
    }

    static string Seconds(TimeSpan t) => t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes} min {t.Seconds} s" : $"{t.TotalSeconds:F1} s";

    static string Invariant(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}

/// <summary>SVG latents of a labelled image set, in memory: the training dataset view and the raw tokens [N, T, C].</summary>
/// <param name="Dataset">The stage-2 view of <paramref name="Features"/>.</param>
/// <param name="Features">Tokens [N, h·w, C] (owned: disposed with the set).</param>
/// <param name="Labels">Class of each row.</param>
public sealed record FeatureSet(DiffusionDataset Dataset, Tensor Features, IReadOnlyList<long> Labels) : IDisposable
{
    public long Count => Dataset.Count;
    public int Channels => Dataset.Channels;
    public int Tokens => Dataset.Tokens;
    public int GridHeight => Dataset.GridHeight;
    public int GridWidth => Dataset.GridWidth;
    public int NumClasses => Dataset.NumClasses;

    /// <inheritdoc/>
    public void Dispose() => Features.Dispose();
}
