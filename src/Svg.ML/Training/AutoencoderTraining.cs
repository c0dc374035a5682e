using System.Text.Json;
using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Data;
using Svg.ML.Distributed;
using Svg.ML.Metrics;
using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// Stage 1: trains SVG's residual encoder (+ mask token) and an LDM decoder on a frozen base encoder (official
/// <c>DinoDecoder.training_step</c> with <c>LPIPSWithDiscriminatorDecoder</c>). Images are RGB in [0, 1]; the decoder
/// output (range [-1, 1]) is compared with <c>x = 2·rgb − 1</c>:
/// <code>
/// x̂     = decoder(encoder(rgb))                                encoder in training mode: dropout, mask token
/// L_nll = Σ_{c,h,w} (|x − x̂| + w_p · LPIPS(x, x̂)) / B          LPIPS only when weights are supplied
/// L_gen = L_nll + λ · f · (−mean D(x̂))                         GAN from DiscStart, λ = adaptive weight
/// Adam (lr 1e-4, betas (0.5, 0.9)) on residual encoder + mask token + decoder
/// L_D   = f · hinge(D(x), D(x̂.detach()))                       Adam (same settings) on the discriminator
/// </code>
/// Randomness (decoder/discriminator initialisation, data order, mask draws through the global CPU generator — drawn on
/// the CPU on every device, see <see cref="DeviceRandom"/> — and dropout, which libtorch draws from the device's default
/// generator) derives from the seed; the caller's global generator state is restored afterwards. Checkpoints (prefix
/// <c>autoencoder</c>) hold the residual encoder (<c>encoder.extra_vit.*</c>, <c>encoder.mask_token</c>), the decoder,
/// the discriminator, both optimisers' moments and the global generator state: resuming on the CPU continues exactly.
/// The frozen base encoder is not stored (its fingerprint is part of the settings check).
/// </summary>
public static class AutoencoderTraining
{
    const string AeOptimizer = "optimizer_ae";
    const string DiscOptimizer = "optimizer_disc";

