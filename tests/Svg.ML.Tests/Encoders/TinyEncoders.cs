using Svg.ML.Autoencoder;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Encoders;

/// <summary>Small, fast configurations for unit tests (the golden cases cover the real widths).</summary>
static class TinyEncoders
{
    /// <summary>A 2-block DINOv3 (vits16plus recipe) 32 wide with 2 heads (head_dim 16 → 4 RoPE periods).</summary>
    public static DinoV3Config Dino => DinoV3Config.ViTSPlus16 with { Name = "tiny DINOv3", EmbedDim = 32, Depth = 2, NumHeads = 2 };

    /// <summary>A 1-layer residual ViT for 32×32 inputs (2×2 grid).</summary>
    public static ResidualEncoderConfig Residual => ResidualEncoderConfig.Released with
    {
        ImageSize = 32, NumLayers = 1, NumHeads = 2, HiddenDim = 32, MlpDim = 64,
    };

    /// <summary>Overwrites every parameter with N(0, 0.5²) (LayerScale 1e-5 would otherwise hide the blocks).</summary>
    public static T Randomized<T>(T module, long seed) where T : nn.Module
    {
        var generator = new Generator((ulong)seed, CPU);
        using var _ = no_grad();
        foreach (var p in module.parameters()) p.normal_(0, 0.5, generator);
        return module;
    }

    public static SvgEncoder Svg(SvgEncoderConfig? config = null, long seed = 1) =>
        Randomized(new SvgEncoder(new DinoVisionTransformer(Dino), config ?? new SvgEncoderConfig { Residual = Residual }), seed);

    /// <summary>Smooth-ish random RGB in [0, 1].</summary>
    public static Tensor Images(int batch, int height, int width, long seed)
    {
        var generator = new Generator((ulong)seed, CPU);
        return rand(new long[] { batch, 3, height, width }, generator: generator);
    }
}
