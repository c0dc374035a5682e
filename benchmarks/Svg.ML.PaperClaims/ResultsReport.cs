using System.Globalization;
using System.Text;
using SkiaSharp;
using Svg.Quickstart;

namespace Svg.ML.PaperClaims;

/// <summary>Writes docs/results.md and the plots from the measurements; the verdicts are computed from the numbers.</summary>
public sealed class ResultsReport(ResultsData r, string docsDirectory)
{
    readonly ClaimsOptions o = r.Options;
    readonly RunInfo context = r.Run;
    readonly ArmResults svg = r.Svg, plain = r.Plain;
    readonly ProbeResult probeBase = r.ProbeBase;
    readonly FdPair reference = r.Reference;
    readonly string resnetName = r.ResNetName, cnnName = r.CnnName;

    static readonly SKColor SvgColor = new(31, 119, 180), PlainColor = new(214, 39, 40);

    public void Write()
    {
        string dir = Path.Combine(docsDirectory, "results");
        Directory.CreateDirectory(dir);
        Plot(Path.Combine(dir, "fd_vs_training_steps.png"), "FD vs training steps", "DiT training steps", svg.Curve, plain.Curve,
             svg.ReconstructionFd, plain.ReconstructionFd);
        Plot(Path.Combine(dir, "fd_vs_sampling_steps.png"), $"FD vs sampling steps (after {o.DiffusionSteps} training steps)", "Euler sampling steps",
             svg.BySamplingSteps.Select(kv => new CurvePoint(kv.Key, kv.Value)).ToList(), plain.BySamplingSteps.Select(kv => new CurvePoint(kv.Key, kv.Value)).ToList(),
             svg.ReconstructionFd, plain.ReconstructionFd);
        string path = Path.Combine(docsDirectory, "results.md");
        string kept = File.Exists(path) ? ResultsSections.Extract(File.ReadAllText(path)) : "";   // other programs' marked sections
        File.WriteAllText(path, KeepEditingSection(path, Markdown()) + (kept.Length > 0 ? "\n" + kept : ""));
    }

    /// <summary>The report plus the section benchmarks/Svg.ML.Editing wrote into the old file (between its markers), if any.</summary>
    static string KeepEditingSection(string path, string markdown)
    {
        const string begin = "<!-- editing:begin -->", end = "<!-- editing:end -->";
        string old = File.Exists(path) ? File.ReadAllText(path) : "";
        int b = old.IndexOf(begin, StringComparison.Ordinal), e = old.IndexOf(end, StringComparison.Ordinal);
        return b >= 0 && e > b ? markdown.TrimEnd() + "\n\n" + old[b..(e + end.Length)] + "\n" : markdown;
    }

    static void Plot(string path, string title, string xLabel, IReadOnlyList<CurvePoint> a, IReadOnlyList<CurvePoint> b,
                     FdPair? floorA, FdPair? floorB)
    {
        foreach (var (metric, pick, suffix) in new (string, Func<FdPair, double>, string)[]
                 { ("FD, ResNet18 features", f => f.ResNet, "_resnet18"), ("FD, Fashion-MNIST CNN features", f => f.Cnn, "_cnn") })
        {
            LinePlot.Save(path.Replace(".png", suffix + ".png"), $"{title} — {metric}", xLabel, metric,
            [
                new PlotSeries("(i) SVG latents (ResNet18 + residual)", SvgColor, a.Select(p => ((double)p.Step, pick(p.Fd))).ToList(),
                               floorA is null ? null : pick(floorA), "(i) its reconstructions (rFD)"),
                new PlotSeries("(ii) plain autoencoder latents", PlainColor, b.Select(p => ((double)p.Step, pick(p.Fd))).ToList(),
                               floorB is null ? null : pick(floorB), "(ii) its reconstructions (rFD)"),
            ]);
        }
    }

