using Svg.ML.Diffusion;
using Svg.ML.Runtime;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Diffusion;

/// <summary>bf16 compute through <see cref="ComputeCopy{T}"/> (issue 9).</summary>
public class MixedPrecisionTests(ITestOutputHelper output)
{
    static readonly SvgDiTConfig Config = TinyModels.Config with { Depth = 2 };

    /// <summary>
    /// A bf16 forward of a randomised 2-block DiT agrees with the float32 one to 3e-2 of the output's largest magnitude:
    /// bf16 keeps 8 mantissa bits (unit roundoff 2^-8 ≈ 3.9e-3 per rounding); about a dozen roundings lie on the path
    /// (inputs, weights, each linear/attention output, modulation) and their errors add roughly as a random walk
    /// (√12 · 3.9e-3 ≈ 1.4e-2), with N(0, 0.3²) weights amplifying a little. It must also differ from float32 (the
    /// copy really computes in bf16), and the float32 master is untouched.
    /// </summary>
    [Fact]
    public void Bf16Forward_OfATinyDiT_AgreesWithFloat32_WithinBf16Tolerance()
    {
        using var model = TinyModels.RandomDiT(Config, seed: 3);
        using var copy = new ComputeCopy<SvgDiT>(model, () => new SvgDiT(Config), ScalarType.BFloat16, CPU);
        copy.Module.eval();
        Assert.All(copy.Module.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));

        var g = new Generator(9);
        using var x = randn([4, Config.NumTokens, Config.InChannels], generator: g);
        using var t = rand(4, generator: g);
        using var y = tensor(new long[] { 0, 1, 2, 0 });
        using var _ = no_grad();
        using var reference = model.forward(x, t, y);
        using var low = copy.Module.forward(x, t, y);
        Assert.Equal(ScalarType.BFloat16, low.dtype);
        double scale = reference.abs().max().item<float>();
        double error = (low.to(float32) - reference).abs().max().item<float>() / scale;
        output.WriteLine($"bf16 vs fp32: max error {error:E2} of the output scale {scale:F3}");
        Assert.True(scale > 0.1, "the randomised model should give a non-trivial output");
        Assert.True(error > 1e-5, "the copy did not compute in bf16");
        Assert.True(error < 3e-2, $"bf16 error {error:E2} exceeds 3e-2 of the output scale");
    }

    /// <summary>Gradients pushed from the bf16 copy land on the float32 master as float32, equal to the bf16 values.</summary>
    [Fact]
    public void PushGradients_GivesTheMasterFloat32Gradients_AndClearsTheCopy()
    {
        using var model = TinyModels.RandomDiT(Config, seed: 4);
        using var copy = new ComputeCopy<SvgDiT>(model, () => new SvgDiT(Config), ScalarType.BFloat16, CPU);
        var g = new Generator(2);
        using var x = randn([2, Config.NumTokens, Config.InChannels], generator: g);
        using var t = rand(2, generator: g);
        using var y = tensor(new long[] { 1, 2 });
        copy.Module.forward(x, t, y).to(float32).pow(2).mean().backward();
        var lin = copy.Module.named_parameters().First(p => p.name == "blocks.0.attn.qkv.weight").parameter;
        using var expected = lin.grad!.to(float32);
        copy.PushGradients();
        Assert.Null(lin.grad);
        var master = model.named_parameters().First(p => p.name == "blocks.0.attn.qkv.weight").parameter;
        using var mg = master.grad!;
        Assert.Equal(ScalarType.Float32, mg.dtype);
        Assert.True(TinyModels.Same(expected, mg));
        Assert.True(expected.abs().max().item<float>() > 0);
    }
}
