using System.Text.Json.Nodes;
using Svg.ML.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Benchmarks;

/// <summary>
/// SVG DiT forward (velocity prediction) for the S, B and XL presets (<see cref="SvgDiTConfig"/>: 392 input channels,
/// 256 tokens, 1000 classes, QK-norm, learned sigma; random weights, official init): <c>model(x, t, y)</c> with
/// x ~ N(0, 1) <c>[B, 256, 392]</c>, t ~ U(0, 1), random labels; eval mode, no_grad; batch 1 and 8. Throughput in
/// images/s (latent samples per second; tokens/s = 256 × images/s is also reported).
/// </summary>
public sealed class DiTForwardBenchmark : FigureBenchmark
{
    /// <inheritdoc/>
    public override string Name => "dit_forward";

    internal static readonly (string Key, SvgDiTConfig Config)[] Sizes = [("s", SvgDiTConfig.S), ("b", SvgDiTConfig.B), ("xl", SvgDiTConfig.XL)];

    /// <inheritdoc/>
    public override IEnumerable<FigureSpec> Figures =>
        from size in Sizes
        from b in new[] { 1, 8 }
        select new FigureSpec($"dit_{size.Key}_forward_b{b}", $"SVG DiT-{size.Key.ToUpperInvariant()} forward, 256 tokens x 392, batch {b}, images/s",
                              o => Measure(o, size.Key, size.Config, b));

    JsonObject Measure(BenchmarkOptions options, string key, SvgDiTConfig config, int batch)
    {
        var model = Models.Get("dit_" + key, () => new SvgDiT(config));
        model.eval();
        using var noGrad = torch.no_grad();
        var (x, t, y) = Inputs(config, batch);
        using (x) using (t) using (y)
        {
            var m = Timing.Run($"dit-{key} b{batch}", TimingRule.From(options), () => model.forward(x, t, y));
            var figure = Timing.Figure($"dit_{key}_forward_b{batch}", $"SVG DiT-{key.ToUpperInvariant()}", batch, m, batch, "images/s",
                                       Stats.ParameterCount(model));
            figure["tokens"] = config.NumTokens;
            figure["tokens_per_s"] = Timing.Round(batch * config.NumTokens / m.Median);
            return figure;
        }
    }

    /// <summary>Random latent tokens <c>[B, T, C]</c>, times in [0, 1) and labels in [0, num_classes).</summary>
    internal static (Tensor X, Tensor T, Tensor Y) Inputs(SvgDiTConfig config, int batch)
    {
        torch.manual_seed(2);
        return (torch.randn(batch, config.NumTokens, config.InChannels), torch.rand(batch),
                torch.randint(0, config.NumClasses, [batch], dtype: int64));
    }
}
