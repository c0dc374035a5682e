using Svg.ML.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Training;

public class EmaTests
{
    sealed class Net : nn.Module<Tensor, Tensor>
    {
        public readonly Linear fc;
        public readonly BatchNorm1d bn;
        public Net() : base("Net")
        {
            fc = nn.Linear(3, 2);
            bn = nn.BatchNorm1d(2);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => bn.call(fc.call(x));
    }

    static void Fill(Net net, float value)
    {
        using var _ = no_grad();
        foreach (var p in net.parameters()) p.fill_(value);
    }

    [Fact]
    public void StartsAsACopy_ThenAveragesParameters_AndCopiesBuffers()
    {
        var model = new Net();
        var shadow = new Net();
        Fill(model, 2f);
        var ema = new Ema<Net>(model, shadow, decay: 0.9);
        foreach (var p in shadow.parameters())
        {
            Assert.False(p.requires_grad);
            Assert.True(p.eq(2f).all().item<bool>());
        }

        // Constant target p1 = 5: after n updates, ema = p1 + 0.9ⁿ (p0 − p1).
        Fill(model, 5f);
        for (int n = 1; n <= 4; n++)
        {
            ema.Update();
            double expected = 5 + Math.Pow(0.9, n) * (2 - 5);
            foreach (var p in shadow.parameters())
                Assert.True((p - expected).abs().max().item<float>() < 1e-6, $"update {n}: {p.max().item<float>()} vs {expected}");
        }

        // Buffers are copied, not averaged: a training-mode forward changes the model's running statistics.
        model.train();
        using (var x = randn(8, 3)) model.call(x).Dispose();
        ema.Update();
        Assert.True(TrainingAssert.BitwiseEqual(model.bn.running_mean!, shadow.bn.running_mean!));
        Assert.True(TrainingAssert.BitwiseEqual(model.bn.running_var!, shadow.bn.running_var!));
        Assert.False(shadow.training);
    }

    [Fact]
    public void UpdateMatchesTheFormula_ElementWise()
    {
        var model = new Net();
        var shadow = new Net();
        var ema = new Ema<Net>(model, shadow, decay: 0.75);
        var before = shadow.fc.weight!.clone();
        using (no_grad()) model.fc.weight!.add_(randn(2, 3));
        ema.Update();
        var expected = before.to(ScalarType.Float64) * 0.75 + model.fc.weight!.to(ScalarType.Float64) * 0.25;
        Assert.True((shadow.fc.weight!.to(ScalarType.Float64) - expected).abs().max().item<double>() < 1e-6);

        ema.Update(0.0);   // decay 0 = copy
        Assert.True(TrainingAssert.BitwiseEqual(model.fc.weight!, shadow.fc.weight!));
    }

    [Fact]
    public void MismatchedShadow_IsRejected()
    {
        var model = nn.Linear(3, 2);
        Assert.Throws<ArgumentException>(() => new Ema<Linear>(model, nn.Linear(3, 4), 0.99));
        Assert.Throws<ArgumentException>(() => new Ema<Linear>(model, nn.Linear(3, 2, hasBias: false), 0.99));
        Assert.Throws<ArgumentException>(() => new Ema<Linear>(model, model, 0.99));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Ema<Linear>(model, nn.Linear(3, 2), 1.5));
    }
}
