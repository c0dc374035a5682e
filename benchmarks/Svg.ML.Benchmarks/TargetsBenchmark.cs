using System.Text.Json.Nodes;
using Svg.ML.Diffusion;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Benchmarks;

/// <summary>
/// Issue 9's three figures on any device and precision, with model-FLOP utilisation (MFU):
/// <list type="bullet">
/// <item><c>target_dit_xl_train_step_b32</c>: SVG DiT-XL/1 training step (rectified-flow loss, backward, AdamW) at batch
///   32 — bf16: forward/backward in a bf16 <see cref="ComputeCopy{T}"/>, AdamW on the float32 master (as training does);</item>
/// <item><c>target_dit_b_sample_euler25_cfg4_b16</c>: DiT-B 25-step Euler sampling with CFG 4 (one forward of 2B per step);</item>
/// <item><c>target_dinov3_vits16plus_256_b64</c>: DINOv3 ViT-S+/16 <c>forward_features</c> at 256 px, batch 64.</item>
/// </list>
/// Options: <c>--device cpu|cuda[:N]</c> (default cpu), <c>--precision fp32|bf16</c> (default fp32), <c>--tf32 on|off</c>
/// (CUDA fp32 only; default on), <c>--peak-tflops X</c> (the MFU denominator), and for small smoke runs
/// <c>--train-config S|B|XL</c>, <c>--train-batch</c>, <c>--sample-batch</c>, <c>--sample-steps</c>, <c>--dino-batch</c>
/// (other values rename the figure). Random weights; every timed iteration ends with a CUDA synchronisation.
/// FLOPs (multiply–add = 2): forward = 2·T·Σ(per-token matmul weights) + 2·Σ(per-image matmul weights) + 4·L·T²·D
/// (QKᵀ and AV); training step = 3 × forward; sampling = steps × forward(2B). Peak: on CUDA the H200's dense figures
/// (bf16 989, TF32 494.5, fp32 66.9 TFLOP/s) unless <c>--peak-tflops</c>; on the CPU the measured 2048³ matmul rate
/// in the same dtype.
/// </summary>
public sealed class TargetsBenchmark : FigureBenchmark
{
    /// <inheritdoc/>
    public override string Name => "targets";

    /// <inheritdoc/>
    public override IEnumerable<FigureSpec> Figures =>
    [
        new("target_dit_xl_train_step_b32", "SVG DiT-XL/1 training step, batch 32 (--device, --precision), steps/s + MFU", TrainStep),
        new("target_dit_b_sample_euler25_cfg4_b16", "SVG DiT-B 25-step CFG sampling, batch 16, images/s + MFU", Sample),
        new("target_dinov3_vits16plus_256_b64", "DINOv3 ViT-S+/16 forward_features 256 px, batch 64, images/s + MFU", Dino),
    ];

    sealed record Setup(Device Device, Precision Precision, bool Tf32, double PeakTflops, string PeakSource);

    Setup? _setup;

    Setup Resolve(BenchmarkOptions o)
    {
        if (_setup is not null) return _setup;
        var device = TorchRuntime.ParseDevice(o.Get("device") ?? "cpu");
        var precision = (o.Get("precision") ?? "fp32").ToLowerInvariant() switch
        {
            "fp32" => Precision.Fp32,
            "bf16" => Precision.Bf16,
            var p => throw new ArgumentException($"--precision {p}: use fp32 or bf16."),
        };
        bool tf32 = (o.Get("tf32") ?? "on") != "off";
        MathSettings.ConfigureTf32(device, tf32);
        double peak; string source;
        if (o.Get("peak-tflops") is { } given) (peak, source) = (double.Parse(given, System.Globalization.CultureInfo.InvariantCulture), "--peak-tflops");
        else if (device.type == DeviceType.CUDA)
            (peak, source) = precision == Precision.Bf16 ? (989.0, "H200 bf16 dense") : tf32 ? (494.5, "H200 TF32 dense") : (66.9, "H200 fp32");
        else (peak, source) = (MeasuredCpuPeak(precision.ComputeType()), $"measured 2048³ {precision} matmul on this CPU");
        Console.Error.WriteLine($"targets: device {device}, precision {precision}, TF32 {(device.type == DeviceType.CUDA ? tf32 : "n/a")}, peak {peak:F3} TFLOP/s ({source})");
        return _setup = new Setup(device, precision, tf32, peak, source);
    }