    /// <summary>
    /// Trains <paramref name="encoder"/>'s residual part (in place) and a decoder (<paramref name="decoder"/>, trained in
    /// place, or a new one built from <see cref="AutoencoderTrainingOptions.Decoder"/>) on <paramref name="images"/>,
    /// resuming the newest checkpoint in <see cref="TrainingOptions.CheckpointDirectory"/> when there is one. The
    /// modules are moved to <see cref="TrainingOptions.Device"/>. Throws <see cref="TrainingDivergedException"/>,
    /// <see cref="TrainingCanceledException"/> or <see cref="TrainingResumeException"/> as <see cref="DiffusionTraining"/> does.
    /// </summary>
    public static AutoencoderTrainingResult Train(SvgEncoder encoder, LabeledImages images, AutoencoderTrainingOptions options, LdmDecoder? decoder = null)
    {
        TorchRuntime.EnsureInitialized();
        options.Validate();
        if (images.Count == 0) throw new ArgumentException("No training images.");
        int imageSize = options.ImageSize ?? encoder.Config.Residual.ImageSize;
        var decoderConfig = decoder?.Config ?? options.Decoder ?? LdmDecoderConfig.Released with { ZChannels = encoder.Channels, Resolution = imageSize };
        if (decoderConfig.ZChannels != encoder.Channels)
            throw new ArgumentException($"The decoder takes {decoderConfig.ZChannels} latent channels but the encoder gives {encoder.Channels}.");
        string? lpipsFingerprint = options.Lpips is null ? null : FeatureCacheKey.FingerprintWeights(options.Lpips);
        var run = new TrainingRun(TrainingStage.Autoencoder, options,
                                  options.TrajectoryJson(encoder, decoderConfig, imageSize, images, lpipsFingerprint), images.Count, options.BatchSize);
        var device = run.Device;
        string lossDescription = DescribeLoss(options);

        using var callerRng = torch.get_rng_state();
        bool ownsDecoder = decoder is null;
        NLayerDiscriminator? discriminator = null;
        optim.Optimizer? aeOptimizer = null, discOptimizer = null;
        GradientAllReduce? aeReducer = null, discReducer = null;
        bool success = false;
        try
        {
            // Modules are built outside any dispose scope (a scope would take their weights).
            long initSeed = TrainingRandom.Derive(options.Seed, TrainingRandom.Init);
            decoder ??= TrainingRandom.WithGlobalSeed(initSeed, () => new LdmDecoder(decoderConfig));
            if (options.Gan)
                discriminator = TrainingRandom.WithGlobalSeed(initSeed + 1, () => new NLayerDiscriminator(options.Discriminator));
            encoder.to(device);
            decoder.to(device);
            discriminator?.to(device);
            options.Lpips?.to(device).eval();

            // Official generator parameters: decoder + residual ViT (+ mask_token); norm_vit and the base are excluded.
            var encoderState = encoder.state_dict()
                .Where(kv => kv.Key.StartsWith("extra_vit.", StringComparison.Ordinal) || kv.Key == "mask_token")
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            var aeParameters = encoder.named_parameters()
                .Where(p => p.name.StartsWith("extra_vit.", StringComparison.Ordinal) || p.name == "mask_token")
                .Select(p => ("encoder." + p.name, p.parameter))
                .Concat(decoder.named_parameters().Select(p => ("decoder." + p.name, p.parameter)))
                .ToList();
            string[] aeNames = aeParameters.Select(p => p.Item1).ToArray();
            aeOptimizer = optim.Adam(aeParameters.Select(p => p.Item2), lr: options.LearningRate, beta1: options.Beta1,
                                     beta2: options.Beta2, eps: options.Epsilon, weight_decay: options.WeightDecay);
            string[] discNames = discriminator?.named_parameters().Select(p => p.name).ToArray() ?? [];
            if (discriminator is not null)
                discOptimizer = optim.Adam(discriminator.parameters(), lr: options.LearningRate, beta1: options.Beta1,
                                           beta2: options.Beta2, eps: options.Epsilon, weight_decay: options.WeightDecay);
            var lastLayer = decoder.named_parameters().First(p => p.name == "conv_out.weight").parameter;
            aeReducer = run.GradientReducer(aeParameters.Select(p => p.Item2));
            if (discriminator is not null) discReducer = run.GradientReducer(discriminator.parameters());

            // Dropout and mask draws: one stream per rank (rank 0's is the one-process stream).
            long globalSeed = TrainingRandom.Derive(options.Seed, TrainingRandom.Global, run.Group.Rank);
            torch.manual_seed(globalSeed);
            if (device.type == DeviceType.CUDA) torch.cuda.manual_seed(globalSeed);
            using (var checkpoint = run.OpenResume())
            {
                if (checkpoint is not null)
                {
                    CopyInto(encoderState, checkpoint, "encoder.");
                    StateDict.Load(decoder, checkpoint.WithPrefix("decoder."), strict: true, checkpoint.Path);
                    if (discriminator is not null) StateDict.Load(discriminator, checkpoint.WithPrefix("discriminator."), strict: true, checkpoint.Path);
                    OptimizerMoments.Import(aeOptimizer, aeNames, checkpoint.Tensors, AeOptimizer);
                    if (discOptimizer is not null) OptimizerMoments.Import(discOptimizer, discNames, checkpoint.Tensors, DiscOptimizer);
                    torch.set_rng_state(checkpoint.Get(run.Group.Rank == 0 ? "rng.global" : $"rng.global.rank{run.Group.Rank}"));
                }
            }

            var fixedDecoder = decoder;
            var fixedAe = aeOptimizer;
            CheckpointSnapshot Snapshot()
            {
                var s = new CheckpointSnapshot();
                foreach (var (k, t) in encoderState)
                {
                    s.Tensors.Add(new("encoder." + k, t));
                    s.Weights.Add(("encoder." + k, t));
                }
                s.AddModule("decoder.", fixedDecoder);
                if (discriminator is not null) s.AddModule("discriminator.", discriminator);
                s.AddOptimizer(fixedAe, aeNames, AeOptimizer);
                if (discOptimizer is not null) s.AddOptimizer(discOptimizer, discNames, DiscOptimizer);
                s.AddOwned(RngStates(run.Group));
                s.State["decoder_config"] = JsonSerializer.SerializeToNode(decoderConfig);
                s.State["encoder_config"] = JsonSerializer.SerializeToNode(encoder.Config);
                s.State["image_size"] = imageSize;
                s.State["loss"] = lossDescription;
                return s;
            }

            run.Log($"Autoencoder loss: {lossDescription}.");
            run.Start();
            encoder.train();
            decoder.train();
            discriminator?.train();
            int batch = run.EffectiveBatchSize;
            for (long step = run.StartStep; step < run.TotalSteps; step++)
            {
                run.ThrowIfCanceled(step, Snapshot);
                var indices = run.BatchIndices(step);
                bool ganOn = discriminator is not null && step >= options.DiscStart;

                float loss;
                var metrics = new Dictionary<string, double>();
                using (var scope = NewDisposeScope())
                {
                    var rgb = ReadImages(images, indices, imageSize, options.Resize).to(device);
                    var x = rgb * 2 - 1;
                    var xRec = decoder.call(encoder.Encode(rgb));

                    // The step's scalars are read in one device→host copy (one synchronisation, not one per value).
                    var rec = (x - xRec).abs();
                    var scalars = new List<(string Name, Tensor Value)> { ("l1", rec.mean()) };
                    if (options.Lpips is { } lpips)
                    {
                        var p = lpips.call(x, xRec);                                   // [B, 1, 1, 1]
                        scalars.Add(("lpips", p.mean()));
                        rec = rec + options.PerceptualWeight * p;
                    }
                    var nll = rec.sum() / rec.shape[0];
                    scalars.Add(("nll", nll));
                    var total = nll;
                    if (ganOn)
                    {
                        var g = AdversarialLoss.GeneratorLoss(discriminator!.call(xRec));
                        var lambda = AdversarialLoss.AdaptiveWeight(nll, g, lastLayer, options.DiscWeight);
                        scalars.Add(("g_loss", g));
                        scalars.Add(("d_weight", lambda));
                        total = nll + lambda * options.DiscFactor * g;
                    }
                    float[] values = TrainingRun.ReadScalars(scalars.Select(v => v.Value).Append(total));
                    for (int i = 0; i < scalars.Count; i++) metrics[scalars[i].Name] = values[i];
                    loss = run.AgreeLoss(step + 1, "the autoencoder loss", values[^1]);    // before any update
                    aeOptimizer.zero_grad();
                    total.backward();
                    aeReducer?.Average();
                    aeOptimizer.step();

                    if (ganOn)
                    {
                        var dLoss = options.DiscFactor * AdversarialLoss.HingeDiscriminatorLoss(
                            discriminator!.call(x.detach()), discriminator.call(xRec.detach()));
                        float d = run.AgreeLoss(step + 1, "the discriminator loss", dLoss.item<float>());
                        metrics["d_loss"] = d;
                        discOptimizer!.zero_grad();
                        dLoss.backward();
                        discReducer?.Average();
                        discOptimizer.step();
                    }
                }
                run.Completed(step + 1, loss, options.LearningRate, Snapshot, metrics);

                if (options.EvaluateEvery > 0 && options.Validation is not null && (step + 1) % options.EvaluateEvery == 0 && step + 1 < run.TotalSteps)
                {
                    var report = Evaluate(encoder, decoder, options.Validation, options.ValidationImages, batch, imageSize, options.Resize);
                    run.Log($"Step {step + 1}: validation {report}.");
                    encoder.train();
                    decoder.train();
                }
            }

            ReconstructionReport? validation = null;
            if (options.Validation is not null)
            {
                validation = Evaluate(encoder, decoder, options.Validation, options.ValidationImages, batch, imageSize, options.Resize);
                run.Log($"Validation: {validation}.");
            }
            AlignmentStatistics? alignment = null;
            if (options.EstimateAlignment)
            {
                alignment = EstimateAlignment(encoder, images, options.AlignmentImages, batch, imageSize, options.Resize);
                encoder.Statistics = alignment;
                run.Log($"Stored-alignment statistics over {alignment.Rows} images: {alignment}.");
            }
            encoder.eval();
            decoder.eval();
            discriminator?.eval();
            success = true;
            return new AutoencoderTrainingResult(encoder, decoder, ownsDecoder, discriminator, run.Losses, validation, alignment,
                                                 options.Lpips is not null, lossDescription, run.LastCheckpoint, run.TotalSteps,
                                                 run.StartStep, run.Elapsed);
        }
        finally
        {
            torch.set_rng_state(callerRng);
            aeOptimizer?.Dispose();
            discOptimizer?.Dispose();
            aeReducer?.Dispose();
            discReducer?.Dispose();
            if (!success)
            {
                if (ownsDecoder) decoder?.Dispose();
                discriminator?.Dispose();
            }
        }
    }

