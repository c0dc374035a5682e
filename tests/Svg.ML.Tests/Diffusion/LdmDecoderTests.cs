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
    public void Widths_must_fit_32_groups()
    {
        Assert.Throws<ArgumentException>(() => new LdmDecoder(Tiny with { Ch = 48 }, torch.META));
    }
}
