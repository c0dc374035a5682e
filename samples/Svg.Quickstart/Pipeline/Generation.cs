using Svg.ML.Autoencoder;
using Svg.ML.Diffusion;
using Svg.ML.Encoders;
using Svg.ML.Metrics;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.Quickstart;

/// <summary>Class-conditional sampling: noise → DiT flow ODE (with guidance) → de-normalised latents → decoder → images.</summary>
public static class Generation
{
    /// <summary>
    /// Samples one latent per label, <c>[N, C, h, w]</c> on the CPU (de-normalised: the encoder's feature space).
    /// Sample i starts from noise drawn with seed <paramref name="seed"/> + i, so it does not depend on the batching.
    /// Guidance uses the null class when the model was trained with label dropout. With <paramref name="precision"/>
    /// bf16 the DiT runs in a bf16 copy of its weights (noise, time grid and ODE state stay float32).
    /// </summary>
    public static Tensor SampleLatents(SvgDiT model, FeatureNormalizer normalizer, IReadOnlyList<int> labels, long seed,
                                       SamplerOptions sampler, int batchSize = 64, Precision precision = Precision.Fp32)
    {
        var config = model.Config;
        var device = model.parameters().First().device;
        using var copy = precision == Precision.Fp32 ? null
            : new ComputeCopy<SvgDiT>(model, () => Svg.ML.Training.TrainingRandom.WithGlobalSeed(0, () => new SvgDiT(config)),
                                      precision.ComputeType(), device);
        copy?.Module.eval();
        var sampling = new Sampler(copy?.Module ?? model);
        bool guided = config.ClassDropoutProb > 0 && !(sampler.CfgScale == 1 && sampler.ResolvedGuidance.Mode == GuidanceMode.Constant);
        var parts = new List<Tensor>();
        try
        {
            using var _ = no_grad();
            for (int start = 0; start < labels.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                int n = Math.Min(batchSize, labels.Count - start);
                var noise = new Tensor[n];
                for (int i = 0; i < n; i++)
                {
                    using var g = new Generator(unchecked((ulong)(seed + start + i)));
                    noise[i] = randn(new long[] { 1, config.NumTokens, config.InChannels }, generator: g);
                }
                var z0 = cat(noise, 0).to(device);
                var y = tensor(labels.Skip(start).Take(n).Select(l => (long)l).ToArray(), device: device);
                var yNull = guided ? Sampler.NullLabels(y, config.NullClass) : null;
                var tokens = sampling.Sample(z0, y, yNull, sampler);
                var latents = LatentTokens.ToLatent(normalizer.Denormalize(tokens), config.GridSize, config.GridSize);
                parts.Add(latents.cpu().MoveToOuterDisposeScope());
            }
            return cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>Latents [N, C, h, w] → RGB images [N, 3, H, W] in [0, 1] on the CPU, in batches, without gradients.</summary>
    public static Tensor Decode(LdmDecoder decoder, Tensor latents, int batchSize = 64)
    {
        var device = decoder.parameters().First().device;
        var parts = new List<Tensor>();
        try
        {
            using var _ = no_grad();
            for (long start = 0; start < latents.shape[0]; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var z = latents.narrow(0, start, Math.Min(batchSize, latents.shape[0] - start)).to(device);
                parts.Add(((decoder.forward(z) + 1) / 2).clamp(0, 1).cpu().MoveToOuterDisposeScope());
            }
            return cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>Labels 0, 1, …, k−1, 0, 1, … (<paramref name="count"/> of them): every class equally often.</summary>
    public static int[] BalancedLabels(int count, int numClasses) => Enumerable.Range(0, count).Select(i => i % numClasses).ToArray();

    /// <summary>Labels for a grid with one row per class and <paramref name="columns"/> samples per row.</summary>
    public static int[] GridLabels(int numClasses, int columns) =>
        Enumerable.Range(0, numClasses).SelectMany(c => Enumerable.Repeat(c, columns)).ToArray();
}

/// <summary>
/// Fréchet distance over ResNet18 features: ML.NET's ImageNet ResNet18 (the DnnImageFeaturizer network), images
/// resized to <see cref="InputSize"/> px, the global average of stage 4 (512-d). Every result carries the encoder's name.
/// </summary>
public static class FrechetEvaluation
{
    /// <summary>Input size of the feature network (Fashion-MNIST holds 28 px of information; 64 px keeps it cheap).</summary>
    public const int InputSize = 64;

    /// <summary>The name reported with every distance.</summary>
    public static string EncoderName(ResNet18 resnet) => $"{resnet.Name}, stage-4 average 512-d at {InputSize} px";

    /// <summary>Features [N, 512] (CPU) of RGB images in [0, 1], in batches, without gradients.</summary>
    public static Tensor Features(ResNet18 resnet, Tensor images01, int batchSize = 64)
    {
        var device = resnet.mean_image.device;
        var parts = new List<Tensor>();
        try
        {
            using var _ = no_grad();
            for (long start = 0; start < images01.shape[0]; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var x = images01.narrow(0, start, Math.Min(batchSize, images01.shape[0] - start)).to(device);
                x = Svg.ML.Data.ImageTensors.Resize(x, InputSize, InputSize, Svg.ML.Data.ResizeMode.Stretch);
                parts.Add(resnet.EncodePooled(resnet.Preprocess(x)).cpu().MoveToOuterDisposeScope());
            }
            return cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>FD between two feature sets [N, 512] computed by <see cref="Features"/>.</summary>
    public static FrechetDistanceResult Compute(ResNet18 resnet, Tensor featuresA, Tensor featuresB) =>
        FrechetDistance.Compute(featuresA, featuresB, EncoderName(resnet));
}
