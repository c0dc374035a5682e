using Microsoft.ML;
using Svg.ML.MLNet;
using Xunit;
using Xunit.Abstractions;

namespace Svg.ML.Tests.MLNet;

/// <summary>
/// End to end on real data: Fashion-MNIST PNG files (decoded from the bundled IDX subset) → LoadImages → SvgFeaturize
/// (pooled) → MapValueToKey → an ML.NET multiclass trainer → Evaluate. The encoder is a tiny random-weight SVG
/// encoder, so the accuracy is a plumbing check (features stay aligned with their labels through the batching
/// cursor), not a quality claim.
/// </summary>
public class FashionMnistClassificationTests : IDisposable
{
    readonly ITestOutputHelper _out;
    readonly string _dir = TestImages.TempFolder();

    public FashionMnistClassificationTests(ITestOutputHelper output) => _out = output;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void LoadImages_SvgFeaturize_Trainer_Evaluate_BeatsChanceByFar()
    {
        var train = TestImages.FashionMnistPngs(_dir, 600, train: true);
        var test = TestImages.FashionMnistPngs(_dir, 300, train: false);
        var ml = new MLContext(seed: 1);
        using var encoder = TinyModels.CreateEncoder();
        var trainData = ml.Data.LoadFromEnumerable(train.Select(t => new PathRow { ImagePath = t.Path, Label = t.Label }));
        var testData = ml.Data.LoadFromEnumerable(test.Select(t => new PathRow { ImagePath = t.Path, Label = t.Label }));

        var pipeline = ml.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath))
            .Append(ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options
            {
                InputColumnName = "Image", FeatureMapColumnName = null, PooledColumnName = "Features", Encoder = encoder, BatchSize = 32,
            }))
            .Append(ml.Transforms.Conversion.MapValueToKey("LabelKey", nameof(PathRow.Label)))
            .AppendCacheCheckpoint(ml)
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("LabelKey", "Features"));
        var model = pipeline.Fit(trainData);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(testData), "LabelKey");
        _out.WriteLine($"Fashion-MNIST (600 train / 300 test, tiny random-weight encoder): macro accuracy {metrics.MacroAccuracy:F3}, " +
                       $"micro accuracy {metrics.MicroAccuracy:F3}, log loss {metrics.LogLoss:F3}");
        // 10 balanced classes: chance is 0.1. Features misaligned with their labels would score about that.
        Assert.True(metrics.MacroAccuracy > 0.4, $"macro accuracy {metrics.MacroAccuracy:F3}");
    }
}
