using Svg.ML.Diffusion;
using Svg.ML.Runtime;
using TorchSharp;
using Xunit;
using static Svg.ML.Tests.Diffusion.TinyModels;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Diffusion;

public class RectifiedFlowTests
{
    public RectifiedFlowTests() => TorchRuntime.EnsureInitialized();

    [Fact]
    public void Time_shift_matches_its_formula_in_float32_and_float64()
    {
        using var t = torch.tensor(new[] { 0f, 0.25f, 0.5f, 1f });
        using var shifted = RectifiedFlow.ShiftTime(t, 0.4);
        float[] s = shifted.data<float>().ToArray();
        Assert.Equal(0f, s[0]);
        Assert.Equal(1f, s[3], 6);
        Assert.Equal(0.4 * 0.5 / (1 - 0.6 * 0.5), s[2], 6);
        Assert.Equal(0.4 * 0.25 / (1 - 0.6 * 0.25), RectifiedFlow.ShiftTime(0.25, 0.4), 15);
        Assert.Equal(0.3, RectifiedFlow.ShiftTime(0.3, 0));    // shift ≤ 0: identity
    }

    [Fact]
    public void Fresh_model_loss_is_the_squared_target_velocity()
    {
        // A fresh DiT outputs 0, so mse_i = mean((x − z0)²) over the tokens and channels of sample i.
        torch.manual_seed(3);
        using var model = new SvgDiT(Config);
        model.eval();
        using var x = torch.randn(3, 16, 6);
        using var z0 = torch.randn(3, 16, 6);
        using var tRaw = torch.tensor(new[] { 0.1f, 0.5f, 0.9f });
        using var y = torch.tensor(new long[] { 0, 1, 3 });
        using var r = new RectifiedFlow(model).Loss(x, y, 0.4, new FlowNoise(z0, tRaw));
        using var expectedMse = (x - z0).pow(2).mean([1, 2]);
        Assert.True(MaxDiff(r.Mse, expectedMse) < 1e-6);
        Assert.Equal(expectedMse.mean().item<float>(), r.Loss.item<float>(), 5);
        using var t = RectifiedFlow.ShiftTime(tRaw, 0.4);
        Assert.True(Same(r.TShifted, t));
        using var zt = (1 - t.view(3, 1, 1)) * z0 + t.view(3, 1, 1) * x;
        Assert.True(Same(r.Zt, zt));
        Assert.True(Same(r.LabelsUsed, y));
    }

    [Fact]
    public void Training_mode_replays_injected_label_dropout_and_gradients_flow()
    {
        using var model = RandomDiT();
        model.train();
        using var x = torch.randn(4, 16, 6);
        using var y = torch.tensor(new long[] { 0, 1, 2, 1 });
        using var u = torch.tensor(new[] { 0.5f, 0.05f, 0.7f, 0.09f });       // < 0.1 → null class (3)
        using var r = new RectifiedFlow(model).Loss(x, y, noise: new FlowNoise(LabelDropUniforms: u), generator: new Generator(5));
        Assert.Equal(new long[] { 0, 3, 2, 3 }, r.LabelsUsed.data<long>().ToArray());
        r.Loss.backward();
        var grad = model.named_parameters().First(p => p.name == "blocks.0.attn.qkv.weight").parameter.grad;
        Assert.NotNull(grad);
        Assert.True(grad!.abs().sum().item<float>() > 0);
        Assert.Null(model.PositionEmbedding.grad);

        // same generator seed → same draws
        model.eval();
        using var a = new RectifiedFlow(model).Loss(x, y, generator: new Generator(11));
        using var b = new RectifiedFlow(model).Loss(x, y, generator: new Generator(11));
        Assert.True(Same(a.Zt, b.Zt) && Same(a.TShifted, b.TShifted));
    }
}