    /// <summary>The global generator state of every rank: <c>rng.global</c> (rank 0, as one process) and
    /// <c>rng.global.rank{r}</c> for the other ranks (gathered: only rank 0 writes the checkpoint).</summary>
    static IEnumerable<KeyValuePair<string, Tensor>> RngStates(ProcessGroup group)
    {
        var mine = torch.get_rng_state();
        if (group.WorldSize == 1) return [new("rng.global", mine)];
        byte[][] all;
        using (mine) all = group.AllGather(mine.data<byte>().ToArray());
        return all.Select((state, r) => new KeyValuePair<string, Tensor>(r == 0 ? "rng.global" : $"rng.global.rank{r}", tensor(state)));
    }

    /// <summary>Trains the residual encoder and decoder of <paramref name="autoencoder"/> in place (see
    /// <see cref="Train(SvgEncoder, LabeledImages, AutoencoderTrainingOptions, LdmDecoder?)"/>).</summary>
    public static AutoencoderTrainingResult Train(SvgAutoencoder autoencoder, LabeledImages images, AutoencoderTrainingOptions options) =>
        Train(autoencoder.Encoder, images, options, autoencoder.Decoder);

    /// <summary>Describes the loss used, e.g. "L1 + 1·LPIPS(VGG16) + hinge GAN (adaptive weight × 0.5) from step 5001".</summary>
    public static string DescribeLoss(AutoencoderTrainingOptions options)
    {
        string s = options.Lpips is null
            ? "L1 only (LPIPS off: no LPIPS weights supplied)"
            : $"L1 + {options.PerceptualWeight.ToString(System.Globalization.CultureInfo.InvariantCulture)}·LPIPS(VGG16)";
        if (options.Gan)
            s += $" + hinge GAN (adaptive weight × {options.DiscWeight.ToString(System.Globalization.CultureInfo.InvariantCulture)}) from step {options.DiscStart}";
        return s;
    }

