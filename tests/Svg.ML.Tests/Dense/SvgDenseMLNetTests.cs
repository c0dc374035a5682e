using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Dense;
using Svg.ML.MLNet;
using Svg.ML.MLNet.Dense;
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
}