    static double MeasuredCpuPeak(ScalarType dtype)
    {
        const int n = 2048;
        var g = new Generator(1);
        using var a = randn([n, n], generator: g).to(dtype);
        using var b = randn([n, n], generator: g).to(dtype);
        var m = Timing.Run($"peak matmul {dtype}", new TimingRule(1, 3, 1.0, 5, 1), () => mm(a, b));
        return 2.0 * n * n * n / m.Median / 1e12;
    }

    /// <summary>Forward FLOPs of <paramref name="model"/> for <paramref name="batch"/> inputs of <paramref name="tokens"/>
    /// tokens: matmul weights of modules named <c>adaLN_modulation</c>/<c>t_embedder</c> count once per input, every
    /// other 2-D (linear) or 4-D (patch convolution) weight once per token; embedding tables are lookups, not matmuls.</summary>
    internal static double ForwardFlops(nn.Module model, long batch, long tokens, int attentionLayers, long attentionDim)
    {
        double perToken = 0, perImage = 0;
        foreach (var (name, module) in model.named_modules())
        {
            if (name.Length == 0 || name.Contains("embedding", StringComparison.Ordinal)) continue;
            foreach (var (pname, p) in module.named_parameters(recurse: false))
            {
                if (pname != "weight" || p.dim() is not (2 or 4)) continue;
                double macs = p.numel();   // out·in (linear) or out·in·k·k (convolution, per output position)
                if (name.Contains("adaLN_modulation", StringComparison.Ordinal) || name.Contains("t_embedder", StringComparison.Ordinal)) perImage += macs;
                else perToken += macs;
            }
        }
        return batch * (2 * tokens * perToken + 2 * perImage + 4.0 * attentionLayers * tokens * tokens * attentionDim);
    }

    JsonObject Finish(JsonObject figure, Setup s, Measurement m, double flopsPerIteration)
    {
        double tflops = flopsPerIteration / m.Median / 1e12;
        figure["device"] = s.Device.ToString();
        figure["dtype"] = s.Precision == Precision.Bf16 ? "bf16 compute, fp32 master" : "fp32";
        figure["precision"] = s.Precision.ToString().ToLowerInvariant();
        figure["tf32"] = s.Device.type == DeviceType.CUDA && s.Precision == Precision.Fp32 && s.Tf32;
        figure["seconds_per_iter"] = Timing.Round(m.Median);
        figure["tflop_per_iter"] = Timing.Round(flopsPerIteration / 1e12);
        figure["achieved_tflops"] = Timing.Round(tflops);
        figure["peak_tflops"] = Timing.Round(s.PeakTflops);
        figure["peak_source"] = s.PeakSource;
        figure["mfu"] = Timing.Round(tflops / s.PeakTflops);
        return figure;
    }

    static Action Synced(Device device, Action body) => () =>
    {
        body();
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    };

    static SvgDiTConfig DiTPreset(string name) => name.ToUpperInvariant() switch
    {
        "S" => SvgDiTConfig.S, "B" => SvgDiTConfig.B, "XL" => SvgDiTConfig.XL,
        _ => throw new ArgumentException($"--train-config {name}: use S, B or XL."),
    };

    /// <summary>A fresh DiT of <paramref name="config"/> on the device (fp32 master) and, for bf16, its compute copy.</summary>
    static (SvgDiT Master, ComputeCopy<SvgDiT>? Copy) BuildDiT(SvgDiTConfig config, Setup s)
    {
        torch.manual_seed(1);
        var model = new SvgDiT(config);
        model.to(s.Device);
        var copy = s.Precision == Precision.Fp32 ? null
            : new ComputeCopy<SvgDiT>(model, () => new SvgDiT(config), s.Precision.ComputeType(), s.Device);
        return (model, copy);
    }

