using System.Text.Json;
using Svg.ML.Checkpoints;
using Svg.ML.Runtime;
using Svg.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Dense;

/// <summary>
/// Trains a dense head (<see cref="LinearHead"/> or <see cref="DecoderHead"/>) on frozen features:
/// <code>
/// each step: batch (features, target) in this epoch's order
///   out  = bilinear(head(features), target size)
///   loss = CE(out, target, ignore)                      segmentation
///        | SILog(ln MaxDepth + logsigmoid(out), target)  depth
///   lr   = warm-up + poly decay (DenseHeadTrainingOptions.LearningRateAt); AdamW step
/// </code>
/// Reproducible from the seed (initialisation and data order have their own streams, <see cref="TrainingRandom"/>).
/// Checkpoints (prefix <c>segmentation</c> or <c>depth</c>, <see cref="TrainingCheckpoint"/>) hold <c>model.*</c>, the
/// AdamW moments, the head configuration and the loss history; a resumed run continues the same trajectory.
/// </summary>
public static class DenseHeadTraining
{
    const string OptimizerPrefix = "optimizer";

    /// <summary>Trains a fresh head on <paramref name="data"/> or resumes the newest checkpoint in
    /// <see cref="TrainingOptions.CheckpointDirectory"/> (exceptions as <see cref="DiffusionTraining.Train(DiffusionDataset, DiffusionTrainingOptions)"/>).</summary>
    public static DenseHeadTrainingResult Train(DenseDataset data, DenseHeadTrainingOptions options)
    {
        TorchRuntime.EnsureInitialized();
        options.Validate();
        var config = options.HeadConfig(data.Channels);
        config.Validate();
        var stage = StageOf(options.Task);
        long batch = Math.Min(options.BatchSize, data.Count);
        long total = options.Steps ?? checked(options.Epochs!.Value * Math.Max(1, data.Count / batch));
        if (options.ProcessGroup is { WorldSize: > 1 } ranks)
            throw new NotSupportedException($"Dense heads train in one process (the run has {ranks.WorldSize} ranks): a head on frozen features is " +
                                            "small; featurize on several ranks (ShardedFeaturization) and train the head on rank 0.");
        var run = new TrainingRun(stage, options, options.TrajectoryJson(config, data, total), data.Count, options.BatchSize);
        var device = run.Device;

        var head = TrainingRandom.WithGlobalSeed(TrainingRandom.Derive(options.Seed, TrainingRandom.Init), () => DenseHead.Create(config));
        optim.Optimizer? optimizer = null;
        bool success = false;
        try
        {
            head.to(device);
            var trainable = head.named_parameters().ToList();
            string[] names = trainable.Select(p => p.name).ToArray();
            optimizer = optim.AdamW(trainable.Select(p => p.parameter), lr: options.LearningRate, beta1: options.Beta1,
                                    beta2: options.Beta2, eps: options.Epsilon, weight_decay: options.WeightDecay);
            using (var checkpoint = run.OpenResume())
            {
                if (checkpoint is not null)
                {
                    StateDict.Load(head, checkpoint.WithPrefix("model."), strict: true, checkpoint.Path);
                    OptimizerMoments.Import(optimizer, names, checkpoint.Tensors, OptimizerPrefix);
                }
            }
            var fixedOptimizer = optimizer;
            CheckpointSnapshot Snapshot()
            {
                var s = new CheckpointSnapshot();
                s.AddModule("model.", head);
                s.AddOptimizer(fixedOptimizer, names, OptimizerPrefix);
                s.State["head_config"] = JsonSerializer.SerializeToNode(config);
                s.State["data_identity"] = data.Identity;
                return s;
            }

            run.Start();
            head.train();
            for (long step = run.StartStep; step < run.TotalSteps; step++)
            {
                run.ThrowIfCanceled(step, Snapshot);
                var indices = run.BatchIndices(step);
                double lr = options.LearningRateAt(step, run.TotalSteps);
                foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
                float loss;
                using (var scope = NewDisposeScope())
                {
                    var features = data.ReadFeatures(indices).to(device);
                    var target = data.ReadTargets(indices).to(device);
                    optimizer.zero_grad();
                    var lossTensor = Loss(head, features, target, options);
                    loss = lossTensor.item<float>();
                    run.CheckFinite(step + 1, "the loss", loss);
                    lossTensor.backward();
                    optimizer.step();
                }
                run.Completed(step + 1, loss, lr, Snapshot);
            }
            head.eval();
            success = true;
            return new DenseHeadTrainingResult(head, run.Losses, run.LastCheckpoint, run.TotalSteps, run.StartStep, run.Elapsed);
        }
        finally
        {
            optimizer?.Dispose();
            if (!success) head.Dispose();
        }
    }

