using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Checkpoints;
using Svg.ML.Diffusion;
using Svg.ML.Distributed;
using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// Stage 2: trains an <see cref="SvgDiT"/> with rectified flow on SVG features (official <c>train_svg.py</c>):
/// <code>
/// x ← (features − mean) / std                         per-channel feature normalisation (fitted on the data)
/// each step: batch (x, y) in this epoch's order
///   loss = RectifiedFlow.Loss(x, y, shift 0.4)        z0 ~ N(0, I), t ~ U(0, 1) shifted, label dropout 0.1
///   AdamW step (lr 1e-4, wd 0, betas (0.9, 0.999)), no clipping     (bf16: forward/backward in a bf16 copy,
///                                                                     the step on the float32 master weights)
///   ema ← 0.9999·ema + 0.0001·model
/// </code>
/// Reproducible from <see cref="TrainingOptions.Seed"/>: initialisation, data order (a permutation per epoch) and the
/// loss noise (one explicit generator) have their own streams (<see cref="TrainingRandom"/>). Checkpoints
/// (<see cref="TrainingCheckpoint"/>, prefix <c>diffusion</c>) hold <c>model.*</c>, <c>ema.*</c>, the AdamW moments
/// (<c>optimizer.*</c>), the noise generator state (<c>rng.noise</c>), the normaliser (<c>normalizer.mean|std</c>) and
/// the loss history; resuming continues bitwise identically on the same device. The noise is drawn on the CPU from one
/// CPU generator (<see cref="DeviceRandom"/>) and moved to the device: identical on every device.
/// </summary>
public static class DiffusionTraining
{
    const string OptimizerPrefix = "optimizer";

