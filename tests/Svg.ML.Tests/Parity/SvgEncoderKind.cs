using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Encoders.DinoV3;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Parity;

/// <summary>
/// Golden kind "svg_encoder": the official <c>DinoDecoder.encode</c> with a DINOv3 from <c>config.dino_ctor</c>, the
/// residual ViT from <c>config.resvit</c>, <c>extra_vit_config</c> and <c>embed_dim</c>. Outputs <c>latent</c> =
/// encode(x), <c>latent_b1</c> = encode(x[:1]), <c>dino_patchtokens</c> and <c>h_vit_raw</c> = extra_vit(x).
/// </summary>
public sealed class SvgEncoderKind : IGoldenKind
{
    public string Kind => "svg_encoder";

    public Dictionary<string, Tensor> Run(GoldenCase golden)
    {
        var c = golden.Config;
        var dino = new DinoVisionTransformer(DinoV3Kind.FromOfficialKwargs(c["dino_ctor"]!.AsObject()));
        var extra = c["extra_vit_config"]!.AsObject();
        var residual = ResidualVitKind.ConfigFrom(c["resvit"]!.AsObject()) with { OutputDim = extra["output_dim"]!.GetValue<int>() };
        var config = new SvgEncoderConfig
        {
            Residual = residual,
            EmbedDim = c["embed_dim"]!.GetValue<int>(),
            MaskRatio = extra["mask_ratio"]?.GetValue<double>() ?? 0,
            Alignment = extra["use_outnorm"]?.GetValue<bool>() == true ? ResidualAlignment.BatchStatistics : ResidualAlignment.None,
        };
        var svg = new SvgEncoder(dino, config);
        svg.eval();
        StateDict.Load(svg, golden.Weights, strict: true, source: golden.Name);

        var x = golden.Inputs["x"];
        using var features = dino.ForwardFeatures(x);
        return new Dictionary<string, Tensor>
        {
            ["latent"] = svg.EncodeNormalized(x),
            ["latent_b1"] = svg.EncodeNormalized(x.narrow(0, 0, 1)),
            ["dino_patchtokens"] = features.XNormPatchTokens.clone(),
            ["h_vit_raw"] = svg.ResidualEncoder.forward(x),
        };
    }
}
