using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Diffusion;

namespace Svg.ML.Training;

/// <summary>
/// Settings of stage 2, the diffusion transformer on SVG features (<see cref="DiffusionTraining"/>). Defaults are the
/// official recipe (<c>train_svg.py</c>, <c>rectified_flow.py</c>): AdamW, learning rate 1e-4, weight decay 0,
/// betas (0.9, 0.999), batch 256, EMA 0.9999 every step, class dropout 0.1, training time shift 0.4, per-channel
/// feature normalisation over the training features, no gradient clipping, fp32.
/// </summary>
public sealed record DiffusionTrainingOptions : TrainingOptions
{
    /// <summary>The official defaults (batch 256, betas (0.9, 0.999)).</summary>
    public DiffusionTrainingOptions()
    {
        BatchSize = 256;
        Beta1 = 0.9;
        Beta2 = 0.999;
    }

    /// <summary>
    /// The model (e.g. <see cref="SvgDiTConfig.XL"/>). Its <c>InChannels</c>, <c>GridSize</c> and <c>NumClasses</c>
    /// must match the data. Null: <see cref="SvgDiTConfig.S"/> sized to the data (channels, grid, classes).
    /// </summary>
    public SvgDiTConfig? Model { get; init; }

    /// <summary>Label dropout probability for classifier-free guidance; null keeps the model's
    /// <c>ClassDropoutProb</c> (0.1 in the presets).</summary>
    public double? ClassDropout { get; init; }

    /// <summary>Training time shift s of <c>t' = s·t / (1 + (s − 1)·t)</c> (official 0.4; ≤ 0 disables).</summary>
    public double TimeShift { get; init; } = RectifiedFlow.TrainingShift;

    /// <summary>EMA decay, applied after every step (official 0.9999).</summary>
    public double EmaDecay { get; init; } = 0.9999;

    /// <summary>Normalise features per channel with statistics over the training features (official); false trains
    /// on raw features. Ignored when <see cref="Normalizer"/> is set.</summary>
    public bool NormalizeFeatures { get; init; } = true;

    /// <summary>Fixed normalisation statistics (e.g. the official <c>dinov3_sp_stats.pt</c>) instead of fitting them.
    /// Not disposed by the trainer.</summary>
    public FeatureNormalizer? Normalizer { get; init; }

    /// <summary>Compute precision. <see cref="Runtime.Precision.Bf16"/>: forward and backward run in a bfloat16 copy of
    /// the model (<see cref="Runtime.ComputeCopy{T}"/>) while the weights, the EMA, the AdamW state and the loss stay
    /// float32 (mixed precision with float32 master weights). Default float32.</summary>
    public Runtime.Precision Precision { get; init; } = Runtime.Precision.Fp32;

    /// <summary>The model configuration used for <paramref name="data"/>: <see cref="Model"/> (checked against the data)
    /// or the S preset sized to it, with <see cref="ClassDropout"/> applied.</summary>
    public SvgDiTConfig ResolveModel(DiffusionDataset data)
    {
        var config = Model ?? SvgDiTConfig.S with
        {
            InChannels = data.Channels,
            GridSize = data.GridHeight,
            NumClasses = data.NumClasses,
        };
        if (ClassDropout is double p) config = config with { ClassDropoutProb = p };
        if (data.GridHeight != data.GridWidth)
            throw new ArgumentException($"The DiT needs a square latent grid; the data's is {data.GridHeight}×{data.GridWidth}.");
        if (config.InChannels != data.Channels)
            throw new ArgumentException($"The model takes {config.InChannels} channels per token but the features have {data.Channels}.");
        if (config.GridSize != data.GridHeight)
            throw new ArgumentException($"The model's grid is {config.GridSize}×{config.GridSize} but the features' is {data.GridHeight}×{data.GridWidth}.");
        if (config.NumClasses < data.NumClasses)
            throw new ArgumentException($"The model has {config.NumClasses} classes but the data {data.NumClasses}.");
        config.Validate();
        return config;
    }

    internal override void Validate()
    {
        base.Validate();
        if (EmaDecay is < 0 or > 1) throw new ArgumentException($"EmaDecay must lie in [0, 1] (got {EmaDecay}).");
        if (ClassDropout is < 0 or > 1) throw new ArgumentException($"ClassDropout must lie in [0, 1] (got {ClassDropout}).");
    }

    /// <summary>Base settings plus model, diffusion settings, normalisation and data.</summary>
    internal JsonObject TrajectoryJson(SvgDiTConfig model, DiffusionDataset data)
    {
        var json = TrajectoryJson();
        json["model"] = JsonSerializer.SerializeToNode(model);
        json["time_shift"] = TimeShift;
        json["ema_decay"] = EmaDecay;
        json["normalization"] = Normalizer is not null ? "fixed:" + TensorHash(Normalizer.Mean, Normalizer.Std)
                              : NormalizeFeatures ? "fit" : "none";
        json["data"] = data.Identity;
        json["data_count"] = data.Count;
        if (Precision != Runtime.Precision.Fp32) json["precision"] = Precision.ToString();   // absent for fp32: older hashes hold
        return json;
    }

    static string TensorHash(params TorchSharp.torch.Tensor[] tensors)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var t in tensors)
        {
            using var c = t.detach().cpu().contiguous();
            sha.AppendData(c.bytes);
        }
        return Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
    }
}
