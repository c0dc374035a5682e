using Svg.ML.Autoencoder;
using Svg.ML.Data;
using Svg.ML.Metrics;
using Svg.ML.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.PaperClaims;

/// <summary>
/// The baseline's encoder: the LDM convolutional encoder (<c>ldm.modules.diffusionmodules.model.Encoder</c>, the
/// encoder half of the SD autoencoders) without the KL head, built from the same blocks as <see cref="LdmDecoder"/>,
/// mirroring the decoder's levels:
/// <code>
/// h = conv_in(x)
/// for level = 0 … L-1:  h = down[level].block(h); if level ≠ L-1: h = down[level].downsample(h)   (3×3 conv, stride 2)
/// h = mid.block_2(mid.attn_1(mid.block_1(h)))
/// z = conv_out(swish(norm_out(h)))                                  [B, z_channels, H / 2^(L-1), W / 2^(L-1)]
/// </code>
/// Trained from scratch, it gives a latent of exactly the SVG latent's shape.
/// </summary>
public sealed class ConvEncoder : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly Conv2d conv_in;
    readonly ModuleList<nn.Module<Tensor, Tensor>> down;
    readonly LdmResnetBlock mid_block_1;
    readonly LdmAttnBlock mid_attn_1;
    readonly LdmResnetBlock mid_block_2;
    readonly GroupNorm norm_out;
    readonly Conv2d conv_out;
#pragma warning restore IDE1006

    /// <summary>The decoder configuration this encoder mirrors (widths, levels, latent channels).</summary>
    public LdmDecoderConfig Config { get; }

    /// <summary>Builds the encoder mirroring <paramref name="config"/>: width <c>Ch·ChMult[level]</c> at each level,
    /// one ResNet block per level, attention in the middle, <c>ZChannels</c> output channels.</summary>
    public ConvEncoder(LdmDecoderConfig config) : base(nameof(ConvEncoder))
    {
        Config = config;
        int levels = config.NumResolutions;
        conv_in = nn.Conv2d(3, config.Ch * config.ChMult[0], 3, padding: 1);
        var stages = new List<nn.Module<Tensor, Tensor>>();
        int blockIn = config.Ch * config.ChMult[0];
        for (int level = 0; level < levels; level++)
        {
            int blockOut = config.Ch * config.ChMult[level];
            var parts = new List<nn.Module<Tensor, Tensor>> { new LdmResnetBlock(blockIn, blockOut) };
            blockIn = blockOut;
            if (level != levels - 1) parts.Add(new Downsample(blockIn));
            stages.Add(nn.Sequential(parts.ToArray()));
        }
        down = nn.ModuleList(stages.ToArray());
        mid_block_1 = new LdmResnetBlock(blockIn, blockIn);
        mid_attn_1 = new LdmAttnBlock(blockIn);
        mid_block_2 = new LdmResnetBlock(blockIn, blockIn);
        norm_out = nn.GroupNorm(LdmDecoderConfig.NormGroups, blockIn, eps: LdmDecoderConfig.NormEps);
        conv_out = nn.Conv2d(blockIn, config.ZChannels, 3, padding: 1);
        RegisterComponents();
        using (no_grad())   // TorchSharp leaves GroupNorm's affine parameters uninitialised: PyTorch's ones / zeros
        {
            norm_out.weight!.fill_(1.0);
            norm_out.bias!.zero_();
        }
    }

    /// <summary>RGB in [0, 1] → latent (the input is mapped to [-1, 1] as the decoder's target is).</summary>
    public override Tensor forward(Tensor rgb01)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.call(rgb01 * 2 - 1);
        foreach (var stage in down) h = stage.call(h);
        h = mid_block_2.call(mid_attn_1.call(mid_block_1.call(h)));
        h = norm_out.call(h);
        return conv_out.call(h * sigmoid(h)).MoveToOuterDisposeScope();
    }

    /// <summary>LDM <c>Downsample</c> with conv: pad (0, 1, 0, 1), then a 3×3 stride-2 convolution.</summary>
    sealed class Downsample : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        readonly Conv2d conv;
#pragma warning restore IDE1006

        public Downsample(int channels) : base(nameof(Downsample))
        {
            conv = nn.Conv2d(channels, channels, 3, stride: 2, padding: 0L);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => conv.call(nn.functional.pad(x, new long[] { 0, 1, 0, 1 }));
    }
}

