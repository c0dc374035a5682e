using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Encoders;

/// <summary>
/// A frozen, pretrained image encoder whose spatial features are the base channels of the SVG latent
/// (DINOv3 in the paper; any frozen encoder is a user's choice, cf. the paper's Table 3).
/// Implemented directly by the <see cref="nn.Module"/> that holds the weights, so its parameter names stay the
/// official checkpoint keys.
/// </summary>
public interface IFrozenEncoder
{
    /// <summary>Names the encoder and its weights in reports, e.g. "DINOv3 ViT-S+/16".</summary>
    string Name { get; }

    /// <summary>Channels of the feature grid.</summary>
    int Channels { get; }

    /// <summary>Input pixels per feature cell (16 for a /16 ViT).</summary>
    int PatchSize { get; }

    /// <summary>The square input size the encoder is meant to run at (256 for SVG's DINOv3).</summary>
    int DefaultImageSize { get; }

    /// <summary>The module holding the weights (for device moves, eval mode and checkpoints).</summary>
    nn.Module Module { get; }

    /// <summary>RGB images in [0, 1], [B, 3, H, W] → this encoder's input (e.g. ImageNet mean/std normalisation).</summary>
    Tensor Preprocess(Tensor rgb01);

    /// <summary>Preprocessed images [B, 3, H, W] → feature grid [B, Channels, H / PatchSize, W / PatchSize].</summary>
    Tensor EncodeGrid(Tensor input);
}

/// <summary>Image-value conventions shared by the encoders.</summary>
public static class ImageNetNormalization
{
    public static readonly float[] Mean = { 0.485f, 0.456f, 0.406f };
    public static readonly float[] Std = { 0.229f, 0.224f, 0.225f };

    /// <summary>(x - mean) / std per channel, for [B, 3, H, W] RGB in [0, 1].</summary>
    public static Tensor Normalize(Tensor rgb01)
    {
        using var mean = tensor(Mean, device: rgb01.device).view(1, 3, 1, 1);
        using var std = tensor(Std, device: rgb01.device).view(1, 3, 1, 1);
        return (rgb01 - mean) / std;
    }

    /// <summary>Inverse of <see cref="Normalize"/>.</summary>
    public static Tensor Denormalize(Tensor x)
    {
        using var mean = tensor(Mean, device: x.device).view(1, 3, 1, 1);
        using var std = tensor(Std, device: x.device).view(1, 3, 1, 1);
        return x * std + mean;
    }
}
