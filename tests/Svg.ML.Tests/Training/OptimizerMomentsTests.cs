using Svg.ML.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Training;

public class OptimizerMomentsTests
{
    static void Step(Linear model, optim.Optimizer opt, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        opt.zero_grad();
        nn.functional.mse_loss(model.call(x), y).backward();
        opt.step();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ExportImport_ContinuesBitwise(bool adamW)
    {
        var g = new Generator(11);
        var x = randn(new long[] { 16, 4 }, generator: g);
        var y = randn(new long[] { 16, 3 }, generator: g);
        optim.Optimizer Make(Linear m) => adamW
            ? optim.AdamW(m.parameters(), lr: 1e-2, beta1: 0.9, beta2: 0.999, weight_decay: 0.01)
            : optim.Adam(m.parameters(), lr: 1e-2, beta1: 0.5, beta2: 0.9);
        string[] names = ["weight", "bias"];

        var a = nn.Linear(4, 3);
        var optA = Make(a);
        for (int i = 0; i < 3; i++) Step(a, optA, x, y);
        var exported = OptimizerMoments.Export(optA, names, "opt");
        Assert.Equal(new long[] { 3, 3 }, exported["opt.step"].data<long>().ToArray());

        // A second model with the same weights and a fresh optimiser, restored from the export.
        var b = nn.Linear(4, 3);
        Svg.ML.Checkpoints.StateDict.Load(b, a.state_dict());
        var optB = Make(b);
        OptimizerMoments.Import(optB, names, exported, "opt");

        for (int i = 0; i < 4; i++)
        {
            Step(a, optA, x, y);
            Step(b, optB, x, y);
        }
        TrainingAssert.ModulesBitwiseEqual(a, b);

        // Without the restored moments the trajectories differ (the test can fail).
        var c = nn.Linear(4, 3);
        Svg.ML.Checkpoints.StateDict.Load(c, b.state_dict());
        var optC = Make(c);
        Step(c, optC, x, y);
        Step(b, optB, x, y);
        Assert.False(TrainingAssert.BitwiseEqual(b.weight!, c.weight!));
    }

    [Fact]
    public void Import_ReportsMissingEntries()
    {
        var m = nn.Linear(2, 2);
        var opt = optim.AdamW(m.parameters());
        var e = Assert.Throws<InvalidDataException>(() => OptimizerMoments.Import(opt, ["weight", "bias"], new Dictionary<string, Tensor>(), "opt"));
        Assert.Contains("opt.step", e.Message);
    }
}
