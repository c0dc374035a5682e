using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Autoencoder;

/// <summary>
/// The LDM convolutional decoder used by SVG (<c>ldm.modules.diffusionmodules.model.Decoder</c> with no timestep
/// embedding and no tanh): latent <c>z [B, z_channels, h, w]</c> → image <c>[B, out_ch, h·f, w·f]</c> with
/// <c>f = 2^(levels-1)</c>, in the official range (about [-1, 1], not clamped).
/// <code>
/// h = conv_in(z)
/// h = mid.block_2(mid.attn_1(mid.block_1(h)))
/// for level = L-1 … 0:  for i in 0..num_res_blocks: h = up[level].block[i](h); h = up[level].attn[i](h) (if any)
///                       if level ≠ 0: h = up[level].upsample(h)            (nearest ×2, then 3×3 conv)
/// x = conv_out(swish(norm_out(h)))
/// </code>
/// Parameter names are the official decoder keys without the checkpoint's <c>decoder.</c> prefix
/// (strip it with <see cref="Checkpoints.StateDict.WithPrefix"/>).
/// </summary>
public sealed class LdmDecoder : nn.Module<Tensor, Tensor>
{
    /// <summary>The configuration this decoder was built from.</summary>
    public LdmDecoderConfig Config { get; }

#pragma warning disable IDE1006 // official state_dict names
    readonly Conv2d conv_in;
    readonly LdmMiddle mid;
    readonly ModuleList<LdmUpLevel> up;
    readonly GroupNorm norm_out;
    readonly Conv2d conv_out;
#pragma warning restore IDE1006

    /// <summary>Builds a decoder with PyTorch-default (random) initialisation; load weights with <see cref="Checkpoints.StateDict.Load"/>.</summary>
    /// <param name="config">Decoder configuration (for the released model: <see cref="LdmDecoderConfig.Released"/>).</param>
    /// <param name="device">Where to create the parameters (default CPU); the <c>meta</c> device builds without memory.</param>
    public LdmDecoder(LdmDecoderConfig config, Device? device = null) : base(nameof(LdmDecoder))
    {
        TorchRuntime.EnsureInitialized();
        config.Validate();
        Config = config;
        int levels = config.NumResolutions;

        // Channels and resolution at the lowest level (the decoder's entry).
        int blockIn = config.Ch * config.ChMult[levels - 1];
        int currRes = config.LatentResolution;

        conv_in = nn.Conv2d(config.ZChannels, blockIn, 3, stride: 1, padding: 1, device: device);
        mid = new LdmMiddle(blockIn, config.Dropout, device);

        // The official builds levels from the top down and prepends each: up[i] is level i.
        var levelsTopDown = new List<LdmUpLevel>();
        for (int level = levels - 1; level >= 0; level--)
        {
            int blockOut = config.Ch * config.ChMult[level];
            var blocks = new List<LdmResnetBlock>();
            var attns = new List<LdmAttnBlock>();
            for (int i = 0; i <= config.NumResBlocks; i++)
            {
                blocks.Add(new LdmResnetBlock(blockIn, blockOut, config.Dropout, device));
                blockIn = blockOut;
                if (config.AttnResolutions.Contains(currRes)) attns.Add(new LdmAttnBlock(blockIn, device));
            }
            LdmUpsample? upsample = null;
            if (level != 0)
            {
                upsample = new LdmUpsample(blockIn, device);
                currRes *= 2;
            }
            levelsTopDown.Add(new LdmUpLevel(blocks, attns, upsample));
        }
        levelsTopDown.Reverse();
        up = nn.ModuleList(levelsTopDown.ToArray());

        norm_out = LdmNorm.Create(blockIn, device);
        conv_out = nn.Conv2d(blockIn, config.OutCh, 3, stride: 1, padding: 1, device: device);
        RegisterComponents();
    }

