namespace Svg.ML.Training;

/// <summary>
/// Training produced a non-finite loss or weights (NaN or ±∞) and was stopped. Nothing of the bad state was written:
/// <see cref="LastGoodCheckpoint"/> (when checkpoints are enabled) is the latest checkpoint with finite weights, from
/// which a run with other settings can resume.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception; the message names the step, the value, the last good checkpoint and remedies.</summary>
    public TrainingDivergedException(TrainingStage stage, long step, string what, double value, string? lastGoodCheckpoint)
        : base(Describe(stage, step, what, value, lastGoodCheckpoint))
    {
        Stage = stage;
        Step = step;
        Value = value;
        LastGoodCheckpoint = lastGoodCheckpoint;
    }

    /// <summary>The stage that diverged.</summary>
    public TrainingStage Stage { get; }

    /// <summary>The 1-based step whose loss (or resulting weights) was not finite.</summary>
    public long Step { get; }

    /// <summary>The offending value (NaN or ±∞).</summary>
    public double Value { get; }

    /// <summary>The newest checkpoint with finite weights, or null when none was written.</summary>
    public string? LastGoodCheckpoint { get; }

    static string Describe(TrainingStage stage, long step, string what, double value, string? checkpoint)
    {
        string hints = stage switch
        {
            TrainingStage.Diffusion =>
                "lower the learning rate; check that the features are finite and normalised (per-channel mean/std, " +
                "DiffusionTrainingOptions.NormalizeFeatures) and that the labels lie in [0, NumClasses)",
            TrainingStage.Segmentation or TrainingStage.Depth =>
                "lower the learning rate; check that the features are finite and that the targets are valid " +
                "(class indices in [0, NumClasses) or the ignore index; depths in metres)",
            _ => "lower the learning rate; check that the images are finite and in [0, 1]; with the GAN, start it later " +
                 "(DiscStart) or lower DiscWeight",
        };
        string resume = checkpoint is null
            ? "No checkpoint was written (set CheckpointDirectory to keep one)."
            : $"The last good checkpoint is '{checkpoint}'; it was not overwritten, and a run with Resume = true continues from it.";
        return $"{stage} training diverged at step {step}: {what} is {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}. " +
               $"{resume} Hints: {hints}.";
    }
}

/// <summary>
/// Training was cancelled through <see cref="TrainingOptions.CancellationToken"/>. It stopped after a complete step and
/// wrote a checkpoint of that step (<see cref="CheckpointPath"/>, when checkpoints are enabled); a run with
/// <c>Resume = true</c> continues from there exactly.
/// </summary>
public sealed class TrainingCanceledException : OperationCanceledException
{
    /// <summary>Creates the exception.</summary>
    public TrainingCanceledException(TrainingStage stage, long step, string? checkpointPath, CancellationToken token)
        : base($"{stage} training was cancelled after step {step}. " +
               (checkpointPath is null ? "No checkpoint was written (CheckpointDirectory is not set)."
                                       : $"Checkpoint: '{checkpointPath}' (resume with Resume = true)."), token)
    {
        Stage = stage;
        Step = step;
        CheckpointPath = checkpointPath;
    }

    /// <summary>The stage that was cancelled.</summary>
    public TrainingStage Stage { get; }

    /// <summary>Steps completed.</summary>
    public long Step { get; }

    /// <summary>The checkpoint written at cancellation, or null when checkpoints are disabled.</summary>
    public string? CheckpointPath { get; }
}

/// <summary>
/// A checkpoint to resume from belongs to another run: different settings or data (it lists the differences), another
/// stage, or an unreadable file.
/// </summary>
public sealed class TrainingResumeException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public TrainingResumeException(string checkpointPath, string problem)
        : base($"Cannot resume from '{checkpointPath}': {problem}")
    {
        CheckpointPath = checkpointPath;
    }

    /// <summary>The checkpoint that did not match.</summary>
    public string CheckpointPath { get; }
}
