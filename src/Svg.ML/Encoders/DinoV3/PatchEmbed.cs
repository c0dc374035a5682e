using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>
/// Image to patch tokens (dinov3 <c>layers/patch_embed.py::PatchEmbed</c>, <c>flatten_embedding=False</c>):
/// a Conv2d with kernel = stride = patch size, [B, C_in, H, W] → [B, H/p, W/p, D]. Sizes that are not multiples of
/// the patch size are floored by the convolution (the official code does not check them either).
/// Keys: <c>proj.weight</c>, <c>proj.bias</c>.
/// </summary>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    readonly Conv2d proj;
    readonly int _inChannels, _patchSize;

    /// <summary>Creates the patch embedding (PyTorch's Conv2d default initialisation; see <see cref="ResetParameters"/>).</summary>
    public PatchEmbed(int inChannels, int embedDim, int patchSize) : base(nameof(PatchEmbed))
    {
        _inChannels = inChannels;
        _patchSize = patchSize;
        proj = nn.Conv2d(inChannels, embedDim, kernel_size: patchSize, stride: patchSize);
        RegisterComponents();
    }

    /// <summary>[B, C_in, H, W] → [B, ⌊H/p⌋, ⌊W/p⌋, D] (row-major patch grid, channels last).</summary>
    public override Tensor forward(Tensor x)
    {
        using var conv = proj.forward(x);        // [B, D, h, w]
        return conv.permute(0, 2, 3, 1);          // [B, h, w, D] (same values as flatten(2).transpose(1, 2).reshape)
    }

    /// <summary>The official <c>reset_parameters</c>: weight and bias ~ U(-√k, √k), k = 1 / (C_in · p²).</summary>
    public void ResetParameters()
    {
        using var _ = no_grad();
        double bound = Math.Sqrt(1.0 / (_inChannels * _patchSize * _patchSize));
        nn.init.uniform_(proj.weight, -bound, bound);
        if (proj.bias is not null) nn.init.uniform_(proj.bias, -bound, bound);
    }
}
