using Svg.ML.Diffusion;
using Svg.ML.Runtime;
using TorchSharp;
using Xunit;
using static Svg.ML.Tests.Diffusion.TinyModels;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Diffusion;

public class FeatureNormalizerTests
{
    public FeatureNormalizerTests() => TorchRuntime.EnsureInitialized();

    [Fact]
    public void Normalise_then_denormalise_is_the_identity()
    {
        torch.manual_seed(2);
        using var mean = torch.randn(1, 1, 5);
        using var std = torch.rand(1, 1, 5) + 0.5;
        using var norm = new FeatureNormalizer(mean, std);
        using var x = torch.randn(3, 7, 5) * 2 + 1;
        using var n = norm.Normalize(x);
        using var back = norm.Denormalize(n);
        Assert.True(MaxDiff(back, x) < 1e-5);
        using var expected = (x - mean) / std;
        Assert.True(Same(n, expected));
    }

    [Fact]
    public void Fitted_statistics_standardise_each_channel()
    {
        torch.manual_seed(4);
        using var scale = torch.tensor(new[] { 1f, 3f, 0.5f });
        using var x = torch.randn(4, 50, 3) * scale + torch.tensor(new[] { -2f, 0f, 5f });
        using var norm = FeatureNormalizer.Fit(x);
        using var n = norm.Normalize(x);
        using var flat = n.reshape(-1, 3);
        Assert.True(flat.mean([0]).abs().max().item<float>() < 1e-5);
        Assert.True((flat.std(0) - 1).abs().max().item<float>() < 1e-5);

        var sd = norm.ToStateDict();
        using var again = FeatureNormalizer.FromStateDict(sd);
        Assert.True(Same(again.Mean, norm.Mean) && Same(again.Std, norm.Std));
        Assert.Equal(new long[] { 1, 1, 3 }, again.Mean.shape);
        foreach (var t in sd.Values) t.Dispose();
        Assert.Throws<KeyNotFoundException>(() => FeatureNormalizer.FromStateDict(new Dictionary<string, Tensor>()));
    }

    [Fact]
    public void Tokens_and_latents_convert_both_ways()
    {
        using var latent = torch.arange(2 * 3 * 4 * 5, dtype: float32).reshape(2, 3, 4, 5);
        using var tokens = LatentTokens.ToTokens(latent);
        Assert.Equal(new long[] { 2, 20, 3 }, tokens.shape);
        Assert.Equal(latent[1, 2, 3, 1].item<float>(), tokens[1, 3 * 5 + 1, 2].item<float>());   // token = row·w + col
        using var back = LatentTokens.ToLatent(tokens, 4, 5);
        Assert.True(Same(back, latent));
    }
}
