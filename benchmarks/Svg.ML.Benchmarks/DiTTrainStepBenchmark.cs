using System.Text.Json.Nodes;
using Svg.ML.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Benchmarks;

/// <summary>
/// One SVG DiT training step, as the official <c>train.py</c> loop does it: <c>zero_grad</c>, the rectified-flow loss
/// (<see cref="RectifiedFlow.Loss"/>: noise, shifted time, label dropout 0.1, forward, MSE on the velocity half),
/// <c>backward</c>, AdamW step (lr 1e-4, betas (0.9, 0.999), weight decay 0). Train mode; S and B at batch 8 and 32.
/// Throughput in steps/s (images/s also reported).
/// </summary>
public sealed class DiTTrainStepBenchmark : FigureBenchmark
{
    /// <inheritdoc/>
    public override string Name => "dit_train_step";

    /// <inheritdoc/>
    public override IEnumerable<FigureSpec> Figures =>
        from size in new[] { ("s", SvgDiTConfig.S), ("b", SvgDiTConfig.B) }
        from b in new[] { 8, 32 }
        select new FigureSpec($"dit_{size.Item1}_train_step_b{b}",
                              $"SVG DiT-{size.Item1.ToUpperInvariant()} training step (loss + backward + AdamW), batch {b}, steps/s",
                              o => Measure(o, size.Item1, size.Item2, b));

    JsonObject Measure(BenchmarkOptions options, string key, SvgDiTConfig config, int batch)
    {
        // A fresh model per figure: the optimiser state (built here, outside any dispose scope) belongs to it.
        Models.Release();
        torch.manual_seed(1);
        using var model = new SvgDiT(config);
        model.train();
        using var optimizer = torch.optim.AdamW(model.parameters(), lr: 1e-4, beta1: 0.9, beta2: 0.999, weight_decay: 0);
        var flow = new RectifiedFlow(model);
        var (x, _, y) = DiTForwardBenchmark.Inputs(config, batch);
        using (x) using (y)
        {
            var m = Timing.Run($"dit-{key} train b{batch}", TimingRule.From(options), () =>
            {
                optimizer.zero_grad();
                using var loss = flow.Loss(x, y);
                loss.Loss.backward();
                optimizer.step();
            });
            var figure = Timing.Figure($"dit_{key}_train_step_b{batch}", $"SVG DiT-{key.ToUpperInvariant()}", batch, m, 1, "steps/s",
                                       Stats.ParameterCount(model));
            figure["images_per_s"] = Timing.Round(batch / m.Median);
            figure["optimizer"] = "AdamW lr 1e-4 betas (0.9,0.999) wd 0";
            return figure;
        }
    }
}
