using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Dense;

/// <summary>
/// A light FPN-style decoder over a single-scale ViT map (the ViTDet "simple pyramid" with an FPN top-down path),
/// D = <see cref="DenseHeadConfig.DecoderChannels"/>:
/// <code>
/// x  = BatchNorm2d(C)(features)                                   [N, C, h, w]
/// p1 = Conv1×1(C→D)(x)                                            h×w   (lateral, identity scale)
/// p2 = ConvT2×2(C→D)(x)                                           2h×2w (lateral, ×2)
/// p4 = ConvT2×2(D→D)(GELU(ConvT2×2(C→D)(x)))                      4h×4w (lateral, ×4)
/// f  = block(up2(p1) + p2);  f = block(up2(f) + p4)               top-down sum, block = Conv3×3 + GroupNorm + ReLU
/// out = Conv1×1(D→OutChannels)(f)                                 4h×4w, then bilinear to the label size
/// </code>
/// GroupNorm instead of the FPN's SyncBN keeps small batches stable. The ViTDet max-pool level (½ scale) is left out:
/// at the small grids used here (4–16 patches a side) it carries almost no pixels.
/// </summary>
public sealed class DecoderHead : DenseHead
{
    readonly BatchNorm2d bn;
    readonly Conv2d lateral1;
    readonly ConvTranspose2d lateral2;
    readonly Sequential lateral4;
    readonly Sequential fuse2;
    readonly Sequential fuse4;
    readonly Conv2d conv_seg;

    /// <summary>Builds the head (see <see cref="DenseHead.Create"/>).</summary>
    public DecoderHead(DenseHeadConfig config) : base(nameof(DecoderHead), config)
    {
        int c = config.InChannels, d = config.DecoderChannels;
        bn = nn.BatchNorm2d(c);
        lateral1 = nn.Conv2d(c, d, 1);
        lateral2 = nn.ConvTranspose2d(c, d, 2, stride: 2);
        lateral4 = nn.Sequential(nn.ConvTranspose2d(c, d, 2, stride: 2), nn.GELU(), nn.ConvTranspose2d(d, d, 2, stride: 2));
        fuse2 = Block(d);
        fuse4 = Block(d);
        conv_seg = nn.Conv2d(d, config.OutChannels, 1);
        RegisterComponents();
        // Seen with TorchSharp 0.107: a fresh GroupNorm's bias can hold uninitialised memory (NaN in one build of
        // six); set the affine parameters to PyTorch's defaults explicitly.
        using var _ = no_grad();
        foreach (var gn in modules().OfType<GroupNorm>())
        {
            gn.weight!.fill_(1);
            gn.bias!.zero_();
        }
    }

    /// <summary>GroupNorm groups for <paramref name="channels"/>: 8, or fewer when 8 does not divide it.</summary>
    internal static int Groups(int channels)
    {
        for (int g = Math.Min(8, channels); g > 1; g--) if (channels % g == 0) return g;
        return 1;
    }

    static Sequential Block(int d) =>
        nn.Sequential(nn.Conv2d(d, d, 3, padding: 1, bias: false), nn.GroupNorm(Groups(d), d), nn.ReLU());

    /// <summary>Raw outputs <c>[N, OutChannels, 4h, 4w]</c>.</summary>
    public override Tensor forward(Tensor features)
    {
        CheckInput(features);
        using var scope = NewDisposeScope();
        var x = bn.forward(features);
        var f = lateral1.forward(x);
        f = fuse2.forward(Up2(f) + lateral2.forward(x));
        f = fuse4.forward(Up2(f) + lateral4.forward(x));
        return conv_seg.forward(f).MoveToOuterDisposeScope();
    }

    static Tensor Up2(Tensor t) =>
        nn.functional.interpolate(t, [t.shape[2] * 2, t.shape[3] * 2], mode: InterpolationMode.Bilinear, align_corners: false);
}
