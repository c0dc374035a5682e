using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Svg.Quickstart;

/// <summary>The outcome of a linear probe.</summary>
/// <param name="Accuracy">Test accuracy (micro: correct / total).</param>
/// <param name="MacroAccuracy">Mean of the per-class accuracies.</param>
/// <param name="Dimensions">Feature dimension.</param>
/// <param name="TrainRows">Training rows.</param>
/// <param name="TestRows">Test rows.</param>
public sealed record ProbeResult(double Accuracy, double MacroAccuracy, int Dimensions, int TrainRows, int TestRows)
{
    /// <inheritdoc/>
    public override string ToString() =>
        FormattableString.Invariant($"{Accuracy * 100:F1} % ({Dimensions}-d, {TrainRows} train / {TestRows} test)");
}

/// <summary>
/// Linear probe with ML.NET: per-feature mean/variance normalisation, then multinomial logistic regression
/// (<c>LbfgsMaximumEntropy</c>) fitted on training features and scored on test features.
/// </summary>
public static class LinearProbe
{
    sealed class Row
    {
        public uint Label { get; set; }
        public float[] Features { get; set; } = [];
    }

    /// <summary>Fits on (<paramref name="trainFeatures"/> [N, D], labels) and evaluates on the test set.</summary>
    public static ProbeResult Run(Tensor trainFeatures, IReadOnlyList<long> trainLabels, Tensor testFeatures, IReadOnlyList<long> testLabels, int seed = 0)
    {
        int dim = (int)trainFeatures.shape[1];
        if (testFeatures.shape[1] != dim) throw new ArgumentException("train and test features differ in dimension.");
        var ml = new MLContext(seed);
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dim);
        var train = ml.Data.LoadFromEnumerable(Rows(trainFeatures, trainLabels), schema);
        var test = ml.Data.LoadFromEnumerable(Rows(testFeatures, testLabels), schema);

        var pipeline = ml.Transforms.Conversion.MapValueToKey("LabelKey", nameof(Row.Label))
            .Append(ml.Transforms.NormalizeMeanVariance(nameof(Row.Features)))
            .AppendCacheCheckpoint(ml)
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("LabelKey", nameof(Row.Features)));
        var model = pipeline.Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test), "LabelKey");
        return new ProbeResult(metrics.MicroAccuracy, metrics.MacroAccuracy, dim, trainLabels.Count, testLabels.Count);
    }

    static List<Row> Rows(Tensor features, IReadOnlyList<long> labels)
    {
        if (features.shape[0] != labels.Count) throw new ArgumentException($"{features.shape[0]} feature rows but {labels.Count} labels.");
        using var cpu = features.detach().to(ScalarType.Float32).cpu().contiguous();
        float[] all = cpu.data<float>().ToArray();
        int dim = (int)features.shape[1];
        var rows = new List<Row>(labels.Count);
        for (int i = 0; i < labels.Count; i++)
            rows.Add(new Row { Label = (uint)labels[i], Features = all.AsSpan(i * dim, dim).ToArray() });
        return rows;
    }
}