    string Markdown()
    {
        var c = CultureInfo.InvariantCulture;
        string F(double v) => v.ToString("F2", c);
        string P(double v) => (v * 100).ToString("F1", c) + " %";
        var sb = new StringBuilder();
        void L(string s = "") => sb.Append(s).Append('\n');

        var ditConfig = Architecture.DiT(o.Model, 264, 4, r.ClassNames.Count);
        var decoder = Architecture.Decoder(264, 32, 4);
        L("# SVG's claims at small scale (Fashion-MNIST, ResNet18 base)");
        L();
        L("This page is written by `benchmarks/Svg.ML.PaperClaims`; every number and verdict below comes from one run of it.");
        L();
        L($"- Command: `{context.Command}`");
        L($"- Started {context.StartUtc:yyyy-MM-dd HH:mm} UTC; wall time {context.WallMinutes.ToString("F1", c)} min, process CPU time {context.CpuMinutes.ToString("F1", c)} min.");
        L($"- Machine: {context.Machine}; {context.Threads} TorchSharp thread(s). Load average (1/5/15 min) at start {context.LoadAtStart}, at end {context.LoadAtEnd} " +
          (Math.Max(OneMinuteLoad(context.LoadAtStart), OneMinuteLoad(context.LoadAtEnd)) > context.Threads + 0.5
              ? "(other jobs shared the machine, so wall times are pessimistic)."
              : "(about the run's own threads: no other load)."));
        L();
        L("## What was compared");
        L();
        L($"The same class-conditional DiT is trained with rectified flow on the latents of two autoencoders with the same latent shape [264, 4, 4], " +
          $"on {r.DataDescription}. Everything but the encoder is identical: decoder architecture and initial weights, stage-1 objective, optimiser, steps, " +
          "batch, data order and seed; DiT configuration, steps, batch, optimiser, EMA, seed, per-channel latent normalisation (fitted on each arm's " +
          "training latents, as the official `dinov3_sp_stats`), sampler and sampling noise.");
        L();
        L("| | (i) SVG | (ii) plain autoencoder |");
        L("|---|---|---|");
        L($"| Encoder | frozen ImageNet ResNet18 (ML.NET's DnnImageFeaturizer network), stage 3 on images enlarged to 64 px → 4×4×256, plus a residual ViT (2 layers, width 128, patch 8) → 8 channels, aligned to the base's statistics (stored alignment) and concatenated | LDM convolutional encoder (width 32·[{string.Join(",", decoder.ChMult)}], one ResNet block per level, attention in the middle) → 264 channels, trained from scratch |");
        L($"| Trainable encoder parameters | {svg.TrainableEncoderParameters / 1e6:F2} M (plus 11.2 M frozen) | {plain.TrainableEncoderParameters / 1e6:F2} M |");
        L($"| Decoder | LDM decoder, width 32·[{string.Join(",", decoder.ChMult)}], 4 → 32 px | same |");
        L($"| Stage 1 | {o.AutoencoderSteps} steps × batch {o.AutoencoderBatch}, Adam lr {o.AutoencoderLearningRate.ToString(c)}, betas (0.5, 0.9), L1 loss (Svg.ML `AutoencoderTraining`) | same objective, optimiser, data order and init streams (`PlainAutoencoderTraining`, a mirror of that loop) |");
        L($"| Stage 2 | DiT {o.Model}: {Architecture.Describe(ditConfig)}; {o.DiffusionSteps} steps × batch {o.DiffusionBatch}, AdamW lr {o.DiffusionLearningRate.ToString(c)}, EMA {o.EmaDecay.ToString(c)}, label dropout 0.1, training time shift 0.4 (Svg.ML `DiffusionTraining`) | same |");
        L($"| Sampler | Euler, constant CFG {o.Cfg.ToString(c)}, time shift 0.15, the same noise seeds; EMA weights | same |");
        L();
        L($"**FD.** Fréchet distance between {o.FdSamples} generated images (class-balanced) and the {r.TestImages} held-out images, over two feature networks:");
        L($"- *ResNet18*: {resnetName}. This is the same network as SVG's frozen base (though a different stage, pooled), so it may favour arm (i).");
        L($"- *CNN*: {cnnName}. It shares nothing with either arm.");
        L($"- For scale, {o.FdSamples} real training images score ResNet18 FD {F(reference.ResNet)} and CNN FD {F(reference.Cnn)} against the same held-out images (the floor at these sample sizes).");
        L();

        L("## What reproduces and what does not");
        L();
        L("Verdicts are computed from the tables below; FDs within 5 % of each other count as ties (a second sample set of each final model moved its FD by up to " +
          $"{MaxResampleShift().ToString("P0", CultureInfo.InvariantCulture)}).");
        L();
        foreach (var line in Verdicts()) L("- " + line);
        L();
        L("## Reconstruction (stage 1)");
        L();
        L($"On the first {svg.Reconstruction!.Images} held-out images; rFD is the FD of their reconstructions (a floor for the FD of generated images decoded by the same decoder).");
        L();
        L("| Arm | PSNR (dB) | SSIM | rFD ResNet18 | rFD CNN | Stage-1 time |");
        L("|---|---|---|---|---|---|");
        foreach (var arm in new[] { svg, plain })
            L($"| {arm.Name} | {F(arm.Reconstruction!.Psnr)} | {arm.Reconstruction.Ssim.ToString("F3", c)} | {F(arm.ReconstructionFd!.ResNet)} | {F(arm.ReconstructionFd.Cnn)} | {arm.Stage1Seconds:F0} s |");
        L();
        L("Held-out images (top) and reconstructions (bottom): (i) SVG ![](results/reconstructions_svg.png) (ii) plain ![](results/reconstructions_plain.png)");
        L();

        L($"## FD against training steps ({o.CurveSamplingSteps} Euler sampling steps)");
        L();
        L("![FD vs training steps, ResNet18 features](results/fd_vs_training_steps_resnet18.png)");
        L("![FD vs training steps, CNN features](results/fd_vs_training_steps_cnn.png)");
        L();
        L("| DiT training steps | (i) SVG, FD ResNet18 | (ii) plain, FD ResNet18 | (i) SVG, FD CNN | (ii) plain, FD CNN |");
        L("|---|---|---|---|---|");
        for (int i = 0; i < svg.Curve.Count; i++)
            L($"| {svg.Curve[i].Step} | {Best(svg.Curve[i].Fd.ResNet, plain.Curve[i].Fd.ResNet)} | {Best(plain.Curve[i].Fd.ResNet, svg.Curve[i].Fd.ResNet)} | " +
              $"{Best(svg.Curve[i].Fd.Cnn, plain.Curve[i].Fd.Cnn)} | {Best(plain.Curve[i].Fd.Cnn, svg.Curve[i].Fd.Cnn)} |");
        L($"| reconstructions (rFD, the decoder's floor) | {F(svg.ReconstructionFd!.ResNet)} | {F(plain.ReconstructionFd!.ResNet)} | {F(svg.ReconstructionFd.Cnn)} | {F(plain.ReconstructionFd.Cnn)} |");
        L();
        L($"Sampling noise of these FDs: {o.FdSamples} further samples of the final models with other noise seeds score ResNet18 FD {F(svg.ResampledFd!.ResNet)} / " +
          $"CNN FD {F(svg.ResampledFd.Cnn)} for (i) and {F(plain.ResampledFd!.ResNet)} / {F(plain.ResampledFd.Cnn)} for (ii) (vs {F(svg.Curve[^1].Fd.ResNet)} / " +
          $"{F(svg.Curve[^1].Fd.Cnn)} and {F(plain.Curve[^1].Fd.ResNet)} / {F(plain.Curve[^1].Fd.Cnn)} above); the dashed lines in the plots are the rFD floors.");
        L();

        L($"## FD against sampling steps (after {o.DiffusionSteps} training steps)");
        L();
        L("![FD vs sampling steps, ResNet18 features](results/fd_vs_sampling_steps_resnet18.png)");
        L("![FD vs sampling steps, CNN features](results/fd_vs_sampling_steps_cnn.png)");
        L();
        L("| Euler steps | (i) SVG, FD ResNet18 | (ii) plain, FD ResNet18 | (i) SVG, FD CNN | (ii) plain, FD CNN |");
        L("|---|---|---|---|---|");
        foreach (int s in svg.BySamplingSteps.Keys)
        {
            FdPair a = svg.BySamplingSteps[s], b = plain.BySamplingSteps[s];
            L($"| {s} | {Best(a.ResNet, b.ResNet)} | {Best(b.ResNet, a.ResNet)} | {Best(a.Cnn, b.Cnn)} | {Best(b.Cnn, a.Cnn)} |");
        }
        L();
        L($"Samples ({o.TableSamplingSteps.Max()} Euler steps, one row per class: {string.Join(", ", r.ClassNames)}):");
        L();
        L("| (i) SVG | (ii) plain autoencoder |");
        L("|---|---|");
        L("| ![](results/samples_svg.png) | ![](results/samples_plain.png) |");
        L();

        L("## Linear probe");
        L();
        L($"ML.NET `LbfgsMaximumEntropy` (after per-feature mean/variance normalisation) on grid-averaged features of {svg.TrainCount} training images, accuracy on {svg.TestCount} held-out images.");
        L();
        L("| Features | Dimensions | Test accuracy |");
        L("|---|---|---|");
        L($"| Frozen base: ResNet18 stage 3 (the first 256 SVG channels) | {probeBase.Dimensions} | {P(probeBase.Accuracy)} |");
        L($"| (i) SVG latent (base + 8 residual channels) | {svg.Probe!.Dimensions} | {P(svg.Probe.Accuracy)} |");
        L($"| (ii) plain autoencoder latent | {plain.Probe!.Dimensions} | {P(plain.Probe.Accuracy)} |");
        L();

        L("## Caveats");
        L();
        L("- Tiny scale: 32 px Fashion-MNIST, a 4×4×264 latent, a ~1 M-parameter DiT, minutes of CPU training. The paper trains DiT-XL on ImageNet 256 px latents of 16×16×392 for hundreds of thousands of steps; absolute numbers here say nothing about that regime.");
        L("- The base is ImageNet ResNet18 (stage 3, at 64 px), not DINOv3 ViT-S+/16: DINOv3 weights cannot be downloaded here. ResNet18 features are less semantic and this base was never trained on 64 px images.");
        L("- The ResNet18 FD uses the same network as SVG's base; the CNN FD is the independent check. Both are FDs on at most a few thousand images, so differences of a few percent are within noise (one seed, one run).");
        L("- The baseline is a plain (unregularised) autoencoder, not the paper's KL-regularised SD-VAE; both get the same latent normalisation. Its encoder has more trainable parameters than SVG's residual ViT, but no pretrained features.");
        L("- Both arms use the official training time shift (0.4) and sampling shift (0.15), tuned for SVG's 100k-dimensional latents, not for 4k-dimensional ones; no hyper-parameter was tuned for either arm.");
        L();
        L("## Timings");
        L();
        L("| | (i) SVG | (ii) plain |");
        L("|---|---|---|");
        L($"| Stage 1 | {svg.Stage1Seconds:F0} s | {plain.Stage1Seconds:F0} s |");
        L($"| Featurize ({svg.TrainCount} + {svg.TestCount} images) | {svg.FeaturizeSeconds:F0} s | {plain.FeaturizeSeconds:F0} s |");
        L($"| Stage 2 ({o.DiffusionSteps} steps) | {svg.Stage2Seconds:F0} s | {plain.Stage2Seconds:F0} s |");
        L($"| FD evaluations | {svg.EvaluationSeconds:F0} s | {plain.EvaluationSeconds:F0} s |");
        return sb.ToString();
    }

