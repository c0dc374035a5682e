using Svg.ML.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Training;

public class AdversarialLossTests
{
    [Fact]
    public void HingeLoss_MatchesHandComputation()
    {
        using var scope = NewDisposeScope();
        var real = tensor(new[] { 2f, 0.5f });
        var fake = tensor(new[] { -2f, 0.3f });
        // ½ (mean(relu(1 − [2, .5])) + mean(relu(1 + [−2, .3]))) = ½ (0.25 + 0.65) = 0.45
        Assert.Equal(0.45, AdversarialLoss.HingeDiscriminatorLoss(real, fake).item<float>(), 6);
        Assert.Equal(-0.4, AdversarialLoss.GeneratorLoss(tensor(new[] { 0.2f, 0.6f })).item<float>(), 6);
    }

    [Fact]
    public void AdaptiveWeight_IsTheGradientNormRatio_TimesDiscWeight()
    {
        using var scope = NewDisposeScope();
        var w = nn.Parameter(tensor(new[] { 1f, 2f, 3f }));
        // nll = Σ a·w → ∇ = a = (3, 4, 0), ‖∇‖ = 5;  g = Σ b·w → ∇ = b = (0, 0, 2), ‖∇‖ = 2.
        var nll = (tensor(new[] { 3f, 4f, 0f }) * w).sum();
        var g = (tensor(new[] { 0f, 0f, 2f }) * w).sum();
        var lambda = AdversarialLoss.AdaptiveWeight(nll, g, w, discWeight: 0.5);
        Assert.Equal(5.0 / (2.0 + 1e-4) * 0.5, lambda.item<float>(), 5);
        Assert.False(lambda.requires_grad);

        // The graph is kept: the total loss still back-propagates; λ is a constant in it.
        (nll + lambda * g).backward();
        var expectedGrad = new[] { 3f, 4f, (float)(lambda.item<float>() * 2) };
        Assert.Equal(expectedGrad, w.grad!.data<float>().ToArray());
    }

    [Fact]
    public void AdaptiveWeight_IsClampedAt1e4()
    {
        using var scope = NewDisposeScope();
        var w = nn.Parameter(tensor(new[] { 1f, 2f }));
        var nll = (tensor(new[] { 30f, 40f }) * w).sum();      // ‖∇‖ = 50
        var g = (zeros(2) * w).sum();                            // ‖∇‖ = 0 → 50 / 1e-4 = 5e5 → clamp 1e4
        Assert.Equal(1e4 * 0.5, AdversarialLoss.AdaptiveWeight(nll, g, w).item<float>(), 1);
    }

    [Fact]
    public void AdoptWeight_SwitchesOnAtTheThreshold()
    {
        Assert.Equal(0.0, AdversarialLoss.AdoptWeight(1.0, 5000, 5001));
        Assert.Equal(1.0, AdversarialLoss.AdoptWeight(1.0, 5001, 5001));
    }

    [Fact]
    public void Discriminator_HasTheTamingKeysAndShapes()
    {
        var d = new NLayerDiscriminator();
        var expected = new Dictionary<string, long[]>
        {
            ["main.0.weight"] = [64, 3, 4, 4], ["main.0.bias"] = [64],
            ["main.2.weight"] = [128, 64, 4, 4],
            ["main.3.weight"] = [128], ["main.3.bias"] = [128], ["main.3.running_mean"] = [128], ["main.3.running_var"] = [128], ["main.3.num_batches_tracked"] = [],
            ["main.5.weight"] = [256, 128, 4, 4],
            ["main.6.weight"] = [256], ["main.6.bias"] = [256], ["main.6.running_mean"] = [256], ["main.6.running_var"] = [256], ["main.6.num_batches_tracked"] = [],
            ["main.8.weight"] = [512, 256, 4, 4],
            ["main.9.weight"] = [512], ["main.9.bias"] = [512], ["main.9.running_mean"] = [512], ["main.9.running_var"] = [512], ["main.9.num_batches_tracked"] = [],
            ["main.11.weight"] = [1, 512, 4, 4], ["main.11.bias"] = [1],
        };
        var actual = d.state_dict();
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (k, shape) in expected) Assert.Equal(shape, actual[k].shape);

        // weights_init: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02), bias 0.
        Assert.InRange(actual["main.8.weight"].std().item<float>(), 0.018, 0.022);
        Assert.InRange(actual["main.9.weight"].mean().item<float>(), 0.99, 1.01);
        Assert.Equal(0f, actual["main.9.bias"].abs().max().item<float>());

        // 64×64 input: 32 → 16 → 8 (stride 2), then 7 → 6 (stride 1, kernel 4, pad 1).
        using var logits = d.call(randn(2, 3, 64, 64));
        Assert.Equal(new long[] { 2, 1, 6, 6 }, logits.shape);
    }
}