    /// <summary>
    /// Trains a fresh model on <paramref name="data"/> (or resumes the newest checkpoint in
    /// <see cref="TrainingOptions.CheckpointDirectory"/>). Throws <see cref="TrainingDivergedException"/> on a
    /// non-finite loss or weights, <see cref="TrainingCanceledException"/> on cancellation, and
    /// <see cref="TrainingResumeException"/> when the checkpoint belongs to other settings or data.
    /// </summary>
    public static DiffusionTrainingResult Train(DiffusionDataset data, DiffusionTrainingOptions options)
    {
        TorchRuntime.EnsureInitialized();
        options.Validate();
        var config = options.ResolveModel(data);
        var run = new TrainingRun(TrainingStage.Diffusion, options, options.TrajectoryJson(config, data), data.Count, options.BatchSize);
        var device = run.Device;

        // Modules are built outside any dispose scope (a scope would take their weights).
        var (model, shadow) = TrainingRandom.WithGlobalSeed(TrainingRandom.Derive(options.Seed, TrainingRandom.Init),
                                                           () => (new SvgDiT(config), new SvgDiT(config)));
        FeatureNormalizer? normalizer = null;
        Generator? noise = null;
        ComputeCopy<SvgDiT>? compute = null;
        optim.Optimizer? optimizer = null;
        GradientAllReduce? reducer = null;
        bool success = false;
        try
        {
            model.to(device);
            shadow.to(device);
            var ema = new Ema<SvgDiT>(model, shadow, options.EmaDecay);
            var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
            string[] names = trainable.Select(p => p.name).ToArray();
            optimizer = optim.AdamW(trainable.Select(p => p.parameter), lr: options.LearningRate, beta1: options.Beta1,
                                    beta2: options.Beta2, eps: options.Epsilon, weight_decay: options.WeightDecay);
            noise = TrainingRandom.NoiseGenerator(options.Seed);
            reducer = run.GradientReducer(trainable.Select(p => p.parameter));

            using (var checkpoint = run.OpenResume())
            {
                if (checkpoint is not null)
                {
                    StateDict.Load(model, checkpoint.WithPrefix("model."), strict: true, checkpoint.Path);
                    StateDict.Load(shadow, checkpoint.WithPrefix("ema."), strict: true, checkpoint.Path);
                    OptimizerMoments.Import(optimizer, names, checkpoint.Tensors, OptimizerPrefix);
                    TrainingRandom.SetState(noise, checkpoint.Get("rng.noise"));
                    normalizer = new FeatureNormalizer(checkpoint.Get("normalizer.mean"), checkpoint.Get("normalizer.std"));
                }
            }
            if (normalizer is null)
            {
                if (options.Normalizer is { } given) normalizer = new FeatureNormalizer(given.Mean, given.Std);
                else if (options.NormalizeFeatures)
                {
                    run.Log($"Fitting the per-channel feature normalisation over {data.Count} samples…");
                    normalizer = data.FitNormalizer();
                }
                else normalizer = FeatureNormalizer.Identity(data.Channels);
            }
            if (normalizer.Channels != data.Channels)
                throw new ArgumentException($"The feature normaliser has {normalizer.Channels} channels but the features {data.Channels}.");
            CheckNormalizer(normalizer);

            if (options.Precision != Precision.Fp32)
                compute = new ComputeCopy<SvgDiT>(model, () => TrainingRandom.WithGlobalSeed(0, () => new SvgDiT(config)),
                                                  options.Precision.ComputeType(), device);
            var flow = new RectifiedFlow(compute?.Module ?? model);
            var fixedNormalizer = normalizer;
            var fixedNoise = noise;
            var fixedOptimizer = optimizer;
            CheckpointSnapshot Snapshot()
            {
                var s = new CheckpointSnapshot();
                s.AddModule("model.", model);
                s.AddModule("ema.", shadow);
                s.AddOptimizer(fixedOptimizer, names, OptimizerPrefix);
                s.AddOwned(new Dictionary<string, Tensor>
                {
                    ["rng.noise"] = TrainingRandom.GetState(fixedNoise),
                    ["normalizer.mean"] = fixedNormalizer.Mean.clone(),
                    ["normalizer.std"] = fixedNormalizer.Std.clone(),
                });
                s.State["model_config"] = JsonSerializer.SerializeToNode(config);
                s.State["data_identity"] = data.Identity;
                return s;
            }

            run.Start();
            model.train();
            compute?.Module.train();
            for (long step = run.StartStep; step < run.TotalSteps; step++)
            {
                run.ThrowIfCanceled(step, Snapshot);
                var indices = run.BatchIndices(step);

                float loss;
                using (var scope = NewDisposeScope())
                {
                    var x = normalizer.Normalize(data.ReadTokens(indices).to(device));   // normalised on the device
                    var y = data.ReadLabels(indices).to(device);
                    optimizer.zero_grad();
                    compute?.PullWeights();                         // bf16: master weights → the compute copy
                    var shard = run.Group.WorldSize == 1 ? null   // several ranks: this rank's rows of the global batch's noise
                        : DataSharding.RankNoise([run.EffectiveBatchSize, .. x.shape[1..]], x.dtype, device, config.ClassDropoutProb > 0,
                                                 noise, run.Group.Rank, run.Group.WorldSize);
                    using var result = flow.Loss(x, y, options.TimeShift, shard, generator: noise);
                    loss = run.AgreeLoss(step + 1, "the loss", result.Loss.item<float>());   // before any update: the weights stay good
                    result.Loss.backward();
                    compute?.PushGradients();                       // bf16 gradients → the float32 master's
                    reducer?.Average();                             // several ranks: average the float32 gradients
                    optimizer.step();
                }
                ema.Update();
                run.Completed(step + 1, loss, options.LearningRate, Snapshot);
            }
            model.eval();
            if (reducer is not null)
                run.Log($"All-reduce: {reducer.Elapsed.TotalMilliseconds / Math.Max(1, reducer.Calls):F2} ms per step over {reducer.Calls} steps.");
            success = true;
            return new DiffusionTrainingResult(model, shadow, normalizer, config, run.Losses, run.LastCheckpoint,
                                               run.TotalSteps, run.StartStep, run.Elapsed);
        }
        finally
        {
            optimizer?.Dispose();
            reducer?.Dispose();
            noise?.Dispose();
            compute?.Dispose();
            if (!success)
            {
                model.Dispose();
                shadow.Dispose();
                normalizer?.Dispose();
            }
        }
    }

    /// <summary>Rejects statistics that would turn every batch into NaN/∞: non-finite values (the features hold NaN or
    /// ∞) or a zero standard deviation (a constant channel).</summary>
    static void CheckNormalizer(FeatureNormalizer normalizer)
    {
        using var scope = NewDisposeScope();
        var mean = normalizer.Mean.flatten();
        var std = normalizer.Std.flatten();
        var bad = (mean.isfinite().logical_not() | std.isfinite().logical_not()).nonzero();
        if (bad.numel() > 0)
            throw new InvalidDataException(
                $"The feature statistics are not finite (channel {bad[0, 0].item<long>()}): the features contain NaN or infinite values. Clean the data before training.");
        var zero = (std <= 0).nonzero();
        if (zero.numel() > 0)
            throw new InvalidDataException(
                $"Feature channel {zero[0, 0].item<long>()} is constant (std 0), so normalising it divides by zero. " +
                "Supply DiffusionTrainingOptions.Normalizer or set NormalizeFeatures = false.");
    }