    /// <summary>The value in bold when it is the lower (better) of the two.</summary>
    static string Best(double value, double other) =>
        value < other ? $"**{value.ToString("F2", CultureInfo.InvariantCulture)}**" : value.ToString("F2", CultureInfo.InvariantCulture);

    /// <summary>The largest relative change of a final FD when the model is sampled again with other noise seeds.</summary>
    double MaxResampleShift() => new[]
    {
        Math.Abs(svg.ResampledFd.ResNet / svg.Curve[^1].Fd.ResNet - 1), Math.Abs(svg.ResampledFd.Cnn / svg.Curve[^1].Fd.Cnn - 1),
        Math.Abs(plain.ResampledFd.ResNet / plain.Curve[^1].Fd.ResNet - 1), Math.Abs(plain.ResampledFd.Cnn / plain.Curve[^1].Fd.Cnn - 1),
    }.Max();

    /// <summary>Relative margin under which two FDs count as a tie.</summary>
    const double Tolerance = 0.05;

    /// <summary>True when <paramref name="a"/> is lower than <paramref name="b"/> by more than <see cref="Tolerance"/>.</summary>
    static bool Better(double a, double b) => a < b * (1 - Tolerance);

    /// <summary>(checkpoints where SVG is better, checkpoints where it is worse), ties excluded.</summary>
    static (int Wins, int Losses) Tally(IEnumerable<double> svgValues, IEnumerable<double> plainValues)
    {
        var pairs = svgValues.Zip(plainValues).ToList();
        return (pairs.Count(p => Better(p.First, p.Second)), pairs.Count(p => Better(p.Second, p.First)));
    }