    JsonObject TrainStep(BenchmarkOptions o)
    {
        var s = Resolve(o);
        Models.Release();
        string key = (o.Get("train-config") ?? "XL").ToLowerInvariant();
        int batch = o.Int("train-batch", 32);
        var config = DiTPreset(key);
        var (model, copy) = BuildDiT(config, s);
        using (model) using (copy)
        {
            var compute = copy?.Module ?? model;
            model.train(); compute.train();
            using var optimizer = optim.AdamW(model.parameters(), lr: 1e-4, beta1: 0.9, beta2: 0.999, weight_decay: 0);
            var flow = new RectifiedFlow(compute);
            using var noise = new Generator(3);
            var (x0, _, y0) = DiTForwardBenchmark.Inputs(config, batch);
            using var x = x0.to(s.Device);
            using var y = y0.to(s.Device);
            x0.Dispose(); y0.Dispose();
            var m = Timing.Run($"dit-{key} train b{batch} {s.Precision}", TimingRule.From(o), Synced(s.Device, () =>
            {
                optimizer.zero_grad();
                copy?.PullWeights();
                using var loss = flow.Loss(x, y, generator: noise);
                loss.Loss.backward();
                copy?.PushGradients();
                optimizer.step();
            }));
            var figure = Timing.Figure($"target_dit_{key}_train_step_b{batch}", $"SVG DiT-{key.ToUpperInvariant()}/1", batch, m, 1, "steps/s",
                                       Stats.ParameterCount(model));
            return Finish(figure, s, m, 3 * ForwardFlops(model, batch, config.NumTokens, config.Depth, config.HiddenSize));
        }
    }

    JsonObject Sample(BenchmarkOptions o)
    {
        var s = Resolve(o);
        Models.Release();
        int batch = o.Int("sample-batch", 16), steps = o.Int("sample-steps", 25);
        var config = SvgDiTConfig.B;
        var (model, copy) = BuildDiT(config, s);
        using (model) using (copy)
        {
            var compute = copy?.Module ?? model;
            compute.eval();
            var sampler = new Sampler(compute);
            var options = new SamplerOptions(Steps: steps, Method: SamplerMethod.Euler, CfgScale: 4, Guidance: GuidanceSchedule.Constant);
            var (z, _, labels) = DiTForwardBenchmark.Inputs(config, batch);
            using var z0 = z.to(s.Device);
            using var y = labels.to(s.Device);
            z.Dispose(); labels.Dispose();
            using var yNull = Sampler.NullLabels(y, config.NullClass);
            var m = Timing.Run($"dit-b sample b{batch} {s.Precision}", TimingRule.From(o) with { HeavyIters = 1 },
                               Synced(s.Device, () => sampler.Sample(z0, y, yNull, options)),
                               Synced(s.Device, () => sampler.Sample(z0, y, yNull, options with { Steps = 1 })));
            var figure = Timing.Figure($"target_dit_b_sample_euler{steps}_cfg4_b{batch}", "SVG DiT-B", batch, m, batch, "images/s",
                                       Stats.ParameterCount(model));
            figure["steps"] = steps;
            return Finish(figure, s, m, steps * ForwardFlops(model, 2 * batch, config.NumTokens, config.Depth, config.HiddenSize));
        }
    }

    JsonObject Dino(BenchmarkOptions o)
    {
        var s = Resolve(o);
        Models.Release();
        const int size = 256;
        int batch = o.Int("dino-batch", 64);
        var config = DinoV3Config.ViTSPlus16;
        torch.manual_seed(1);
        using var model = new DinoVisionTransformer(config, size);
        model.to(s.Device);
        model.eval();
        using var copy = s.Precision == Precision.Fp32 ? null
            : new ComputeCopy<DinoVisionTransformer>(model, () => new DinoVisionTransformer(config, size), s.Precision.ComputeType(), s.Device);
        var compute = copy?.Module ?? model;
        compute.eval();
        using var noGrad = no_grad();
        var g = new Generator(4);
        using var x = DeviceRandom.Randn([batch, 3, size, size], g, s.Device, s.Precision.ComputeType());
        var m = Timing.Run($"dinov3 b{batch} {s.Precision}", TimingRule.From(o), Synced(s.Device, () =>
        {
            using var features = compute.ForwardFeatures(x);
        }));
        long tokens = (size / config.PatchSize) * (size / config.PatchSize) + config.PrefixTokens;
        var figure = Timing.Figure($"target_dinov3_vits16plus_256_b{batch}", "DINOv3 ViT-S+/16 @256", batch, m, batch, "images/s",
                                   Stats.ParameterCount(model));
        return Finish(figure, s, m, ForwardFlops(model, batch, tokens, config.Depth, config.EmbedDim));
    }
}