    /// <summary>
    /// Reconstruction quality on up to <paramref name="maxImages"/> images (evaluation mode, no gradients): the mean
    /// per-image PSNR and SSIM (<see cref="Psnr"/>, <see cref="Ssim"/>, data range 1) and the mean absolute error of
    /// the reconstruction <c>clamp((x̂ + 1) / 2, 0, 1)</c> against the input in [0, 1].
    /// </summary>
    public static ReconstructionReport Evaluate(SvgEncoder encoder, LdmDecoder decoder, LabeledImages images, int maxImages = 256,
                                                int batchSize = 16, int? imageSize = null, ResizeMode resize = ResizeMode.CenterCrop)
    {
        TorchRuntime.EnsureInitialized();
        int size = imageSize ?? encoder.Config.Residual.ImageSize;
        int count = Math.Min(maxImages, images.Count);
        var device = decoder.parameters().First().device;
        bool encoderTraining = encoder.training, decoderTraining = decoder.training;
        encoder.eval();
        decoder.eval();
        double psnr = 0, ssim = 0, l1 = 0;
        try
        {
            using var _ = no_grad();
            for (int start = 0; start < count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                int n = Math.Min(batchSize, count - start);
                var rgb = images.Images(start, n, size, resize).to(device);
                var rec = ((decoder.call(encoder.Encode(rgb)) + 1) / 2).clamp(0, 1);
                psnr += Psnr.PerImage(rgb, rec).sum().item<double>();
                ssim += Ssim.PerImage(rgb, rec).sum().item<double>();
                l1 += (rgb - rec).abs().flatten(1).mean([1]).sum().item<float>();
            }
        }
        finally
        {
            encoder.train(encoderTraining);
            decoder.train(decoderTraining);
        }
        return new ReconstructionReport(psnr / count, ssim / count, l1 / count, count);
    }