/// <summary>
/// Stage 1 of the baseline: the <see cref="ConvEncoder"/> and an <see cref="LdmDecoder"/> trained jointly from scratch
/// with exactly the objective, optimiser, data order and initialisation streams of Svg.ML's
/// <see cref="AutoencoderTraining"/> (L1 loss Σ|x − x̂| / B on x = 2·rgb − 1; Adam with the given learning rate and betas;
/// epoch permutations from <see cref="TrainingRandom.EpochPermutation"/>; the decoder built under the same init seed),
/// so that the two arms differ only in the encoder.
/// </summary>
public static class PlainAutoencoderTraining
{
    /// <summary>Trains a fresh encoder and decoder on <paramref name="images"/> for the steps and batch of <paramref name="options"/>.</summary>
    public static (ConvEncoder Encoder, LdmDecoder Decoder, float[] Losses) Train(
        LabeledImages images, LdmDecoderConfig decoderConfig, AutoencoderTrainingOptions options, IProgress<TrainingProgress>? progress = null)
    {
        long initSeed = TrainingRandom.Derive(options.Seed, TrainingRandom.Init);
        var decoder = TrainingRandom.WithGlobalSeed(initSeed, () => new LdmDecoder(decoderConfig));
        var encoder = TrainingRandom.WithGlobalSeed(initSeed + 2, () => new ConvEncoder(decoderConfig));
        var device = options.Device ?? CPU;
        encoder.to(device);
        decoder.to(device);
        var parameters = encoder.parameters().Concat(decoder.parameters()).ToList();
        using var optimizer = optim.Adam(parameters, lr: options.LearningRate, beta1: options.Beta1, beta2: options.Beta2,
                                         eps: options.Epsilon, weight_decay: options.WeightDecay);
        using var callerRng = get_rng_state();
        manual_seed(TrainingRandom.Derive(options.Seed, TrainingRandom.Global));
        int size = options.ImageSize ?? images.Height;
        int batch = Math.Min(options.BatchSize, images.Count);
        long stepsPerEpoch = Math.Max(1, images.Count / batch);
        long total = options.Steps ?? throw new ArgumentException("Steps must be set.");
        var losses = new float[total];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double smoothed = 0;
        int cachedEpoch = -1;
        long[] order = [];
        encoder.train();
        decoder.train();
        try
        {
            for (long step = 0; step < total; step++)
            {
                int epoch = (int)(step / stepsPerEpoch);
                long position = step % stepsPerEpoch;
                if (epoch != cachedEpoch)
                {
                    order = TrainingRandom.EpochPermutation(options.Seed, epoch, images.Count);
                    cachedEpoch = epoch;
                }
                var indices = order.AsSpan((int)(position * batch), batch).ToArray();
                using (var scope = NewDisposeScope())
                {
                    var rgb = ImageTensors.ToFloat01(images.Pixels.index_select(0, tensor(indices)), size, options.Resize).to(device);
                    var x = rgb * 2 - 1;
                    var xRec = decoder.call(encoder.call(rgb));
                    var loss = (x - xRec).abs().sum() / x.shape[0];
                    losses[step] = loss.item<float>();
                    if (!float.IsFinite(losses[step])) throw new InvalidOperationException($"plain autoencoder diverged at step {step + 1}.");
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                }
                smoothed = step == 0 ? losses[step] : 0.98 * smoothed + 0.02 * losses[step];
                double rate = (step + 1) / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
                progress?.Report(new TrainingProgress(TrainingStage.Autoencoder, step + 1, total, epoch, losses[step], smoothed, rate,
                    TimeSpan.FromSeconds((total - step - 1) / rate), options.LearningRate, clock.Elapsed));
            }
        }
        finally { set_rng_state(callerRng); }
        encoder.eval();
        decoder.eval();
        return (encoder, decoder, losses);
    }

    /// <summary>Reconstruction PSNR/SSIM/L1 on up to <paramref name="maxImages"/> images (as <see cref="AutoencoderTraining.Evaluate"/>).</summary>
    public static ReconstructionReport Evaluate(ConvEncoder encoder, LdmDecoder decoder, LabeledImages images, int maxImages, int batchSize, int size)
    {
        int count = Math.Min(maxImages, images.Count);
        var device = decoder.parameters().First().device;
        double psnr = 0, ssim = 0, l1 = 0;
        using var _ = no_grad();
        for (int start = 0; start < count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            int n = Math.Min(batchSize, count - start);
            var rgb = images.Images(start, n, size, ResizeMode.Stretch).to(device);
            var rec = ((decoder.call(encoder.call(rgb)) + 1) / 2).clamp(0, 1);
            psnr += Psnr.PerImage(rgb, rec).sum().item<double>();
            ssim += Ssim.PerImage(rgb, rec).sum().item<double>();
            l1 += (rgb - rec).abs().flatten(1).mean([1]).sum().item<float>();
        }
        return new ReconstructionReport(psnr / count, ssim / count, l1 / count, count);
    }
}
