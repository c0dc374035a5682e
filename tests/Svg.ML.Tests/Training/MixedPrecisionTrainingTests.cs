using Svg.ML.Diffusion;
using Svg.ML.Runtime;
using Svg.ML.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Training;

[Collection(SerialTrainingCollection.Name)]
public class MixedPrecisionTrainingTests(ITestOutputHelper output)
{
    static SvgDiTConfig Tiny => new(InChannels: 8, HiddenSize: 32, Depth: 2, NumHeads: 2, NumClasses: 4, GridSize: 4);

    static DiffusionDataset Data()
    {
        var g = new Generator(5);
        var labels = Enumerable.Range(0, 16).Select(i => (long)(i % 4)).ToArray();
        var features = (randn([4, 8, 4, 4], generator: g).index_select(0, tensor(labels)) * 2
                        + 0.1 * randn([16, 8, 4, 4], generator: g)).DetachFromDisposeScope();
        return DiffusionDataset.FromFeatures(features, labels, 4);
    }

    static DiffusionTrainingOptions Options(Precision precision, string? dir = null) => new()
    {
        Model = Tiny, Steps = 4, BatchSize = 8, LearningRate = 1e-3, Seed = 42, EmaDecay = 0.9,
        CheckpointDirectory = dir, CheckpointEvery = 0, Precision = precision,
    };

    /// <summary>
    /// A bf16 run keeps float32 weights, EMA and AdamW moments (checked in its checkpoint), and its losses follow the
    /// float32 run's: same initial weights and the same noise (the first loss is even identical: the zero-initialised
    /// output layer predicts exactly 0 in any precision), later ones differ by bf16 rounding of forward and gradients
    /// (measured ~2e-5 relative after 4 steps; bound 1e-2). The bf16 weights must differ from the float32 run's (the
    /// bf16 gradients reached the master) but stay within AdamW's step size of them.
    /// </summary>
    [Fact]
    public void Bf16Training_KeepsFloat32MasterWeightsAndOptimizerState_AndFollowsFloat32()
    {
        var data = Data();
        using var dir = new TempDirectory();
        using var fp32 = DiffusionTraining.Train(data, Options(Precision.Fp32));
        using var bf16 = DiffusionTraining.Train(data, Options(Precision.Bf16, dir.Path));

        Assert.All(bf16.Model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(bf16.EmaModel.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        using var checkpoint = TrainingCheckpoint.Load(bf16.CheckpointPath!);
        var moments = checkpoint.Tensors.Where(kv => kv.Key.StartsWith("optimizer.", StringComparison.Ordinal) && !kv.Key.EndsWith(".step")).ToList();
        Assert.NotEmpty(moments);
        Assert.All(moments, kv => Assert.Equal(ScalarType.Float32, kv.Value.dtype));
        Assert.All(checkpoint.WithPrefix("model."), kv => Assert.Equal(ScalarType.Float32, kv.Value.dtype));

        for (int i = 0; i < 4; i++)
            output.WriteLine($"step {i + 1}: loss fp32 {fp32.LossHistory[i]:F5}, bf16 {bf16.LossHistory[i]:F5}");
        for (int i = 0; i < 4; i++) Assert.InRange(Math.Abs(bf16.LossHistory[i] / fp32.LossHistory[i] - 1), 0, 1e-2);
        // The weights moved (the update reached the float32 master) and stay near the float32 run's.
        var w16 = bf16.Model.named_parameters().First(p => p.name == "blocks.0.attn.qkv.weight").parameter;
        var w32 = fp32.Model.named_parameters().First(p => p.name == "blocks.0.attn.qkv.weight").parameter;
        double diff = (w16 - w32).abs().max().item<float>();
        output.WriteLine($"max |w_bf16 − w_fp32| after 4 steps: {diff:E2} (lr 1e-3)");
        Assert.True(diff > 0, "the bf16 run should not be bitwise the float32 run");
        Assert.True(diff < 1e-2, "AdamW moves each weight by about lr per step at most: two runs of 4 steps differ by < 2·4·lr (+25 %)");
    }
}
