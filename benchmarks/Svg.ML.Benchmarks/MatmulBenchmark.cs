using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Benchmarks;

/// <summary>
/// fp32 GEMM throughput: <c>torch.mm(a, b)</c> with a, b random <c>[n, n]</c> (n = <c>--matmul-n</c>, default 2048);
/// throughput = 2·n³ / median seconds, in GFLOP/s. The ceiling every model figure is measured against.
/// </summary>
public sealed class MatmulBenchmark : FigureBenchmark
{
    /// <inheritdoc/>
    public override string Name => "matmul";

    /// <inheritdoc/>
    public override IEnumerable<FigureSpec> Figures
    {
        get
        {
            yield return new FigureSpec("matmul_fp32_2048", "fp32 matmul [2048,2048]x[2048,2048] (torch.mm), GFLOP/s", o => Measure(o, 2048));
        }
    }

    static JsonObject Measure(BenchmarkOptions options, int defaultN)
    {
        int n = options.Int("matmul-n", defaultN);
        torch.manual_seed(1);
        using Tensor a = torch.randn(n, n);
        using Tensor b = torch.randn(n, n);
        var m = Timing.Run($"matmul {n}", TimingRule.From(options), () => torch.mm(a, b));
        double gflop = 2.0 * n * n * (double)n / 1e9;
        var figure = Timing.Figure("matmul_fp32_2048", $"mm {n}x{n}x{n}", 1, m, gflop, "GFLOP/s", 0);
        figure["n"] = n;
        figure["gflop_per_iter"] = Timing.Round(gflop);
        return figure;
    }
}