    /// <summary>Trains on in-memory features <c>[N, C, h, w]</c> or tokens <c>[N, T, C]</c> with int64 labels.</summary>
    public static DiffusionTrainingResult Train(Tensor features, Tensor labels, int numClasses, DiffusionTrainingOptions options) =>
        Train(DiffusionDataset.FromFeatures(features, labels, numClasses), options);

    /// <summary>
    /// Reads a stage-2 training checkpoint (e.g. the newest one: <see cref="TrainingCheckpoint.LatestPath"/>) into a
    /// result: the model and EMA weights (eval mode), the normaliser, the configuration and the loss history.
    /// </summary>
    public static DiffusionTrainingResult LoadCheckpoint(string path, Device? device = null)
    {
        TorchRuntime.EnsureInitialized();
        using var checkpoint = TrainingCheckpoint.Load(path);
        if (checkpoint.Stage != TrainingStage.Diffusion)
            throw new TrainingResumeException(path, $"it is a {checkpoint.Stage} checkpoint, not a diffusion one.");
        var config = checkpoint.State["model_config"]?.Deserialize<SvgDiTConfig>()
                     ?? throw new TrainingResumeException(path, "it has no model configuration.");
        var model = new SvgDiT(config);
        var ema = new SvgDiT(config);
        try
        {
            StateDict.Load(model, checkpoint.WithPrefix("model."), strict: true, path);
            StateDict.Load(ema, checkpoint.WithPrefix("ema."), strict: true, path);
            var normalizer = new FeatureNormalizer(checkpoint.Get("normalizer.mean"), checkpoint.Get("normalizer.std"));
            var losses = checkpoint.Get(TrainingCheckpoint.LossHistoryKey).to(ScalarType.Float32).data<float>().ToArray();
            if (device is not null) { model.to(device); ema.to(device); }
            model.eval();
            ema.eval();
            return new DiffusionTrainingResult(model, ema, normalizer, config, losses, path, checkpoint.Step, checkpoint.Step, TimeSpan.Zero);
        }
        catch
        {
            model.Dispose();
            ema.Dispose();
            throw;
        }
    }
}

/// <summary>The outcome of <see cref="DiffusionTraining.Train(DiffusionDataset, DiffusionTrainingOptions)"/>; owns
/// the models and the normaliser (dispose it).</summary>
public sealed class DiffusionTrainingResult : IDisposable
{
    internal DiffusionTrainingResult(SvgDiT model, SvgDiT emaModel, FeatureNormalizer normalizer, SvgDiTConfig config,
                                     IReadOnlyList<float> losses, string? checkpointPath, long steps, long resumedFromStep, TimeSpan elapsed)
    {
        Model = model; EmaModel = emaModel; Normalizer = normalizer; Config = config;
        LossHistory = losses.ToArray(); CheckpointPath = checkpointPath; Steps = steps; ResumedFromStep = resumedFromStep; Elapsed = elapsed;
    }

    /// <summary>The trained weights (evaluation mode).</summary>
    public SvgDiT Model { get; }

    /// <summary>The EMA weights — the ones to sample with (evaluation mode).</summary>
    public SvgDiT EmaModel { get; }

    /// <summary>The feature normalisation used in training (apply <c>Denormalize</c> to samples before decoding).</summary>
    public FeatureNormalizer Normalizer { get; }

    /// <summary>The model configuration.</summary>
    public SvgDiTConfig Config { get; }

    /// <summary>The loss of every step from step 1 (resumed runs included).</summary>
    public IReadOnlyList<float> LossHistory { get; }

    /// <summary>The final checkpoint, or null when checkpoints are disabled.</summary>
    public string? CheckpointPath { get; }

    /// <summary>Steps completed in total.</summary>
    public long Steps { get; }

    /// <summary>Steps that were already done when this run started (0 for a fresh run).</summary>
    public long ResumedFromStep { get; }

    /// <summary>Wall time of this run.</summary>
    public TimeSpan Elapsed { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        Model.Dispose();
        EmaModel.Dispose();
        Normalizer.Dispose();
    }
}