    /// <summary>The training loss of one batch: cross-entropy with ignore (segmentation) or SILog (depth), on the
    /// head's output upsampled to the target size.</summary>
    public static Tensor Loss(DenseHead head, Tensor features, Tensor target, DenseHeadTrainingOptions options)
    {
        using var scope = NewDisposeScope();
        var raw = head.Logits(features, target.shape[1], target.shape[2]);
        var loss = head.Config.Task == DenseTask.Segmentation
            ? DenseLosses.CrossEntropy(raw, target, options.IgnoreIndex)
            : DenseLosses.Silog(head.LogDepthFromRaw(raw).squeeze(1), target.to(raw.dtype), options.MinDepth, options.MaxDepth, options.SilogLambda);
        return loss.MoveToOuterDisposeScope();
    }

    internal static TrainingStage StageOf(DenseTask task) =>
        task == DenseTask.Segmentation ? TrainingStage.Segmentation : TrainingStage.Depth;

    /// <summary>Reads a dense-head training checkpoint (e.g. <see cref="TrainingCheckpoint.LatestPath"/>) into a
    /// result: the head (evaluation mode) and the loss history.</summary>
    public static DenseHeadTrainingResult LoadCheckpoint(string path, Device? device = null)
    {
        TorchRuntime.EnsureInitialized();
        using var checkpoint = TrainingCheckpoint.Load(path);
        if (checkpoint.Stage is not (TrainingStage.Segmentation or TrainingStage.Depth))
            throw new TrainingResumeException(path, $"it is a {checkpoint.Stage} checkpoint, not a dense-head one.");
        var config = checkpoint.State["head_config"]?.Deserialize<DenseHeadConfig>()
                     ?? throw new TrainingResumeException(path, "it has no head configuration.");
        var head = DenseHead.Create(config);
        try
        {
            StateDict.Load(head, checkpoint.WithPrefix("model."), strict: true, path);
            var losses = checkpoint.Get(TrainingCheckpoint.LossHistoryKey).to(ScalarType.Float32).data<float>().ToArray();
            if (device is not null) head.to(device);
            head.eval();
            return new DenseHeadTrainingResult(head, losses, path, checkpoint.Step, checkpoint.Step, TimeSpan.Zero);
        }
        catch
        {
            head.Dispose();
            throw;
        }
    }
}

/// <summary>The outcome of <see cref="DenseHeadTraining.Train"/>; owns the head (dispose it).</summary>
public sealed class DenseHeadTrainingResult : IDisposable
{
    internal DenseHeadTrainingResult(DenseHead head, IReadOnlyList<float> losses, string? checkpointPath, long steps,
                                     long resumedFromStep, TimeSpan elapsed)
    {
        Head = head; LossHistory = losses.ToArray(); CheckpointPath = checkpointPath;
        Steps = steps; ResumedFromStep = resumedFromStep; Elapsed = elapsed;
    }

    /// <summary>The trained head (evaluation mode).</summary>
    public DenseHead Head { get; }

    /// <summary>The loss of every step from step 1 (resumed runs included).</summary>
    public IReadOnlyList<float> LossHistory { get; }

    /// <summary>The final checkpoint, or null when checkpoints are disabled.</summary>
    public string? CheckpointPath { get; }

    /// <summary>Steps completed in total.</summary>
    public long Steps { get; }

    /// <summary>Steps already done when this run started (0 for a fresh run).</summary>
    public long ResumedFromStep { get; }

    /// <summary>Wall time of this run.</summary>
    public TimeSpan Elapsed { get; }

    /// <inheritdoc/>
    public void Dispose() => Head.Dispose();
}
