using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Dense;
using Svg.ML.MLNet;
using Svg.ML.MLNet.Dense;
using Svg.ML.Tests.MLNet;
using Svg.ML.Training;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Dense;

/// <summary>The ML.NET layer on the synthetic map of <see cref="DenseHeadTrainingTests"/> (4 classes, features 6×4×4, labels 16×16).</summary>
public class SvgDenseMLNetTests
{
    public sealed class Row
    {
        [VectorType(6, 4, 4)] public float[] Features = [];
        [VectorType(16, 16)] public float[] Label = [];
    }

    public sealed class Output
    {
        [VectorType(16, 16)] public float[] Prediction = [];
    }

    static Row[] Rows(int n, ulong seed)
    {
        var (f, c, _) = DenseHeadTrainingTests.Synthetic(n, seed);
        var fs = f.data<float>().ToArray();
        var cs = c.to(ScalarType.Float32).data<float>().ToArray();
        return Enumerable.Range(0, n).Select(i => new Row
        {
            Features = fs.AsSpan(i * 96, 96).ToArray(),
            Label = cs.AsSpan(i * 256, 256).ToArray(),
        }).ToArray();
    }

    static SvgDenseOptions Options() => new()
    {
        ScoresColumnName = "Scores", ColorImageColumnName = "Colors", BatchSize = 5,
        Training = new DenseHeadTrainingOptions { NumClasses = 4, Steps = 100, BatchSize = 8, LearningRate = 2e-2, WarmupSteps = 5, Seed = 3 },
    };

