using Microsoft.ML;
using Svg.ML.Diffusion;
using Svg.ML.MLNet;
using Xunit;

namespace Svg.ML.Tests.MLNet;

/// <summary>
/// Runs alone: model initialisation draws from torch's process-wide RNG (seeded by the training core), which test
/// classes running in parallel would also draw from.
/// </summary>
[CollectionDefinition(nameof(GlobalTorchRng), DisableParallelization = true)]
public sealed class GlobalTorchRng { }

/// <summary>MLContext settings: GPU device id and CPU fallback, seed, and the catalog registration they need.</summary>
[Collection(nameof(GlobalTorchRng))]
public class SvgContextTests : IDisposable
{
    readonly string _dir = TestImages.TempFolder();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    IDataView Images(MLContext ml)
    {
        var rows = Enumerable.Range(0, 3).Select(i =>
        {
            string p = Path.Combine(_dir, $"c{i}.png");
            TestImages.WriteRgbaPng(p, 32, 32, TestImages.Pattern(32, 32, i));
            return new PathRow { ImagePath = p };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        return ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Fit(data).Transform(data);
    }

    [Fact]
    public void GpuDeviceId_IsHonoured_ThroughRegisteredCatalogsAndDirectEstimators()
    {
        // The tests run on TorchSharp-cpu: asking for GPU 0 without fallback must fail, with fallback run on the CPU.
        using var encoder = TinyModels.CreateEncoder();
        var strict = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false }.RegisterSvg();
        var data = Images(strict);
        var e = Assert.Throws<InvalidOperationException>(() =>
            strict.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options { Encoder = encoder }).Fit(data));
        Assert.Contains("GPU device 0", e.Message);
        Assert.Throws<InvalidOperationException>(() =>
            new SvgFeaturizerEstimator(new MLContext { GpuDeviceId = 0, FallbackToCpu = false }, new SvgFeaturizerEstimator.Options { Encoder = encoder }).Fit(data));

        var lenient = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true }.RegisterSvg();
        using var t = lenient.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options { Encoder = encoder }).Fit(data);
        Assert.Equal(TorchSharp.DeviceType.CPU, t.Device.type);

        // Options override the context.
        Assert.Throws<InvalidOperationException>(() =>
            lenient.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options { Encoder = encoder, FallbackToCpu = false }).Fit(data));
    }

    public sealed class FeatureRow
    {
        [Microsoft.ML.Data.VectorType(4, 2, 2)] public float[] Features { get; set; } = Array.Empty<float>();
        public uint Class { get; set; }
    }

    [Fact]
    public void TheMLContextSeed_MakesTrainingAndGenerationReproducible()
    {
        float[] Run(int seed)
        {
            var ml = new MLContext(seed).RegisterSvg();
            var rng = new Random(0);
            var rows = Enumerable.Range(0, 32).Select(i => new FeatureRow
            {
                Class = (uint)(i % 2), Features = Enumerable.Range(0, 16).Select(_ => (float)rng.NextDouble()).ToArray(),
            }).ToList();
            var data = ml.Data.LoadFromEnumerable(rows);
            var keyed = ml.Transforms.Conversion.MapValueToKey("Label", nameof(FeatureRow.Class)).Fit(data).Transform(data);
            using var g = ml.Transforms.SvgDiffusion(new SvgDiffusionTrainer.Options
            {
                HiddenSize = 16, Depth = 1, NumHeads = 2, Steps = 3, BatchSize = 8, Sampler = new SamplerOptions(Steps: 2),
            }).Fit(keyed);
            using var x = g.Generate(new[] { 0, 1 });
            return x.data<float>().ToArray();
        }
        var a = Run(7);
        Assert.Equal(a, Run(7));
        Assert.NotEqual(a, Run(8));
    }
}