    /// <summary>Decodes <paramref name="z"/> <c>[B, z_channels, h, w]</c> to <c>[B, out_ch, h·f, w·f]</c>, f = <see cref="LdmDecoderConfig.UpsampleFactor"/>.</summary>
    public override Tensor forward(Tensor z)
    {
        if (z.dim() != 4 || z.shape[1] != Config.ZChannels)
            throw new ArgumentException($"LdmDecoder expects z [B, {Config.ZChannels}, h, w]; got [{string.Join(", ", z.shape)}].");
        using var scope = NewDisposeScope();
        Tensor h = conv_in.call(z);
        h = mid.call(h);
        for (int level = Config.NumResolutions - 1; level >= 0; level--)
            h = up[level].call(h);
        h = conv_out.call(LdmNorm.Swish(norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>The official <c>Normalize</c> (GroupNorm 32, eps 1e-6, affine) and <c>nonlinearity</c> (swish).</summary>
static class LdmNorm
{
    public static GroupNorm Create(int channels, Device? device)
    {
        var norm = nn.GroupNorm(LdmDecoderConfig.NormGroups, channels, eps: LdmDecoderConfig.NormEps, affine: true, device: device);
        // TorchSharp 0.107 leaves GroupNorm's affine parameters uninitialised (torch.empty): set PyTorch's ones / zeros.
        using (no_grad())
        {
            nn.init.ones_(norm.weight);
            nn.init.zeros_(norm.bias!);
        }
        return norm;
    }

    /// <summary>A 1×1 convolution with bias.</summary>
    public static Conv2d Conv1x1(int inChannels, int outChannels, Device? device) =>
        nn.Conv2d(inChannels, outChannels, (1, 1), stride: (1, 1), padding: (0, 0), device: device);

    /// <summary>swish(x) = x · σ(x), written as the official does (not the fused SiLU kernel).</summary>
    public static Tensor Swish(Tensor x) => x * torch.sigmoid(x);
}

/// <summary>
/// LDM <c>ResnetBlock</c> without timestep embedding:
/// <c>h = conv2(dropout(swish(norm2(conv1(swish(norm1(x))))))); return shortcut(x) + h</c>, where the shortcut is a
/// 1×1 conv (<c>nin_shortcut</c>) when the width changes and the identity otherwise.
/// </summary>
public sealed class LdmResnetBlock : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly GroupNorm norm1;
    readonly Conv2d conv1;
    readonly GroupNorm norm2;
    readonly Dropout dropout;
    readonly Conv2d conv2;
    readonly Conv2d? nin_shortcut;
#pragma warning restore IDE1006

    /// <summary>Creates a block mapping <paramref name="inChannels"/> to <paramref name="outChannels"/>.</summary>
    public LdmResnetBlock(int inChannels, int outChannels, double dropoutP = 0.0, Device? device = null) : base(nameof(LdmResnetBlock))
    {
        norm1 = LdmNorm.Create(inChannels, device);
        conv1 = nn.Conv2d(inChannels, outChannels, 3, stride: 1, padding: 1, device: device);
        norm2 = LdmNorm.Create(outChannels, device);
        dropout = nn.Dropout(dropoutP);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1, device: device);
        if (inChannels != outChannels)
            nin_shortcut = LdmNorm.Conv1x1(inChannels, outChannels, device);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();   // intermediates die with the block (autograd keeps what backward needs)
        Tensor h = conv1.call(LdmNorm.Swish(norm1.call(x)));
        h = conv2.call(dropout.call(LdmNorm.Swish(norm2.call(h))));
        Tensor shortcut = nin_shortcut is null ? x : nin_shortcut.call(x);
        return scope.MoveToOuter(shortcut + h);
    }
}

/// <summary>
/// LDM <c>AttnBlock</c>: single-head self-attention over the h·w positions with 1×1-conv projections,
/// <c>x + proj_out(softmax(qᵀk / √c) applied to v)</c>, computed with the official's op order (bmm, scale, softmax, bmm).
/// </summary>
public sealed class LdmAttnBlock : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly GroupNorm norm;
    readonly Conv2d q, k, v, proj_out;
#pragma warning restore IDE1006

    /// <summary>Creates an attention block over <paramref name="channels"/> channels.</summary>
    public LdmAttnBlock(int channels, Device? device = null) : base(nameof(LdmAttnBlock))
    {
        norm = LdmNorm.Create(channels, device);
        q = LdmNorm.Conv1x1(channels, channels, device);
        k = LdmNorm.Conv1x1(channels, channels, device);
        v = LdmNorm.Conv1x1(channels, channels, device);
        proj_out = LdmNorm.Conv1x1(channels, channels, device);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor hNorm = norm.call(x);
        long b = x.shape[0], c = x.shape[1], hh = x.shape[2], ww = x.shape[3];
        Tensor qs = q.call(hNorm).reshape(b, c, hh * ww).permute(0, 2, 1);   // [b, hw, c]
        Tensor ks = k.call(hNorm).reshape(b, c, hh * ww);                     // [b, c, hw]
        Tensor w = torch.bmm(qs, ks) * Math.Pow(c, -0.5);                     // w[b,i,j] = Σ_c q[b,i,c] k[b,c,j] / √c
        w = nn.functional.softmax(w, 2);
        Tensor vs = v.call(hNorm).reshape(b, c, hh * ww);                     // [b, c, hw]
        Tensor attended = torch.bmm(vs, w.permute(0, 2, 1)).reshape(b, c, hh, ww); // h[b,c,j] = Σ_i v[b,c,i] w[b,j,i]
        return scope.MoveToOuter(x + proj_out.call(attended));
    }
}

/// <summary>LDM <c>Upsample</c> with conv: nearest-neighbour ×2, then a 3×3 conv (<c>conv</c>).</summary>
public sealed class LdmUpsample : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly Conv2d conv;
#pragma warning restore IDE1006

