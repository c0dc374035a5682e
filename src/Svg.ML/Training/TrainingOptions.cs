using System.Text.Json.Nodes;
using Svg.ML.Distributed;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// Settings shared by both training stages: length, batch, optimiser, seed, checkpoints, device, progress,
/// cancellation and logging. The stages' records (<see cref="AutoencoderTrainingOptions"/>,
/// <see cref="DiffusionTrainingOptions"/>) add their own settings and defaults.
/// </summary>
public abstract record TrainingOptions
{
    /// <summary>Total optimisation steps to reach (counting steps of resumed runs). Set this or <see cref="Epochs"/>.</summary>
    public long? Steps { get; init; }

    /// <summary>Total passes over the data (an epoch is ⌊N / BatchSize⌋ steps; the incomplete last batch is dropped,
    /// as the official loaders do). Set this or <see cref="Steps"/>.</summary>
    public int? Epochs { get; init; }

    /// <summary>Samples per step (smaller data sets use all samples in each step).</summary>
    public int BatchSize { get; init; }

    /// <summary>Learning rate (constant; the official recipes use no schedule).</summary>
    public double LearningRate { get; init; } = 1e-4;

    /// <summary>Adam β₁.</summary>
    public double Beta1 { get; init; }

    /// <summary>Adam β₂.</summary>
    public double Beta2 { get; init; }

    /// <summary>Adam ε.</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Decoupled weight decay (AdamW); 0 in both official recipes.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Seed of everything random in the run: initialisation, data order, noise (see <see cref="TrainingRandom"/>).</summary>
    public long Seed { get; init; }

    /// <summary>Where checkpoints are written (see <see cref="TrainingCheckpoint"/>); null disables them.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>A checkpoint every this many steps (0: only at the end and on cancellation). A final checkpoint is
    /// always written when <see cref="CheckpointDirectory"/> is set.</summary>
    public int CheckpointEvery { get; init; } = 1000;

    /// <summary>Checkpoints of the stage to keep in the directory, newest first (0: keep all).</summary>
    public int KeepLast { get; init; } = 3;

    /// <summary>
    /// True (default): when <see cref="CheckpointDirectory"/> holds a checkpoint of this stage, continue from the newest
    /// readable one — it must come from the same settings and data (else <see cref="TrainingResumeException"/>); only
    /// <see cref="Steps"/>/<see cref="Epochs"/>, the checkpoint cadence, the device and the callbacks may differ.
    /// False: start afresh and delete the stage's existing checkpoints in the directory.
    /// </summary>
    public bool Resume { get; init; } = true;

    /// <summary>Device to train on (null: CPU). Bitwise-exact resumption is guaranteed on the CPU.</summary>
    public Device? Device { get; init; }

    /// <summary>On CUDA, let float32 matmuls and convolutions use TF32 tensor cores (the official training setting;
    /// default true). Sets libtorch's process-wide switches when the run starts; ignored on the CPU
    /// (<see cref="Runtime.MathSettings.ConfigureTf32"/>).</summary>
    public bool AllowTf32 { get; init; } = true;

    /// <summary>Receives a <see cref="TrainingProgress"/> after every step (e.g. a <see cref="ConsoleProgressBar"/>).</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }

    /// <summary>
    /// Stops training after the current step: a checkpoint of that step is written (when checkpoints are enabled) and
    /// <see cref="TrainingCanceledException"/> (an <see cref="OperationCanceledException"/>) is thrown.
    /// </summary>
    public CancellationToken CancellationToken { get; init; }

    /// <summary>Receives informational messages (start, resume, checkpoints, evaluation).</summary>
    public Action<string>? Log { get; init; }

    /// <summary>
    /// Data-parallel training over the ranks of this group (null: one process). <see cref="BatchSize"/> is then per
    /// rank — the global batch is BatchSize × WorldSize, and N ranks follow the trajectory of one process with the
    /// global batch (<see cref="DataSharding"/>); gradients are averaged with <see cref="GradientAllReduce"/>. Every rank
    /// calls Train with the same options and data; rank 0 writes the checkpoints, the log and the progress; a
    /// checkpoint resumes only with the same number of ranks. <c>ProcessGroup.FromEnvironment()</c> detects an MPI launch.
    /// </summary>
    public ProcessGroup? ProcessGroup { get; init; }

    /// <summary>The settings that determine the training trajectory (hashed into checkpoints; excludes the run length,
    /// checkpointing, device and callbacks).</summary>
    internal virtual JsonObject TrajectoryJson() => new()
    {
        ["batch_size"] = BatchSize,
        ["learning_rate"] = LearningRate,
        ["beta1"] = Beta1,
        ["beta2"] = Beta2,
        ["epsilon"] = Epsilon,
        ["weight_decay"] = WeightDecay,
        ["seed"] = Seed,
    };

    /// <summary>Checks the shared settings.</summary>
    internal virtual void Validate()
    {
        if (Steps is null == Epochs is null)
            throw new ArgumentException("Set exactly one of Steps and Epochs.");
        if (Steps is <= 0) throw new ArgumentException($"Steps must be positive (got {Steps}).");
        if (Epochs is <= 0) throw new ArgumentException($"Epochs must be positive (got {Epochs}).");
        if (BatchSize <= 0) throw new ArgumentException($"BatchSize must be positive (got {BatchSize}).");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new ArgumentException($"LearningRate must be positive and finite (got {LearningRate}).");
        if (Beta1 is < 0 or >= 1 || Beta2 is < 0 or >= 1) throw new ArgumentException($"Betas must lie in [0, 1) (got {Beta1}, {Beta2}).");
        if (WeightDecay < 0) throw new ArgumentException("WeightDecay must be >= 0.");
        if (CheckpointEvery < 0 || KeepLast < 0) throw new ArgumentException("CheckpointEvery and KeepLast must be >= 0.");
    }
}