    [Fact]
    public void Segmentation_FitsTransforms_SavesLoads_AndServesSingleRows()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(64, 1));
        var test = ml.Data.LoadFromEnumerable(Rows(12, 2));
        using var model = ml.Transforms.SvgSegmentation(Options()).Fit(train);
        var scored = model.Transform(test);
        var predictions = scored.GetColumn<float[]>("Prediction").ToArray();
        var labels = test.GetColumn<float[]>("Label").ToArray();
        var metrics = new SegmentationMetrics(4);
        for (int i = 0; i < labels.Length; i++)
            metrics.Update(predictions[i].Select(v => (int)v).ToArray(), labels[i].Select(v => (int)v).ToArray());
        Assert.True(metrics.Compute().MeanIoU > 0.85, $"mIoU {metrics.Compute().MeanIoU:F3}");   // as the TorchSharp-level test

        var scores = scored.GetColumn<float[]>("Scores").First();
        Assert.Equal(4 * 256, scores.Length);
        Assert.Equal(1.0, Enumerable.Range(0, 4).Sum(k => scores[k * 256 + 17]), 1e-5);        // softmax over classes, float32
        Assert.Equal(16, ((ImageDataViewType)scored.Schema["Colors"].Type).Height);
        var image = scored.GetColumn<MLImage>("Colors").First();
        var (r, g, b) = SvgDenseTransformer.Palette((int)predictions[0][0]);
        Assert.Equal(new[] { r, g, b }, image.Pixels.Slice(0, 3).ToArray());

        using var dir = new Training.TempDirectory();
        string path = dir.File("seg.zip");
        SvgModel.Save(ml, model, train.Schema, path);
        var loaded = SvgModel.Load(ml, path, out _);
        var again = loaded.Transform(test).GetColumn<float[]>("Prediction").ToArray();
        for (int i = 0; i < again.Length; i++) Assert.Equal(predictions[i], again[i]);

        var engine = ml.Model.CreatePredictionEngine<Row, Output>(loaded);
        Assert.Equal(predictions[3], engine.Predict(Rows(12, 2)[3]).Prediction);
        (loaded as IDisposable)?.Dispose();
    }

    [Fact]
    public void Depth_FitsAndPredictsMetres_AndBadShapesNameTheColumn()
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows(16, 5).Select(r => new Row { Features = r.Features, Label = r.Label.Select(v => v + 1).ToArray() }).ToArray();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new SvgDenseOptions { Training = new DenseHeadTrainingOptions { Steps = 5, BatchSize = 8, MaxDepth = 5 } };
        using var model = ml.Transforms.SvgDepth(options).Fit(data);
        var depth = model.Transform(data).GetColumn<float[]>("Prediction").First();
        Assert.Equal(256, depth.Length);
        Assert.All(depth, d => Assert.InRange(d, 0f, 5f));
        Assert.Throws<ArgumentException>(() => ml.Transforms.SvgDepth(new SvgDenseOptions { ScoresColumnName = "S" }));
        var e = Assert.Throws<ArgumentException>(() => ml.Transforms.SvgDepth(new SvgDenseOptions { FeatureColumnName = "Nope" }).Fit(data));
        Assert.Contains("Nope", e.Message);
    }

    public sealed class ImageRow
    {
        public string ImagePath = "";
        [VectorType(28, 28)] public float[] Mask = [];
    }

    /// <summary>Fashion-MNIST PNGs with their foreground masks (pixel &gt; 64 → class 1) as targets.</summary>
    static ImageRow[] MaskedImages(string folder, int n)
    {
        Directory.CreateDirectory(folder);
        var files = TestImages.FashionMnistPngs(folder, n, train: true);
        using var data = Svg.ML.Data.FashionMnist.Load(train: true, limit: n);
        return files.Select((f, i) => new ImageRow
        {
            ImagePath = f.Path,
            Mask = data.Pixels[i].contiguous().data<byte>().ToArray().Select(v => v > 64 ? 1f : 0f).ToArray(),
        }).ToArray();
    }

    [Fact]
    public void FromImages_FeaturizesOnceIntoTheCache_CancelsAndResumesToTheUninterruptedResult()
    {
        var ml = new MLContext(seed: 1);
        using var dir = new Training.TempDirectory();
        var data = ml.Data.LoadFromEnumerable(MaskedImages(dir.File("png"), 16));
        var images = ml.Transforms.LoadImages("Image", null, nameof(ImageRow.ImagePath)).Fit(data).Transform(data);
        using var encoder = TinyModels.CreateEncoder();
        var featurizer = ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options { FeatureMapColumnName = "Features", Encoder = encoder }).Fit(images);
        string cache = dir.File("cache");
        SvgDenseOptions Options(string checkpoints, IProgress<TrainingProgress>? progress = null, CancellationToken token = default) => new()
        {
            ImageColumnName = "Image", Featurizer = featurizer, FeatureCacheDirectory = cache, TargetColumnName = nameof(ImageRow.Mask),
            Training = new DenseHeadTrainingOptions
            {
                NumClasses = 2, Steps = 12, BatchSize = 4, LearningRate = 1e-2, WarmupSteps = 2, Seed = 5,
                CheckpointDirectory = checkpoints, CheckpointEvery = 4, Progress = progress, CancellationToken = token,
            },
        };

        // Cancelled after step 5: the features are in the cache, the run's state in a checkpoint.
        using var cts = new CancellationTokenSource();
        var first = new List<TrainingProgress>();
        var stopAt5 = new Recorder(first, r => { if (r.Step == 5) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => ml.Transforms.SvgSegmentation(Options(dir.File("a"), stopAt5, cts.Token)).Fit(images));
        Assert.Equal(Enumerable.Range(1, 5).Select(i => (long)i), first.Select(r => r.Step));
        Assert.Equal(TrainingStage.Segmentation, first[0].Stage);
        var cacheFiles = Directory.GetFiles(cache, "*.safetensors");
        Assert.Single(cacheFiles);
        var written = File.GetLastWriteTimeUtc(cacheFiles[0]);

        // Resumed: continues at step 6, reads the cache (not rewritten), and ends where an uninterrupted run ends.
        var second = new List<TrainingProgress>();
        using var resumed = ml.Transforms.SvgSegmentation(Options(dir.File("a"), new Recorder(second))).Fit(images);
        Assert.Equal(Enumerable.Range(6, 7).Select(i => (long)i), second.Select(r => r.Step));
        Assert.Equal(written, File.GetLastWriteTimeUtc(cacheFiles[0]));
        using var straight = ml.Transforms.SvgSegmentation(Options(dir.File("b"))).Fit(images);
        var featurized = featurizer.Transform(images);
        var a = resumed.Transform(featurized).GetColumn<float[]>("Prediction").ToArray();
        var b = straight.Transform(featurized).GetColumn<float[]>("Prediction").ToArray();
        for (int i = 0; i < a.Length; i++) Assert.Equal(b[i], a[i]);
        foreach (var (x, y) in resumed.Head.parameters().Zip(straight.Head.parameters()))
            Assert.True(x.eq(y).all().item<bool>(), "resumed weights differ from the uninterrupted run's");   // bitwise: same data, order and steps

        var e = Assert.Throws<ArgumentException>(() => ml.Transforms.SvgSegmentation(new SvgDenseOptions
            { FeatureCacheDirectory = cache, Training = new DenseHeadTrainingOptions { NumClasses = 2, Steps = 1 } }).Fit(featurized));
        Assert.Contains("ImageColumnName", e.Message);
    }

    /// <summary>Synchronous progress (System.Progress posts to the thread pool): records each report, then runs <paramref name="then"/>.</summary>
    sealed class Recorder(List<TrainingProgress> seen, Action<TrainingProgress>? then = null) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) { seen.Add(value); then?.Invoke(value); }
    }
}
