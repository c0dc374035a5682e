using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Training;

namespace Svg.ML.Dense;

/// <summary>
/// Settings of a dense head trained on frozen features (<see cref="DenseHeadTraining"/>). The defaults are DINOv3's
/// published linear-probe recipe for ADE20K (<c>dinov3/eval/segmentation/configs/config-ade20k-linear-training.yaml</c>):
/// AdamW (β 0.9/0.999, weight decay 1e-3), learning rate 1e-3, batch 16 (2 per GPU × 8), warm-up over 1500 steps from
/// 1e-6 of the rate, cross-entropy with ignore index 255. After the warm-up, <see cref="Decay"/> = <see cref="DenseLrDecay.Poly"/>
/// (default) decays linearly to 0 at the last step (mmsegmentation's poly schedule); <see cref="DenseLrDecay.Cosine"/> is
/// DINOv3's <c>WarmupOneCycleLR</c> with <c>anneal_strategy: cos</c>; the two are identical during the warm-up.
/// DINOv3 trains 40 000 steps: set <see cref="TrainingOptions.Steps"/> (or Epochs) for your data. Depth uses SILog
/// (λ 0.85) with the NYUv2 caps 1e-3..10 m (DINOv3's NYU linear config trains with lr 3e-4, β2 0.99, weight decay
/// 1e-4: set those for a like-for-like depth run).
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
        WeightDecay = 1e-3;
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

    /// <summary>The decay after the warm-up: polynomial (<see cref="PolyPower"/>) or DINOv3's cosine.</summary>
    public DenseLrDecay Decay { get; init; } = DenseLrDecay.Poly;

    /// <summary>The head structure for features with <paramref name="channels"/> channels.</summary>
    public DenseHeadConfig HeadConfig(int channels) =>
        new(Task, Head, channels, NumClasses, DecoderChannels, MaxDepth);

    /// <summary>
    /// The learning rate of 0-based step <paramref name="step"/> of <paramref name="totalSteps"/> T with a warm-up of w
    /// steps: during the warm-up <c>lr = LR·(1 − step/T)·(ratio + (1 − ratio)·step/w)</c> (mmseg's poly with linear
    /// warm-up, and DINOv3's <c>WarmupOneCycleLR</c> alike); after it, poly: <c>LR·(1 − step/T)^power</c>, or cosine
    /// (DINOv3): <c>LR·(1 + cos(π·(step + 1)/T))/2</c>.
    /// </summary>
    public double LearningRateAt(long step, long totalSteps)
    {
        long warm = EffectiveWarmup(totalSteps);
        if (step < warm) return LearningRate * (1 - (double)step / totalSteps) * (WarmupRatio + (1 - WarmupRatio) * step / warm);
        return Decay == DenseLrDecay.Cosine
            ? LearningRate * (1 + Math.Cos(Math.PI * (step + 1) / totalSteps)) / 2
            : LearningRate * Math.Pow(1 - (double)step / totalSteps, PolyPower);
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
        json["schedule"] = new JsonArray(WarmupSteps, WarmupRatio, PolyPower, Decay.ToString(), totalSteps);
        json["data"] = data.Identity;
        json["data_count"] = data.Count;
        return json;
    }
}

/// <summary>The learning-rate decay of a dense head after its warm-up.</summary>
public enum DenseLrDecay
{
    /// <summary><c>LR·(1 − step/T)^power</c> (mmsegmentation's poly; power 1 = linear to 0).</summary>
    Poly,

    /// <summary><c>LR·(1 + cos(π·(step + 1)/T))/2</c> (DINOv3's linear-probe <c>WarmupOneCycleLR</c>, final rate 0).</summary>
    Cosine,
}