    /// <summary>
    /// The <see cref="ResidualAlignment.Stored"/> statistics of <paramref name="encoder"/> over the first
    /// <paramref name="maxImages"/> of <paramref name="images"/> (<see cref="SvgEncoder.EstimateAlignment"/>).
    /// </summary>
    public static AlignmentStatistics EstimateAlignment(SvgEncoder encoder, LabeledImages images, int maxImages = 2048,
                                                        int batchSize = 32, int? imageSize = null, ResizeMode resize = ResizeMode.CenterCrop)
    {
        TorchRuntime.EnsureInitialized();
        int size = imageSize ?? encoder.Config.Residual.ImageSize;
        int count = Math.Min(maxImages, images.Count);
        var device = encoder.ResidualEncoder.parameters().First().device;
        IEnumerable<Tensor> Batches()
        {
            for (int start = 0; start < count; start += batchSize)
                yield return images.Images(start, Math.Min(batchSize, count - start), size, resize).to(device);
        }
        return encoder.EstimateAlignment(Batches());
    }

    /// <summary>
    /// Restores a stage-1 checkpoint: the residual encoder weights go into <paramref name="encoder"/> (built with the
    /// same configuration and base), the decoder is rebuilt from the stored configuration. Both are left in eval mode.
    /// </summary>
    public static LdmDecoder LoadCheckpoint(string path, SvgEncoder encoder)
    {
        TorchRuntime.EnsureInitialized();
        using var checkpoint = TrainingCheckpoint.Load(path);
        if (checkpoint.Stage != TrainingStage.Autoencoder)
            throw new TrainingResumeException(path, $"it is a {checkpoint.Stage} checkpoint, not an autoencoder one.");
        var config = checkpoint.State["decoder_config"]?.Deserialize<LdmDecoderConfig>()
                     ?? throw new TrainingResumeException(path, "it has no decoder configuration.");
        var encoderState = encoder.state_dict()
            .Where(kv => kv.Key.StartsWith("extra_vit.", StringComparison.Ordinal) || kv.Key == "mask_token")
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        CopyInto(encoderState, checkpoint, "encoder.");
        var decoder = new LdmDecoder(config);
        try
        {
            StateDict.Load(decoder, checkpoint.WithPrefix("decoder."), strict: true, path);
            decoder.to(encoder.ResidualEncoder.parameters().First().device);
        }
        catch
        {
            decoder.Dispose();
            throw;
        }
        encoder.eval();
        decoder.eval();
        return decoder;
    }

    /// <summary>Images [indices] as float [B, 3, size, size] in [0, 1] (CPU).</summary>
    static Tensor ReadImages(LabeledImages images, long[] indices, int size, ResizeMode resize)
    {
        using var scope = NewDisposeScope();
        var picked = images.Pixels.index_select(0, tensor(indices));
        return ImageTensors.ToFloat01(picked, size, resize).MoveToOuterDisposeScope();
    }

    /// <summary>Copies <c>{prefix}{key}</c> from the checkpoint into each target tensor (shapes must match).</summary>
    static void CopyInto(Dictionary<string, Tensor> targets, TrainingCheckpoint checkpoint, string prefix)
    {
        var stored = checkpoint.WithPrefix(prefix);
        var missing = targets.Keys.Where(k => !stored.ContainsKey(k)).ToList();
        var unexpected = stored.Keys.Where(k => !targets.ContainsKey(k)).ToList();
        var shapes = targets.Where(kv => stored.TryGetValue(kv.Key, out var s) && !s.shape.SequenceEqual(kv.Value.shape))
                            .Select(kv => $"{prefix}{kv.Key}: checkpoint [{string.Join(",", stored[kv.Key].shape)}] vs model [{string.Join(",", kv.Value.shape)}]").ToList();
        if (missing.Count > 0 || unexpected.Count > 0 || shapes.Count > 0)
            throw new CheckpointMismatchException(checkpoint.Path, missing.Select(k => prefix + k).ToList(), unexpected.Select(k => prefix + k).ToList(), shapes);
        using var _ = no_grad();
        foreach (var (key, target) in targets) target.copy_(stored[key]);
    }
}

