using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Dense;

/// <summary>
/// The linear probe of the DINOv2/DINOv3 dense protocol: <c>BatchNorm2d(C)</c> over the patch features, then a 1×1
/// convolution to the output channels, at the feature resolution; <see cref="DenseHead.Logits"/> upsamples
/// bilinearly to the label size.
/// </summary>
public sealed class LinearHead : DenseHead
{
    readonly BatchNorm2d bn;
    readonly Conv2d conv_seg;

    /// <summary>Builds the head (see <see cref="DenseHead.Create"/>).</summary>
    public LinearHead(DenseHeadConfig config) : base(nameof(LinearHead), config)
    {
        bn = nn.BatchNorm2d(config.InChannels);
        conv_seg = nn.Conv2d(config.InChannels, config.OutChannels, 1);
        RegisterComponents();
    }

    /// <summary>Raw outputs <c>[N, OutChannels, h, w]</c>.</summary>
    public override Tensor forward(Tensor features)
    {
        CheckInput(features);
        using var scope = NewDisposeScope();
        return conv_seg.forward(bn.forward(features)).MoveToOuterDisposeScope();
    }
}
