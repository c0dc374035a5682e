using Svg.ML.Data;
using Svg.ML.Encoders;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.Quickstart;

/// <summary>
/// A frozen base encoder run on images enlarged to its own working size: images of <see cref="DefaultImageSize"/>
/// (e.g. 32 px Fashion-MNIST) are resized to <see cref="BaseInputSize"/> (e.g. 64 px for ResNet18) before the
/// encoder's own preprocessing, so the feature grid is <c>BaseInputSize / inner patch</c> cells and one cell covers
/// <see cref="PatchSize"/> = <c>DefaultImageSize / grid</c> pixels of the small image. This lets the residual encoder and
/// the decoder work at the data's native resolution while the base keeps the receptive field it was trained for.
/// The weights are the inner encoder's (<see cref="Module"/>); nothing is trained.
/// </summary>
public sealed class ScaledBaseEncoder : IFrozenEncoder
{
    /// <summary>Wraps <paramref name="inner"/>; <paramref name="imageSize"/> must be a multiple of the resulting grid.</summary>
    public ScaledBaseEncoder(IFrozenEncoder inner, int imageSize, int baseInputSize)
    {
        if (baseInputSize % inner.PatchSize != 0)
            throw new ArgumentException($"{inner.Name}: input size {baseInputSize} is not a multiple of its patch size {inner.PatchSize}.");
        int grid = baseInputSize / inner.PatchSize;
        if (grid <= 0 || imageSize % grid != 0)
            throw new ArgumentException($"Image size {imageSize} is not a multiple of the {grid}×{grid} grid {inner.Name} gives at {baseInputSize} px.");
        Inner = inner;
        DefaultImageSize = imageSize;
        BaseInputSize = baseInputSize;
        GridSize = grid;
    }

    /// <summary>The wrapped encoder.</summary>
    public IFrozenEncoder Inner { get; }

    /// <summary>The size images are resized to before <see cref="Inner"/> sees them.</summary>
    public int BaseInputSize { get; }

    /// <summary>Cells per side of the feature grid.</summary>
    public int GridSize { get; }

    /// <inheritdoc/>
    public string Name => $"{Inner.Name} at {BaseInputSize} px";

    /// <inheritdoc/>
    public int Channels => Inner.Channels;

    /// <inheritdoc/>
    public int PatchSize => DefaultImageSize / GridSize;

    /// <inheritdoc/>
    public int DefaultImageSize { get; }

    /// <inheritdoc/>
    public nn.Module Module => Inner.Module;

    /// <summary>RGB [B, 3, s, s] in [0, 1] → resized to <see cref="BaseInputSize"/> (bilinear) → the inner preprocessing.</summary>
    public Tensor Preprocess(Tensor rgb01)
    {
        using var scope = NewDisposeScope();
        var resized = ImageTensors.Resize(rgb01, BaseInputSize, BaseInputSize, ResizeMode.Stretch);
        return Inner.Preprocess(resized).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor EncodeGrid(Tensor input) => Inner.EncodeGrid(input);
}
