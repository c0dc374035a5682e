using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.Autoencoder;
using Svg.ML.Diffusion;
using Svg.ML.MLNet;
using Svg.ML.Training;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.MLNet;

public class SvgDiffusionTrainerTests : IDisposable
{
    readonly string _dir = TestImages.TempFolder();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    const int C = 8, G = 2;

    public sealed class FeatureRow
    {
        [VectorType(C, G, G)] public float[] Features { get; set; } = Array.Empty<float>();
        public uint Class { get; set; }
    }

    public sealed class Request
    {
        public uint Class { get; set; }
        public long Seed { get; set; }
    }

    public sealed class Generated
    {
        public float[] GeneratedFeatures { get; set; } = Array.Empty<float>();
    }

    /// <summary>Two classes whose features sit around +1 and −1 (small noise).</summary>
    static List<FeatureRow> TwoClusters(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(i =>
        {
            uint cls = (uint)(i % 2);
            float centre = cls == 0 ? 1f : -1f;
            return new FeatureRow
            {
                Class = cls,
                Features = Enumerable.Range(0, C * G * G).Select(_ => centre + 0.1f * (float)(rng.NextDouble() * 2 - 1)).ToArray(),
            };
        }).ToList();
    }

    static SvgDiffusionTrainer.Options Tiny(long steps) => new()
    {
        FeatureColumnName = "Features",
        LabelColumnName = "Label",
        HiddenSize = 32, Depth = 2, NumHeads = 2,
        Steps = steps, BatchSize = 32, LearningRate = 3e-3, EmaDecay = 0.9, ClassDropout = 0.1,
        Sampler = new SamplerOptions(Steps: 10, CfgScale: 1.0),
        SeedColumnName = "Seed",
        Seed = 5,
    };