    IEnumerable<string> Verdicts()
    {
        var c = CultureInfo.InvariantCulture;
        string F(double v) => v.ToString("F2", c);

        // 1. Training efficiency: lower FD at the same number of DiT steps. Differences under 5 % count as ties.
        int n = svg.Curve.Count;
        var (winsR, lossesR) = Tally(svg.Curve.Select(p => p.Fd.ResNet), plain.Curve.Select(p => p.Fd.ResNet));
        var (winsC, lossesC) = Tally(svg.Curve.Select(p => p.Fd.Cnn), plain.Curve.Select(p => p.Fd.Cnn));
        string verdict1 = lossesR + lossesC == 0 && winsR > n / 2 && winsC > n / 2 ? "**Reproduces**"
                        : winsR + winsC == 0 ? "**Does not reproduce**"
                        : "**Partly reproduces**";
        string Steps(Func<FdPair, double> pick, bool svgBetter)
        {
            var steps = svg.Curve.Zip(plain.Curve).Where(p => svgBetter ? Better(pick(p.First.Fd), pick(p.Second.Fd)) : Better(pick(p.Second.Fd), pick(p.First.Fd)))
                                 .Select(p => p.First.Step.ToString(c)).ToList();
            return steps.Count == 0 ? "none" : string.Join(", ", steps);
        }
        yield return $"{verdict1} — *diffusion on SVG latents trains faster than on autoencoder latents*: at the same number of DiT steps, SVG's FD is lower " +
                     $"(by more than {Tolerance:P0}) at steps {Steps(f => f.ResNet, true)} and higher at {Steps(f => f.ResNet, false)} with ResNet18 features; " +
                     $"lower at {Steps(f => f.Cnn, true)} and higher at {Steps(f => f.Cnn, false)} with the independent CNN features " +
                     $"(first checkpoint, {svg.Curve[0].Step} steps: ResNet18 {F(svg.Curve[0].Fd.ResNet)} vs {F(plain.Curve[0].Fd.ResNet)}, CNN {F(svg.Curve[0].Fd.Cnn)} vs " +
                     $"{F(plain.Curve[0].Fd.Cnn)}; final, {svg.Curve[^1].Step} steps: ResNet18 {F(svg.Curve[^1].Fd.ResNet)} vs {F(plain.Curve[^1].Fd.ResNet)}, " +
                     $"CNN {F(svg.Curve[^1].Fd.Cnn)} vs {F(plain.Curve[^1].Fd.Cnn)}). Part of every FD is the decoder's, and the plain decoder reconstructs " +
                     $"{(plain.ReconstructionFd.Cnn < svg.ReconstructionFd.Cnn ? "better" : "worse")} (rFD ResNet18 {F(svg.ReconstructionFd.ResNet)} vs {F(plain.ReconstructionFd.ResNet)}, " +
                     $"CNN {F(svg.ReconstructionFd.Cnn)} vs {F(plain.ReconstructionFd.Cnn)}); above each arm's own floor (FD − rFD) the final gap is ResNet18 " +
                     $"{F(svg.Curve[^1].Fd.ResNet - svg.ReconstructionFd.ResNet)} vs {F(plain.Curve[^1].Fd.ResNet - plain.ReconstructionFd.ResNet)}, CNN " +
                     $"{F(svg.Curve[^1].Fd.Cnn - svg.ReconstructionFd.Cnn)} vs {F(plain.Curve[^1].Fd.Cnn - plain.ReconstructionFd.Cnn)}.";

        // 2. Few-step sampling: FD at the fewest steps, and how much it grows from the most steps.
        int few = svg.BySamplingSteps.Keys.Min(), many = svg.BySamplingSteps.Keys.Max();
        FdPair sFew = svg.BySamplingSteps[few], sMany = svg.BySamplingSteps[many], pFew = plain.BySamplingSteps[few], pMany = plain.BySamplingSteps[many];
        double sRatioC = sFew.Cnn / sMany.Cnn, pRatioC = pFew.Cnn / pMany.Cnn, sRatioR = sFew.ResNet / sMany.ResNet, pRatioR = pFew.ResNet / pMany.ResNet;
        bool lowerFew = Better(sFew.ResNet, pFew.ResNet) && Better(sFew.Cnn, pFew.Cnn);
        bool degradesLess = Better(sRatioC, pRatioC) && Better(sRatioR, pRatioR);
        bool worse = Better(pFew.ResNet, sFew.ResNet) && Better(pFew.Cnn, sFew.Cnn);
        bool bothRobust = Math.Max(sRatioC, sRatioR) < 1 + Tolerance && Math.Max(pRatioC, pRatioR) < 1 + Tolerance;
        string verdict2 = bothRobust ? "**Inconclusive here**"
                        : lowerFew && degradesLess ? "**Reproduces**" : worse ? "**Does not reproduce**" : "**Partly reproduces**";
        if (bothRobust)
            yield return $"{verdict2} — *SVG keeps its quality with few sampling steps*: at this scale neither arm loses much with few steps — going from {many} to {few} " +
                         $"Euler steps multiplies SVG's FD by {sRatioR.ToString("F2", c)} (ResNet18) / {sRatioC.ToString("F2", c)} (CNN) and the plain arm's by " +
                         $"{pRatioR.ToString("F2", c)} / {pRatioC.ToString("F2", c)}, all within {Tolerance:P0} — so the setting cannot separate them. In absolute terms, with {few} " +
                         $"steps SVG scores ResNet18 FD {F(sFew.ResNet)} / CNN FD {F(sFew.Cnn)} against the plain autoencoder's {F(pFew.ResNet)} / {F(pFew.Cnn)}.";
        else
        yield return $"{verdict2} — *SVG keeps its quality with few sampling steps*: with {few} Euler steps SVG scores ResNet18 FD {F(sFew.ResNet)} / CNN FD {F(sFew.Cnn)} " +
                     $"against the plain autoencoder's {F(pFew.ResNet)} / {F(pFew.Cnn)}; going from {many} to {few} steps multiplies SVG's FD by " +
                     $"{sRatioR.ToString("F2", c)} (ResNet18) / {sRatioC.ToString("F2", c)} (CNN) and the plain arm's by {pRatioR.ToString("F2", c)} / {pRatioC.ToString("F2", c)}.";

        // 3. Semantics of the latent.
        double dBase = svg.Probe!.Accuracy - probeBase.Accuracy, dPlain = svg.Probe.Accuracy - plain.Probe!.Accuracy;
        string verdict3 = Math.Abs(dBase) <= 0.01 && dPlain > 0.02 ? "**Reproduces**" : dPlain > 0.02 ? "**Partly reproduces**" : "**Does not reproduce**";
        yield return $"{verdict3} — *SVG latents keep the frozen encoder's semantics; autoencoder latents are far less linearly separable*: linear-probe accuracy " +
                     $"{(svg.Probe.Accuracy * 100).ToString("F1", c)} % on SVG latents vs {(probeBase.Accuracy * 100).ToString("F1", c)} % on the base features alone " +
                     $"({Points(dBase)} points) and {(plain.Probe.Accuracy * 100).ToString("F1", c)} % on the plain autoencoder's latents " +
                     $"({Points(dPlain)} points for SVG).";

        // 4. Reconstruction.
        var rs = svg.Reconstruction!; var rp = plain.Reconstruction!;
        string verdict4 = rs.Psnr >= rp.Psnr - 0.5 ? "**Reproduces**" : rs.Psnr >= rp.Psnr - 2 ? "**Partly reproduces**" : "**Does not reproduce**";
        yield return $"{verdict4} — *the residual encoder lets SVG reconstruct about as well as an autoencoder*: PSNR {F(rs.Psnr)} dB / SSIM {rs.Ssim.ToString("F3", c)} for SVG " +
                     $"vs {F(rp.Psnr)} dB / {rp.Ssim.ToString("F3", c)} for the plain autoencoder trained with the same budget " +
                     $"(rFD CNN {F(svg.ReconstructionFd!.Cnn)} vs {F(plain.ReconstructionFd!.Cnn)}).";
    }

    /// <summary>An accuracy difference in percentage points, signed, one decimal ("+0.0" for a difference that rounds to zero).</summary>
    static string Points(double difference) =>
        Math.Round(difference * 100, 1, MidpointRounding.AwayFromZero).ToString("+0.0;-0.0;+0.0", CultureInfo.InvariantCulture);

    /// <summary>The 1-minute figure of a "1.85 / 1.64 / 1.78" load-average string (0 when unreadable).</summary>
    static double OneMinuteLoad(string loads) =>
        double.TryParse(loads.Split('/')[0].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : 0;
}