/// <summary>Reconstruction quality of the autoencoder on held-out images (images in [0, 1]).</summary>
/// <param name="Psnr">Mean per-image PSNR in dB.</param>
/// <param name="Ssim">Mean per-image SSIM.</param>
/// <param name="L1">Mean absolute error per pixel and channel.</param>
/// <param name="Images">Images evaluated.</param>
public sealed record ReconstructionReport(double Psnr, double Ssim, double L1, int Images)
{
    /// <inheritdoc/>
    public override string ToString() => FormattableString.Invariant($"PSNR {Psnr:F2} dB, SSIM {Ssim:F4}, L1 {L1:F4} on {Images} images");
}

/// <summary>The outcome of <see cref="AutoencoderTraining.Train(SvgEncoder, LabeledImages, AutoencoderTrainingOptions, LdmDecoder?)"/>. Disposing it disposes the decoder when the
/// training built it, and the discriminator; the encoder stays the caller's.</summary>
public sealed class AutoencoderTrainingResult : IDisposable
{
    readonly bool _ownsDecoder;

    internal AutoencoderTrainingResult(SvgEncoder encoder, LdmDecoder decoder, bool ownsDecoder, NLayerDiscriminator? discriminator,
                                       IReadOnlyList<float> losses, ReconstructionReport? validation, AlignmentStatistics? alignment,
                                       bool usedLpips, string lossDescription, string? checkpointPath, long steps, long resumedFromStep, TimeSpan elapsed)
    {
        Encoder = encoder; Decoder = decoder; _ownsDecoder = ownsDecoder; Discriminator = discriminator;
        LossHistory = losses.ToArray(); Validation = validation; Alignment = alignment; UsedLpips = usedLpips;
        LossDescription = lossDescription; CheckpointPath = checkpointPath; Steps = steps; ResumedFromStep = resumedFromStep; Elapsed = elapsed;
    }

    /// <summary>The encoder with its trained residual part (eval mode; <see cref="SvgEncoder.Statistics"/> set when estimated).</summary>
    public SvgEncoder Encoder { get; }

    /// <summary>The trained decoder (eval mode), output range [-1, 1].</summary>
    public LdmDecoder Decoder { get; }

    /// <summary>Encoder and decoder as one <see cref="SvgAutoencoder"/> (official key layout; shares the modules).</summary>
    public SvgAutoencoder ToAutoencoder() => new(Encoder, Decoder);

    /// <summary>The discriminator, when the GAN was on.</summary>
    public NLayerDiscriminator? Discriminator { get; }

    /// <summary>The generator loss of every step from step 1 (resumed runs included).</summary>
    public IReadOnlyList<float> LossHistory { get; }

    /// <summary>Reconstruction PSNR/SSIM on the validation images, when given.</summary>
    public ReconstructionReport? Validation { get; }

    /// <summary>The estimated stored-alignment statistics, when requested.</summary>
    public AlignmentStatistics? Alignment { get; }

    /// <summary>Whether LPIPS was part of the loss.</summary>
    public bool UsedLpips { get; }

    /// <summary>The loss in words (says when LPIPS was off for lack of weights).</summary>
    public string LossDescription { get; }

    /// <summary>The final checkpoint, or null when checkpoints are disabled.</summary>
    public string? CheckpointPath { get; }

    /// <summary>Steps completed in total.</summary>
    public long Steps { get; }

    /// <summary>Steps already done when this run started (0 for a fresh run).</summary>
    public long ResumedFromStep { get; }

    /// <summary>Wall time of this run.</summary>
    public TimeSpan Elapsed { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsDecoder) Decoder.Dispose();
        Discriminator?.Dispose();
    }
}