    [Fact]
    public void Fit_LearnsTheClassConditionalDistribution_AndReportsProgress()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("SvgDiffusionTrainer")) lock (messages) messages.Add(e.Message); };
        ml.RegisterSvg();
        var data = ml.Data.LoadFromEnumerable(TwoClusters(256, 1));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label", nameof(FeatureRow.Class)).Fit(data);
        var reports = new List<TrainingProgress>();
        var o = Tiny(120);
        o.Progress = new Progress(reports);
        using var generator = ml.Transforms.SvgDiffusion(o).Fit(keys.Transform(data));

        Assert.Equal(120, reports.Count);
        Assert.Equal(120, reports[^1].Step);
        Assert.True(reports[^1].SmoothedLoss < reports[0].Loss, $"loss {reports[0].Loss} → {reports[^1].SmoothedLoss}");
        Assert.Contains(messages, m => m.Contains("training on 256 samples"));
        Assert.Equal(new[] { C, G, G }, generator.FeatureShape);
        Assert.Equal(2, generator.NumClasses);

        // Class 0 of the key mapping is the first value seen (Class 0 → features ≈ +1).
        using var f0 = generator.Generate(Enumerable.Repeat(0, 16).ToArray());
        using var f1 = generator.Generate(Enumerable.Repeat(1, 16).ToArray());
        double m0 = f0.mean().item<float>(), m1 = f1.mean().item<float>();
        Console.WriteLine($"generated means: class 0 {m0:F3}, class 1 {m1:F3}");
        Assert.True(m0 > 0.6 && m1 < -0.6, $"generated means: class 0 {m0:F3}, class 1 {m1:F3}");
    }

    sealed class Progress(List<TrainingProgress> list) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) { lock (list) list.Add(value); }
    }

    [Fact]
    public void Generator_AsTransformer_MatchesTheDirectApi_WhateverTheBatch_AndSavesWithItsChain()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TwoClusters(64, 2));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label", nameof(FeatureRow.Class)).Fit(data);
        var decoderT = ml.Transforms.SvgDecode(new SvgDecoderEstimator.Options
        {
            InputColumnName = "Features", OutputColumnName = "Decoded",
            Decoder = new LdmDecoder(new LdmDecoderConfig(Ch: 32, ChMult: [1, 1], NumResBlocks: 0, AttnResolutions: [], ZChannels: C, Resolution: 4)),
        }).Fit(data);
        var o = Tiny(20);
        o.Decoder = decoderT;
        o.GenerationBatchSize = 3;
        using var generator = new SvgDiffusionTrainer(ml, o).Fit(keys.Transform(data));
        Assert.True(generator.CanDecode);

        var requests = Enumerable.Range(0, 7).Select(i => new Request { Class = (uint)(i % 2), Seed = 100 + i }).ToList();
        var requestView = ml.Data.LoadFromEnumerable(requests);
        var chain = new TransformerChain<ITransformer>(keys, generator);
        var output = chain.Transform(requestView);
        Assert.Equal(new[] { C, G, G }, ((VectorDataViewType)output.Schema["GeneratedFeatures"].Type).Dimensions.ToArray());
        Assert.Equal(new Microsoft.ML.Transforms.Image.ImageDataViewType(4, 4), output.Schema["GeneratedImage"].Type);
        var rows = ml.Data.CreateEnumerable<Generated>(output, reuseRowObject: false).ToList();

        // Direct API: same labels (key value − 1) and seeds.
        using var direct = generator.Generate(requests.Select(r => (int)r.Class).ToArray(), requests.Select(r => r.Seed).ToArray());
        for (int i = 0; i < rows.Count; i++)
        {
            using var d = direct[i];
            var expected = d.data<float>().ToArray();
            Assert.True(expected.Zip(rows[i].GeneratedFeatures, (a, b) => Math.Abs(a - b)).Max() <= 1e-5, $"row {i}");
        }

        // PredictionEngine (single rows) agrees.
        var engine = ml.Model.CreatePredictionEngine<Request, Generated>(chain);
        var p = engine.Predict(requests[4]);
        Assert.True(p.GeneratedFeatures.Zip(rows[4].GeneratedFeatures, (a, b) => Math.Abs(a - b)).Max() <= 1e-5);

        // Images: the direct API gives the decoded features.
        var images = generator.GenerateImages(new[] { 1 }, new long[] { 104 });
        Assert.Equal(4, images[0].Width);

        // Save the chain (ML.NET key mapping + generator with its decoder) and load it back: identical outputs.
        string path = Path.Combine(_dir, "generator.zip");
        SvgModel.Save(ml, chain, requestView.Schema, path);
        var loaded = SvgModel.Load(new MLContext(seed: 3), path, out _);
        var again = ml.Data.CreateEnumerable<Generated>(loaded.Transform(requestView), reuseRowObject: false).ToList();
        for (int i = 0; i < rows.Count; i++) Assert.Equal(rows[i].GeneratedFeatures, again[i].GeneratedFeatures);
        var reloaded = (SvgGenerator)((IEnumerable<ITransformer>)loaded).Last();
        Assert.Equal(generator.Sampler, reloaded.Sampler);
    }

    [Fact]
    public void Fit_FromImages_UsesTheFeatureCache_AndResumesFromCheckpoints_AndCancels()
    {
        var ml = new MLContext(seed: 1);
        var files = TestImages.FashionMnistPngs(_dir, 24, train: true);
        var data = ml.Data.LoadFromEnumerable(files.Select(f => new PathRow { ImagePath = f.Path, Label = f.Label % 2 }));
        using var encoder = TinyModels.CreateEncoder();
        var images = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Fit(data);
        var keyed = ml.Transforms.Conversion.MapValueToKey("LabelKey", nameof(PathRow.Label)).Fit(images.Transform(data));
        var prepared = keyed.Transform(images.Transform(data));
        var featurizer = ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options { FeatureMapColumnName = "Features", Encoder = encoder }).Fit(prepared);
        string cache = Path.Combine(_dir, "cache"), checkpoints = Path.Combine(_dir, "checkpoints");
        SvgDiffusionTrainer.Options Options(long steps, IProgress<TrainingProgress>? progress = null, CancellationToken token = default) => new()
        {
            ImageColumnName = "Image", Featurizer = featurizer, FeatureCacheDirectory = cache, LabelColumnName = "LabelKey",
            HiddenSize = 32, Depth = 1, NumHeads = 2, Steps = steps, BatchSize = 8, LearningRate = 1e-3, EmaDecay = 0.9,
            CheckpointDirectory = checkpoints, CheckpointEvery = 5, Seed = 3, Progress = progress, CancellationToken = token,
            Sampler = new SamplerOptions(Steps: 2),
        };

        var first = new List<TrainingProgress>();
        using (var g1 = new SvgDiffusionTrainer(ml, Options(10, new Progress(first))).Fit(prepared))
            Assert.Equal(new[] { TinyModels.Channels, 4, 4 }, g1.FeatureShape);
        Assert.Single(Directory.GetFiles(cache, "*.safetensors"));
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), first.Select(r => r.Step));

        // Longer run: resumes at step 10 from the checkpoint and reads the cached features.
        var second = new List<TrainingProgress>();
        var cachedBefore = Directory.GetFiles(cache).Select(File.GetLastWriteTimeUtc).ToArray();
        using (new SvgDiffusionTrainer(ml, Options(15, new Progress(second))).Fit(prepared)) { }
        Assert.Equal(Enumerable.Range(11, 5).Select(i => (long)i), second.Select(r => r.Step));
        Assert.Equal(cachedBefore, Directory.GetFiles(cache).Select(File.GetLastWriteTimeUtc).ToArray());

        // Cancellation stops after the current step.
        using var cts = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => new SvgDiffusionTrainer(ml, Options(30, new CancelAfterFirst(cts), cts.Token)).Fit(prepared));
    }

    sealed class CancelAfterFirst(CancellationTokenSource cts) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => cts.Cancel();
    }

    [Fact]
    public void Labels_MustBeKeys_AndGenerationLabelsOutOfRangeFailNamingTheRow()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TwoClusters(32, 3));
        var o = Tiny(2);
        o.LabelColumnName = nameof(FeatureRow.Class);
        var e = Assert.Throws<ArgumentException>(() => new SvgDiffusionTrainer(ml, o).Fit(data));
        Assert.Contains("'Class'", e.Message);
        Assert.Contains("key", e.Message);

        var keys = ml.Transforms.Conversion.MapValueToKey("Label", nameof(FeatureRow.Class)).Fit(data);
        using var generator = new SvgDiffusionTrainer(ml, Tiny(2)).Fit(keys.Transform(data));
        // Integer class indices also work; 5 is outside the 2 classes.
        var requests = ml.Data.LoadFromEnumerable(new[] { new IndexRequest { Label = 1, Seed = 1 }, new IndexRequest { Label = 5, Seed = 2 } });
        var bad = Assert.Throws<SvgDataException>(() => ml.Data.CreateEnumerable<Generated>(generator.Transform(requests), false).ToList());
        Assert.Equal("Label", bad.ColumnName);
        Assert.Equal(1, bad.Row);
    }

    public sealed class IndexRequest
    {
        public int Label { get; set; }
        public long Seed { get; set; }
    }
}
