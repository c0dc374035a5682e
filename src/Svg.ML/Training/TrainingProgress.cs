namespace Svg.ML.Training;

/// <summary>The two SVG training stages, and the dense heads trained on their features.</summary>
public enum TrainingStage
{
    /// <summary>Stage 1: residual encoder + LDM decoder on the frozen base encoder (<see cref="AutoencoderTraining"/>).</summary>
    Autoencoder,

    /// <summary>Stage 2: the diffusion transformer on SVG features (<see cref="DiffusionTraining"/>).</summary>
    Diffusion,

    /// <summary>A segmentation head on frozen features (<see cref="Dense.DenseHeadTraining"/>).</summary>
    Segmentation,

    /// <summary>A depth head on frozen features (<see cref="Dense.DenseHeadTraining"/>).</summary>
    Depth,
}

/// <summary>
/// One progress report, sent after every optimisation step through <see cref="TrainingOptions.Progress"/>
/// (e.g. to a <see cref="ConsoleProgressBar"/>).
/// </summary>
/// <param name="Stage">Which training stage reports.</param>
/// <param name="Step">Steps completed so far (1 after the first step; counts steps of earlier runs when resumed).</param>
/// <param name="TotalSteps">Steps the run will reach.</param>
/// <param name="Epoch">Zero-based epoch of the step just completed.</param>
/// <param name="Loss">Loss of the step just completed.</param>
/// <param name="SmoothedLoss">Exponential moving average of the loss (bias-corrected, factor 0.98 per step).</param>
/// <param name="StepsPerSecond">Throughput over the recent steps of this run (0 until measurable).</param>
/// <param name="Eta">Estimated time to reach <see cref="TotalSteps"/>, null until measurable.</param>
/// <param name="LearningRate">Learning rate of the (main) optimiser.</param>
/// <param name="Elapsed">Wall time of this run (excludes earlier runs of a resumed training).</param>
/// <param name="Metrics">Stage-specific values of the step (e.g. <c>l1</c>, <c>lpips</c>, <c>g_loss</c>, <c>d_weight</c>, <c>d_loss</c>).</param>
public sealed record TrainingProgress(
    TrainingStage Stage,
    long Step,
    long TotalSteps,
    int Epoch,
    double Loss,
    double SmoothedLoss,
    double StepsPerSecond,
    TimeSpan? Eta,
    double LearningRate,
    TimeSpan Elapsed,
    IReadOnlyDictionary<string, double>? Metrics = null)
{
    /// <summary>Fraction of the run done, in [0, 1].</summary>
    public double Fraction => TotalSteps <= 0 ? 1 : Math.Clamp((double)Step / TotalSteps, 0, 1);

    /// <summary>True on the report of the last step.</summary>
    public bool IsLast => Step >= TotalSteps;
}
