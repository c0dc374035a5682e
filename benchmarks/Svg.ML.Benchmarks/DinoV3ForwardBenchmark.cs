using System.Text.Json.Nodes;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Benchmarks;

/// <summary>
/// DINOv3 ViT-S+/16 (SVG's frozen encoder, <see cref="DinoV3Config.ViTSPlus16"/>, random weights) forward at 256×256:
/// <c>ForwardFeatures(x)</c> (the official <c>forward_features</c>: 256 patch + 1 class + 4 storage tokens, 12 blocks,
/// final norm), eval mode, no_grad; batch 1, 8 and 32; throughput in images/s.
/// </summary>
public sealed class DinoV3ForwardBenchmark : FigureBenchmark
{
    /// <inheritdoc/>
    public override string Name => "dinov3_forward";

    /// <inheritdoc/>
    public override IEnumerable<FigureSpec> Figures =>
        new[] { 1, 8, 32 }.Select(b => new FigureSpec(
            $"dinov3_vits16plus_forward_256_b{b}", $"DINOv3 ViT-S+/16 forward_features, 256x256, batch {b}, images/s", o => Measure(o, b)));

    JsonObject Measure(BenchmarkOptions options, int batch)
    {
        const int size = 256;
        var model = Models.Get("vits16plus", () => new DinoVisionTransformer(DinoV3Config.ViTSPlus16, size));
        model.eval();
        using var noGrad = torch.no_grad();
        using Tensor x = torch.randn(batch, 3, size, size);
        var m = Timing.Run($"dinov3 b{batch}", TimingRule.From(options), () =>
        {
            using var features = model.ForwardFeatures(x);
        });
        var figure = Timing.Figure($"dinov3_vits16plus_forward_256_b{batch}", "DINOv3 ViT-S+/16 @256", batch, m, batch, "images/s",
                                   Stats.ParameterCount(model));
        figure["image_size"] = size;
        figure["tokens_per_image"] = (size / 16) * (size / 16) + DinoV3Config.ViTSPlus16.PrefixTokens;
        figure["onednn"] = OneDnnConvolutionGuard.Status;
        return figure;
    }
}
