using System.Text.Json.Nodes;
using Svg.ML.Autoencoder;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Benchmarks;

/// <summary>
/// The released SVG autoencoder's LDM decoder (<see cref="LdmDecoderConfig.Released"/>: ch 128, ch_mult [1,1,2,2,4],
/// 2 res blocks, attention at 16, 392 latent channels; ~43M parameters, random weights) forward:
/// z ~ N(0, 1) <c>[B, 392, 16, 16]</c> → <c>[B, 3, 256, 256]</c>; eval mode, no_grad; batch 1 and 4; images/s.
/// </summary>
public sealed class LdmDecoderForwardBenchmark : FigureBenchmark
{
    /// <inheritdoc/>
    public override string Name => "ldm_decoder_forward";

    /// <inheritdoc/>
    public override IEnumerable<FigureSpec> Figures =>
        new[] { 1, 4 }.Select(b => new FigureSpec(
            $"ldm_decoder_forward_b{b}", $"released LDM decoder forward, z [B,392,16,16] -> 256x256, batch {b}, images/s", o => Measure(o, b)));

    JsonObject Measure(BenchmarkOptions options, int batch)
    {
        var config = LdmDecoderConfig.Released;
        var model = Models.Get("ldm_decoder", () => new LdmDecoder(config));
        model.eval();
        using var noGrad = torch.no_grad();
        torch.manual_seed(2);
        using Tensor z = torch.randn(batch, config.ZChannels, config.LatentResolution, config.LatentResolution);
        var m = Timing.Run($"ldm decoder b{batch}", TimingRule.From(options), () => model.forward(z));
        var figure = Timing.Figure($"ldm_decoder_forward_b{batch}", "LDM decoder (released config)", batch, m, batch, "images/s",
                                   Stats.ParameterCount(model));
        figure["image_size"] = config.Resolution;
        figure["onednn"] = OneDnnConvolutionGuard.Status;
        return figure;
    }
}
