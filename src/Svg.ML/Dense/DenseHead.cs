using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Dense;

/// <summary>The two dense tasks.</summary>
public enum DenseTask
{
    /// <summary>Semantic segmentation: one logit per class and pixel, trained with cross-entropy (ignore index).</summary>
    Segmentation,

    /// <summary>Monocular depth: one channel, <c>depth = MaxDepth · sigmoid(x)</c> metres, trained with SILog.</summary>
    Depth,
}

/// <summary>The two head architectures.</summary>
public enum DenseHeadKind
{
    /// <summary>The linear-probe protocol (DINOv2/DINOv3): BatchNorm + 1×1 conv, bilinear upsampling (<see cref="LinearHead"/>).</summary>
    Linear,

    /// <summary>A light FPN-style decoder over the single-scale map (<see cref="DecoderHead"/>).</summary>
    Decoder,
}

/// <summary>
/// Structure of a dense head. <see cref="OutChannels"/> is the number of classes for segmentation and 1 for depth.
/// </summary>
/// <param name="Task">Segmentation or depth.</param>
/// <param name="Kind">Linear probe or decoder.</param>
/// <param name="InChannels">Channels of the feature map (C of C×h×w).</param>
/// <param name="NumClasses">Classes (segmentation); ignored for depth.</param>
/// <param name="DecoderChannels">Width of the decoder's convolutions (<see cref="DenseHeadKind.Decoder"/> only).</param>
/// <param name="MaxDepth">Largest depth the depth head can predict, metres (NYUv2: 10).</param>
public sealed record DenseHeadConfig(
    DenseTask Task,
    DenseHeadKind Kind,
    int InChannels,
    int NumClasses = 0,
    int DecoderChannels = 128,
    double MaxDepth = 10)
{
    /// <summary>Output channels: classes for segmentation, 1 for depth.</summary>
    [JsonIgnore]
    public int OutChannels => Task == DenseTask.Segmentation ? NumClasses : 1;

    /// <summary>Throws <see cref="ArgumentException"/> on an impossible configuration.</summary>
    public void Validate()
    {
        if (InChannels <= 0) throw new ArgumentException($"InChannels must be positive (got {InChannels}).");
        if (Task == DenseTask.Segmentation && NumClasses < 2)
            throw new ArgumentException($"Segmentation needs at least 2 classes (got NumClasses = {NumClasses}).");
        if (Kind == DenseHeadKind.Decoder && DecoderChannels <= 0)
            throw new ArgumentException($"DecoderChannels must be positive (got {DecoderChannels}).");
        if (!(MaxDepth > 0) || !double.IsFinite(MaxDepth)) throw new ArgumentException($"MaxDepth must be positive (got {MaxDepth}).");
    }
}

/// <summary>
/// A dense head on a frozen feature map <c>[N, C, h, w]</c>. <c>forward</c> gives raw outputs at the head's own
/// resolution (h×w for the linear head, 4h×4w for the decoder); <see cref="Logits"/> upsamples them bilinearly to the
/// label size, <see cref="PredictClasses"/> and <see cref="PredictDepth"/> turn them into class maps and metres.
/// </summary>
public abstract class DenseHead : nn.Module<Tensor, Tensor>
{
    private protected DenseHead(string name, DenseHeadConfig config) : base(name)
    {
        config.Validate();
        Config = config;
    }

    /// <summary>The structure.</summary>
    public DenseHeadConfig Config { get; }

    /// <summary>Builds the head of <paramref name="config"/> (fresh weights from torch's global generator; seed it, or
    /// build under <c>TrainingRandom.WithGlobalSeed</c>).</summary>
    public static DenseHead Create(DenseHeadConfig config) => config.Kind switch
    {
        DenseHeadKind.Linear => new LinearHead(config),
        DenseHeadKind.Decoder => new DecoderHead(config),
        _ => throw new ArgumentOutOfRangeException(nameof(config), config.Kind, "Unknown head kind."),
    };

    /// <summary>Raw outputs upsampled bilinearly (align_corners = false, as mmseg's <c>resize</c>) to
    /// <paramref name="height"/>×<paramref name="width"/>: <c>[N, OutChannels, H, W]</c>.</summary>
    public Tensor Logits(Tensor features, long height, long width)
    {
        var raw = forward(features);
        if (raw.shape[2] == height && raw.shape[3] == width) return raw;
        return nn.functional.interpolate(raw, [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
    }

    /// <summary>The class map <c>[N, H, W]</c> (int64) of a segmentation head.</summary>
    public Tensor PredictClasses(Tensor features, long height, long width)
    {
        RequireTask(DenseTask.Segmentation);
        using var scope = NewDisposeScope();
        return Logits(features, height, width).argmax(1).MoveToOuterDisposeScope();
    }

    /// <summary>The depth map <c>[N, H, W]</c> in metres of a depth head.</summary>
    public Tensor PredictDepth(Tensor features, long height, long width)
    {
        RequireTask(DenseTask.Depth);
        using var scope = NewDisposeScope();
        return DepthFromRaw(Logits(features, height, width)).squeeze(1).MoveToOuterDisposeScope();
    }

    /// <summary>Depth in metres from raw outputs: <c>MaxDepth · sigmoid(x)</c>.</summary>
    public Tensor DepthFromRaw(Tensor raw) => raw.sigmoid().mul(Config.MaxDepth);

    /// <summary>ln(depth) from raw outputs, computed stably as <c>ln MaxDepth + logsigmoid(x)</c> (for SILog).</summary>
    public Tensor LogDepthFromRaw(Tensor raw) => nn.functional.logsigmoid(raw).add(Math.Log(Config.MaxDepth));

    void RequireTask(DenseTask task)
    {
        if (Config.Task != task) throw new InvalidOperationException($"This is a {Config.Task} head, not a {task} head.");
    }

    private protected void CheckInput(Tensor features)
    {
        if (features.dim() != 4 || features.shape[1] != Config.InChannels)
            throw new ArgumentException(
                $"The head expects features [N, {Config.InChannels}, h, w]; got [{string.Join(", ", features.shape)}].");
    }
}
