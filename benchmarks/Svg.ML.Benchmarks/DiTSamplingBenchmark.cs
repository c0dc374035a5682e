using System.Diagnostics;
using System.Text.Json.Nodes;
using Svg.ML.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Benchmarks;

/// <summary>
/// A full 25-step Euler sampling of SVG DiT-B with classifier-free guidance (scale 4, constant, time shift 0.15 — the
/// official <c>sample_svg.py</c> defaults) for a batch of 4 latents, through <see cref="Sampler"/>. Svg.ML evaluates the
/// conditional and unconditional branches in ONE forward of batch 2B per step (the official sampler makes two forwards
/// of batch B): 25 forwards of batch 8 here, the same FLOPs. Warm-up is a 1-step sampling run (same shapes). Throughput
/// in images/s (latents per second); steps/s and the median seconds per step (from the step hooks) are also reported.
/// </summary>
public sealed class DiTSamplingBenchmark : FigureBenchmark
{
    /// <inheritdoc/>
    public override string Name => "dit_sample";

    const string FigureName = "dit_b_sample_euler25_cfg4_b4";

    /// <inheritdoc/>
    public override IEnumerable<FigureSpec> Figures
    {
        get
        {
            yield return new FigureSpec(FigureName, "SVG DiT-B 25-step Euler sampling, CFG 4 constant, batch 4, images/s", o => Measure(o, 4));
        }
    }

    /// <summary>
    /// Options: <c>--sample-steps</c> (default 25; another value renames the figure, e.g. <c>..._euler2_...</c>, for smoke
    /// tests) and <c>--sample-iters</c> (timed runs of the heavy rule, default 1: one run already holds 25 forwards, and
    /// the per-step median is reported too).
    /// </summary>
    JsonObject Measure(BenchmarkOptions options, int batch)
    {
        int steps = options.Int("sample-steps", 25);
        string name = FigureName.Replace("euler25", $"euler{steps}", StringComparison.Ordinal);
        var rule = TimingRule.From(options) with { HeavyIters = options.Int("sample-iters", 1) };
        var config = SvgDiTConfig.B;
        var model = Models.Get("dit_b", () => new SvgDiT(config));
        model.eval();
        var sampler = new Sampler(model);
        var sampling = new SamplerOptions(Steps: steps, Method: SamplerMethod.Euler, CfgScale: 4, Guidance: GuidanceSchedule.Constant);
        var (z0, _, y) = DiTForwardBenchmark.Inputs(config, batch);
        using (z0) using (y)
        using (Tensor yNull = Sampler.NullLabels(y, config.NullClass))
        {
            var stepSeconds = new List<double>();
            var clock = Stopwatch.StartNew();
            double last = 0;
            var hooks = new SamplerHooks
            {
                StepStart = (i, _) =>
                {
                    double now = clock.Elapsed.TotalSeconds;
                    if (i > 0) stepSeconds.Add(now - last);
                    last = now;
                },
            };
            var m = Timing.Run($"dit-b sample b{batch}", rule,
                () => { clock.Restart(); last = 0; sampler.Sample(z0, y, yNull, sampling, hooks); },
                () => sampler.Sample(z0, y, yNull, sampling with { Steps = 1 }));
            var figure = Timing.Figure(name, "SVG DiT-B", batch, m, batch, "images/s", Stats.ParameterCount(model));
            figure["steps"] = sampling.Steps;
            figure["sampler"] = "euler, cfg 4 constant, shift 0.15; cond+uncond in one forward of batch 2B";
            figure["steps_per_s"] = Timing.Round(sampling.Steps / m.Median);
            if (stepSeconds.Count > 0) figure["step_median_s"] = Timing.Round(Stats.Median(stepSeconds));
            figure["warmup_kind"] = "1-step sampling run";
            return figure;
        }
    }
}