    /// <summary>Creates the up-sampler for <paramref name="channels"/> channels.</summary>
    public LdmUpsample(int channels, Device? device = null) : base(nameof(LdmUpsample))
    {
        conv = nn.Conv2d(channels, channels, 3, stride: 1, padding: 1, device: device);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var up = nn.functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
        return conv.call(up);
    }
}

/// <summary>The decoder's middle: <c>block_1</c> → <c>attn_1</c> → <c>block_2</c> at the lowest resolution.</summary>
sealed class LdmMiddle : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly LdmResnetBlock block_1;
    readonly LdmAttnBlock attn_1;
    readonly LdmResnetBlock block_2;
#pragma warning restore IDE1006

    public LdmMiddle(int channels, double dropout, Device? device) : base("mid")
    {
        block_1 = new LdmResnetBlock(channels, channels, dropout, device);
        attn_1 = new LdmAttnBlock(channels, device);
        block_2 = new LdmResnetBlock(channels, channels, dropout, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor h) => block_2.call(attn_1.call(block_1.call(h)));
}

/// <summary>One up level (<c>up.N</c>): <c>block</c> (ResNet blocks), <c>attn</c> (empty or one per block), optional <c>upsample</c>.</summary>
sealed class LdmUpLevel : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly ModuleList<LdmResnetBlock> block;
    readonly ModuleList<LdmAttnBlock> attn;
    readonly LdmUpsample? upsample;
#pragma warning restore IDE1006

    public LdmUpLevel(IList<LdmResnetBlock> blocks, IList<LdmAttnBlock> attns, LdmUpsample? upsampler) : base("up")
    {
        block = nn.ModuleList(blocks.ToArray());
        attn = nn.ModuleList(attns.ToArray());
        upsample = upsampler;
        RegisterComponents();
    }

    public override Tensor forward(Tensor h)
    {
        for (int i = 0; i < block.Count; i++)
        {
            h = block[i].call(h);
            if (attn.Count > 0) h = attn[i].call(h);
        }
        return upsample is null ? h : upsample.call(h);
    }
}
