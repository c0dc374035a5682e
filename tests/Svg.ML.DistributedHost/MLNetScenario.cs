using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Svg.ML.Diffusion;
using Svg.ML.MLNet;
using static TorchSharp.torch;

namespace Svg.ML.DistributedHost;

/// <summary>
/// The stage-2 scenario through ML.NET: <see cref="Scenarios.FeatureData"/> as an IDataView, fitted with the
/// <c>SvgDiffusion</c> estimator with the settings of <see cref="Scenarios.Diffusion"/>. The estimator's process group
/// is left to detection: the MPI world under <c>mpiexec</c>, one process otherwise.
/// </summary>
public static class MLNetScenario
{
    sealed class Row
    {
        [VectorType(8, 4, 4)] public float[] Features { get; set; } = [];
        public uint Class { get; set; }
    }

    /// <summary>Fits the estimator on 32 rows (<paramref name="batch"/> per rank); the final checkpoint goes to
    /// <paramref name="checkpoints"/>. <paramref name="log"/> gets the trainer's messages.</summary>
    public static SvgGenerator Fit(long steps, int batch, string checkpoints, Action<string>? log = null)
    {
        var ml = new MLContext(seed: 1).RegisterSvg();
        if (log is not null) ml.Log += (_, e) => { if (e.Message.Contains("SvgDiffusionTrainer", StringComparison.Ordinal)) log(e.Message); };
        var (features, labels) = Scenarios.FeatureData(32);
        float[] values;
        using (features) values = features.data<float>().ToArray();
        int size = values.Length / labels.Length;
        var rows = labels.Select((label, i) => new Row { Features = values[(i * size)..((i + 1) * size)], Class = (uint)label }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label", nameof(Row.Class), keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
                      .Fit(data).Transform(data);
        return ml.Transforms.SvgDiffusion(new SvgDiffusionTrainer.Options
        {
            FeatureColumnName = nameof(Row.Features), LabelColumnName = "Label", Model = Scenarios.TinyDiT,
            Steps = steps, BatchSize = batch, LearningRate = 1e-3, EmaDecay = 0.9, Seed = 42,
            CheckpointDirectory = checkpoints, Sampler = new SamplerOptions(Steps: 4, CfgScale: 1.0),
        }).Fit(keyed);
    }

    /// <summary>One sample per class with fixed seeds, [4, 8, 4, 4].</summary>
    public static Tensor Samples(SvgGenerator generator) => generator.Generate([0, 1, 2, 3], [7, 8, 9, 10]);
}
