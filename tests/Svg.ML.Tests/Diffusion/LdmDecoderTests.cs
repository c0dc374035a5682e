using Svg.ML.Autoencoder;
using Svg.ML.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Diffusion;

public class LdmDecoderTests
{
    public LdmDecoderTests() => TorchRuntime.EnsureInitialized();

    static readonly LdmDecoderConfig Tiny = new(Ch: 32, ChMult: [1, 2], NumResBlocks: 1, AttnResolutions: [4], ZChannels: 5, Resolution: 8);

    [Fact]
    public void Decodes_any_latent_size_by_the_upsampling_factor()
    {
        using var _ = no_grad();
        using var decoder = new LdmDecoder(Tiny);
        decoder.eval();
        Assert.Equal(2, Tiny.UpsampleFactor);
        using var z = torch.randn(2, 5, 3, 6);
        using var x = decoder.forward(z);
        Assert.Equal(new long[] { 2, 3, 6, 12 }, x.shape);
        Assert.True(x.isfinite().all().item<bool>());
        Assert.Throws<ArgumentException>(() => decoder.forward(torch.randn(1, 4, 3, 3)));
    }

    [Fact]
    public void Attention_sits_where_the_official_places_it()
    {
        using var decoder = new LdmDecoder(Tiny, torch.META);
        var keys = decoder.state_dict().Keys.ToHashSet();
        // curr_res starts at 8 / 2 = 4 at the lowest level (up.1): attention there, one per ResNet block (2)
        Assert.Contains("up.1.attn.1.q.weight", keys);
        Assert.DoesNotContain("up.0.attn.0.q.weight", keys);
        Assert.Contains("up.1.upsample.conv.weight", keys);
        Assert.DoesNotContain("up.0.upsample.conv.weight", keys);
        Assert.Contains("up.0.block.0.nin_shortcut.weight", keys);       // 64 → 32
        Assert.Contains("mid.attn_1.proj_out.weight", keys);
    }

    [Fact]
    public void Fresh_group_norms_start_at_ones_and_zeros()
    {
        // TorchSharp leaves GroupNorm parameters uninitialised; the decoder sets PyTorch's defaults.
        using var decoder = new LdmDecoder(Tiny);
        foreach (var (name, p) in decoder.named_parameters().Where(p => p.name.Contains("norm")))
            Assert.Equal(name.EndsWith("weight") ? 1.0 : 0.0, p.min().item<float>(), 0);
        foreach (var (name, p) in decoder.named_parameters().Where(p => p.name.Contains("norm")))
            Assert.Equal(name.EndsWith("weight") ? 1.0 : 0.0, p.max().item<float>(), 0);
    }

    [Fact]
    public void Widths_must_fit_32_groups()
    {
        Assert.Throws<ArgumentException>(() => new LdmDecoder(Tiny with { Ch = 48 }, torch.META));
    }

    [Fact]
    public void Convolutions_with_channel_counts_off_multiples_of_16_are_correct()
    {
        // oneDNN's float32 kernels were wrong here for such convolutions (see OneDnnConvolutionGuard):
        // the released decoder's conv_in has 392 input channels and conv_out 3 output channels.
        torch.manual_seed(9);
        foreach (var (inC, outC) in new[] { (392, 64), (136, 32), (32, 3) })
        {
            using var scope = NewDisposeScope();
            var x = torch.randn(2, inC, 8, 8).requires_grad_(true);
            var w = torch.randn(outC, inC, 3, 3) / Math.Sqrt(9 * inC);
            var g = torch.randn(2, outC, 8, 8);
            var y = nn.functional.conv2d(x, w, padding: [1, 1]);
            (y * g).sum().backward();
            var x64 = x.detach().to(float64).requires_grad_(true);
            var y64 = nn.functional.conv2d(x64, w.to(float64), padding: [1, 1]);
            (y64 * g.to(float64)).sum().backward();
            Assert.True((y.to(float64) - y64).abs().max().item<double>() < 1e-4, $"forward {inC}->{outC}");
            Assert.True((x.grad!.to(float64) - x64.grad!).abs().max().item<double>() < 1e-4, $"input gradient {inC}->{outC}");
        }
    }
}
