using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Training;

namespace Svg.ML.Dense;

/// <summary>
/// Settings of a dense head trained on frozen features (<see cref="DenseHeadTraining"/>). Defaults follow the
/// mmsegmentation recipe for heads on ViT features: AdamW (β 0.9/0.999, weight decay 0.01), linear warm-up over 1500
/// steps from 1e-6 of the rate, then polynomial decay (power 1) to 0 at the last step; batch 16; learning rate 1e-3
/// (the backbone is frozen, so only the small head learns). Segmentation uses cross-entropy with ignore index 255;
/// depth uses SILog (λ 0.85) with the NYUv2 caps 1e-3..10 m.
/// </summary>
public sealed record DenseHeadTrainingOptions : TrainingOptions
{
    /// <summary>The defaults above.</summary>
    public DenseHeadTrainingOptions()
    {
        BatchSize = 16;
        LearningRate = 1e-3;
        Beta1 = 0.9;
        Beta2 = 0.999;
        WeightDecay = 0.01;
    }

    /// <summary>Segmentation or depth.</summary>
    public DenseTask Task { get; init; } = DenseTask.Segmentation;

    /// <summary>Linear probe or decoder.</summary>
    public DenseHeadKind Head { get; init; } = DenseHeadKind.Linear;

    /// <summary>Classes (segmentation; class indices 0..NumClasses−1).</summary>
    public int NumClasses { get; init; }

    /// <summary>Target value ignored by the segmentation loss and metrics.</summary>
    public long IgnoreIndex { get; init; } = DenseLosses.IgnoreIndex;

    /// <summary>Width of the decoder head.</summary>
    public int DecoderChannels { get; init; } = 128;

    /// <summary>Depth caps, metres: targets outside (MinDepth, MaxDepth) are invalid; the head predicts in (0, MaxDepth).</summary>
    public double MinDepth { get; init; } = DepthMetrics.DefaultMinDepth;

    /// <inheritdoc cref="MinDepth"/>
    public double MaxDepth { get; init; } = DepthMetrics.DefaultMaxDepth;

    /// <summary>SILog λ.</summary>
    public double SilogLambda { get; init; } = DenseLosses.SilogLambda;

    /// <summary>Linear warm-up steps (mmseg 1500); a run shorter than 10× this warms up over its first tenth instead.</summary>
    public int WarmupSteps { get; init; } = 1500;

    /// <summary>Learning-rate factor at step 0 of the warm-up (mmseg <c>warmup_ratio</c> 1e-6).</summary>
    public double WarmupRatio { get; init; } = 1e-6;

    /// <summary>Power of the polynomial decay (1: linear to 0).</summary>
    public double PolyPower { get; init; } = 1.0;

    /// <summary>The head structure for features with <paramref name="channels"/> channels.</summary>
    public DenseHeadConfig HeadConfig(int channels) =>
        new(Task, Head, channels, NumClasses, DecoderChannels, MaxDepth);

    /// <summary>
    /// The learning rate of 0-based step <paramref name="step"/> of <paramref name="totalSteps"/> (mmseg's poly schedule
    /// with linear warm-up): <c>poly = LR·(1 − step/total)^power</c>; during the warm-up (w steps)
    /// <c>lr = poly·(ratio + (1 − ratio)·step/w)</c>.
    /// </summary>
    public double LearningRateAt(long step, long totalSteps)
    {
        double poly = LearningRate * Math.Pow(1 - (double)step / totalSteps, PolyPower);
        long warm = EffectiveWarmup(totalSteps);
        return step < warm ? poly * (WarmupRatio + (1 - WarmupRatio) * step / warm) : poly;
    }

    /// <summary>Warm-up length for a run of <paramref name="totalSteps"/>: min(WarmupSteps, totalSteps / 10).</summary>
    public long EffectiveWarmup(long totalSteps) => Math.Min(WarmupSteps, totalSteps / 10);

    internal override void Validate()
    {
        base.Validate();
        if (Task == DenseTask.Segmentation && NumClasses < 2) throw new ArgumentException($"Segmentation needs NumClasses ≥ 2 (got {NumClasses}).");
        if (Task == DenseTask.Segmentation && IgnoreIndex is >= 0 && IgnoreIndex < NumClasses)
            throw new ArgumentException($"IgnoreIndex {IgnoreIndex} is a class index (NumClasses = {NumClasses}).");
        if (!(MinDepth > 0) || !(MaxDepth > MinDepth)) throw new ArgumentException($"Need 0 < MinDepth < MaxDepth (got {MinDepth}, {MaxDepth}).");
        if (WarmupSteps < 0 || WarmupRatio is < 0 or > 1 || !(PolyPower >= 0))
            throw new ArgumentException("WarmupSteps ≥ 0, WarmupRatio in [0, 1] and PolyPower ≥ 0 are required.");
    }

    /// <summary>Base settings plus head, loss, schedule, run length (the poly decay depends on it) and data.</summary>
    internal JsonObject TrajectoryJson(DenseHeadConfig head, DenseDataset data, long totalSteps)
    {
        var json = TrajectoryJson();
        json["head"] = JsonSerializer.SerializeToNode(head);
        json["ignore_index"] = IgnoreIndex;
        json["depth_caps"] = new JsonArray(MinDepth, MaxDepth);
        json["silog_lambda"] = SilogLambda;
        json["schedule"] = new JsonArray(WarmupSteps, WarmupRatio, PolyPower, totalSteps);
        json["data"] = data.Identity;
        json["data_count"] = data.Count;
        return json;
    }
}
