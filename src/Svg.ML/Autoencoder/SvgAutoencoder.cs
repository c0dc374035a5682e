using Svg.ML.Checkpoints;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Autoencoder;

/// <summary>
/// The SVG autoencoder (official <c>DinoDecoder</c>): the <see cref="SvgEncoder"/> (frozen base + residual encoder +
/// alignment) and the <see cref="LdmDecoder"/>. Its state dict has the official checkpoint layout — the encoder's keys
/// at the root (<c>encoder.*</c>, <c>extra_vit.*</c>, <c>mask_token</c>, <c>norm_vit.*</c>) and <c>decoder.*</c> —
/// so the released Lightning checkpoint loads strictly by name.
/// <code>
///   z     = Encode(x)        [B, C + 8, H/p, W/p]
///   x̂     = Decode(z)        clamp((decoder(z) + 1) / 2, 0, 1)   (the official decoder works in [-1, 1])
/// </code>
/// </summary>
public sealed class SvgAutoencoder : nn.Module
{
    /// <summary>The encoder half.</summary>
    public SvgEncoder Encoder { get; }

    /// <summary>The decoder half.</summary>
    public LdmDecoder Decoder { get; }

    /// <summary>Pairs an encoder and a decoder; the decoder's <c>z_channels</c> must equal the encoder's latent channels.</summary>
    public SvgAutoencoder(SvgEncoder encoder, LdmDecoder decoder) : base(nameof(SvgAutoencoder))
    {
        if (decoder.Config.ZChannels != encoder.Channels)
            throw new ArgumentException(
                $"The decoder expects {decoder.Config.ZChannels} latent channels but the encoder makes {encoder.Channels} " +
                $"({encoder.BaseEncoder.Name}: {encoder.BaseEncoder.Channels} + {encoder.Config.Residual.OutputDim} residual).");
        Encoder = encoder;
        Decoder = decoder;
        // The official layout: the encoder's own children and parameters at the root, the decoder under "decoder".
        foreach (var (name, child) in encoder.named_children()) register_module(name, child);
        foreach (var (name, p) in encoder.named_parameters(recurse: false)) register_parameter(name, p);
        foreach (var (name, b) in encoder.named_buffers(recurse: false)) register_buffer(name, b);
        register_module("decoder", decoder);
    }

    /// <summary>The released architecture: DINOv3 ViT-S+/16 base, released residual encoder and decoder (weights to load).</summary>
    public static SvgAutoencoder CreateReleased(Device? device = null)
    {
        var encoder = SvgEncoder.CreateReleased();
        if (device is not null) encoder.to(device);
        return new SvgAutoencoder(encoder, new LdmDecoder(LdmDecoderConfig.Released, device));
    }

    /// <summary>
    /// Builds the released architecture and loads the official autoencoder checkpoint
    /// (<c>svg_autoencoder_*.ckpt</c>, which also carries the DINOv3 weights) strictly. The training-loss weights
    /// (<c>loss.*</c>) are skipped. A checkpoint without <c>mask_token</c> builds the encoder with masking off.
    /// </summary>
    public static SvgAutoencoder LoadOfficial(string checkpointPath, PickleAllowList? allowList = null)
    {
        TorchRuntime.EnsureInitialized();
        var weights = OfficialCheckpoints.LoadSvgAutoencoder(checkpointPath, allowList);
        var config = SvgEncoderConfig.Released with { MaskRatio = weights.MaskToken is null ? -1 : SvgEncoderConfig.Released.MaskRatio };
        var encoder = new SvgEncoder(new Encoders.DinoV3.DinoVisionTransformer(Encoders.DinoV3.DinoV3Config.ViTSPlus16), config);
        var model = new SvgAutoencoder(encoder, new LdmDecoder(LdmDecoderConfig.Released));
        StateDict.Load(model, weights.All, strict: true, source: checkpointPath);
        model.eval();
        return model;
    }

    /// <summary>RGB images in [0, 1] → SVG latent (see <see cref="SvgEncoder.Encode"/>).</summary>
    public Tensor Encode(Tensor rgb01) => Encoder.Encode(rgb01);

    /// <summary>SVG latent [B, C, h, w] → RGB images in [0, 1].</summary>
    public Tensor Decode(Tensor latent)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(((Decoder.forward(latent) + 1) / 2).clamp(0, 1));
    }

    /// <summary>Training mode for the residual encoder and decoder; the frozen base stays as <see cref="SvgEncoder.train"/> leaves it.</summary>
    public override void train(bool on = true)
    {
        base.train(on);
        Encoder.train(on);
    }
}
