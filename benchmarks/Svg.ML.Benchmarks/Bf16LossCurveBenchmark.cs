using System.Text.Json.Nodes;
using Svg.ML.Diffusion;
using Svg.ML.Runtime;
using Svg.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Benchmarks;

/// <summary>
/// The numerical effect of bf16 mixed precision on training (issue 9): the quickstart's tiny DiT (width 128, depth 4,
/// 4 heads) on synthetic latents (40 channels on a 4×4 grid, 10 classes: a fixed random pattern per class plus noise,
/// so the loss falls; the quickstart's own latents have 264 channels), trained twice from the same seed — float32, then bf16 with float32 master weights
/// (<see cref="DiffusionTrainingOptions.Precision"/>) — with the same data order and noise. Reports the mean loss per
/// window of steps for both and their relative difference. Options: <c>--curve-steps</c> (default 600),
/// <c>--curve-window</c> (default 50), <c>--curve-batch</c> (default 64).
/// </summary>
public sealed class Bf16LossCurveBenchmark : FigureBenchmark
{
    /// <inheritdoc/>
    public override string Name => "bf16_loss_curve";

    /// <inheritdoc/>
    public override IEnumerable<FigureSpec> Figures =>
        [new("bf16_loss_curve_tiny_dit", "tiny DiT loss curve, fp32 vs bf16 mixed precision, same seed", Measure)];

    static JsonObject Measure(BenchmarkOptions o)
    {
        int steps = o.Int("curve-steps", 600), window = o.Int("curve-window", 50), batch = o.Int("curve-batch", 64);
        var config = new SvgDiTConfig(InChannels: 40, HiddenSize: 128, Depth: 4, NumHeads: 4, NumClasses: 10, GridSize: 4);
        var g = new Generator(7);
        var labels = Enumerable.Range(0, 2000).Select(i => (long)(i % 10)).ToArray();
        using var means = randn([10, 40, 4, 4], generator: g);
        using var features = (means.index_select(0, tensor(labels)) + 0.5 * randn([2000, 40, 4, 4], generator: g)).DetachFromDisposeScope();
        var data = DiffusionDataset.FromFeatures(features, labels, 10);
        DiffusionTrainingOptions Options(Precision p) => new()
        {
            Model = config, Steps = steps, BatchSize = batch, LearningRate = 1e-3, EmaDecay = 0.995, Seed = 0, Precision = p,
        };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var fp32 = DiffusionTraining.Train(data, Options(Precision.Fp32));
        double fp32Seconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        using var bf16 = DiffusionTraining.Train(data, Options(Precision.Bf16));
        double bf16Seconds = clock.Elapsed.TotalSeconds;
        var rows = new JsonArray();
        double worst = 0;
        for (int start = 0; start < steps; start += window)
        {
            int n = Math.Min(window, steps - start);
            double a = fp32.LossHistory.Skip(start).Take(n).Average(), b = bf16.LossHistory.Skip(start).Take(n).Average();
            worst = Math.Max(worst, Math.Abs(b / a - 1));
            rows.Add(new JsonObject
            {
                ["steps"] = $"{start + 1}-{start + n}", ["fp32"] = Timing.Round(a), ["bf16"] = Timing.Round(b),
                ["relative_difference"] = Timing.Round(b / a - 1),
            });
            Console.Error.WriteLine($"  steps {start + 1}-{start + n}: fp32 {a:F5}  bf16 {b:F5}  ({b / a - 1:+0.00%;-0.00%})");
        }
        return new JsonObject
        {
            ["name"] = "bf16_loss_curve_tiny_dit",
            ["model"] = "DiT width 128, depth 4, 4 heads; 40×4×4 latents, 10 classes",
            ["steps"] = steps, ["batch"] = batch, ["window"] = window,
            ["windows"] = rows,
            ["max_relative_difference"] = Timing.Round(worst),
            ["fp32_seconds"] = Timing.Round(fp32Seconds), ["bf16_seconds"] = Timing.Round(bf16Seconds),
        };
    }
}
