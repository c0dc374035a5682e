using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Runtime;
using Svg.ML.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Encoders;

public class SvgAutoencoderTests
{
    [Fact]
    public void Released_autoencoder_has_exactly_the_official_DinoDecoder_keys_and_counts()
    {
        TorchRuntime.EnsureInitialized();
        var official = OfficialKeys.Json["svg_autoencoder"]!;
        var expected = official["keys"]!.AsObject()
            .SelectMany(g => OfficialKeys.Shapes(g.Value!.AsArray())).ToDictionary(kv => kv.Key, kv => kv.Value);

        using var model = SvgAutoencoder.CreateReleased(META);
        OfficialKeys.AssertSameKeys(expected, model, "svg_autoencoder (all groups)");
        long total = official["num_params"]!.AsObject().Sum(kv => kv.Value!.GetValue<long>());
        Assert.Equal(total, model.state_dict().Sum(kv => kv.Value.numel()));   // parameters + buffers, as counted there
    }

    [Fact]
    public void Official_layout_state_dict_round_trips_and_a_wrong_decoder_is_refused()
    {
        TorchRuntime.EnsureInitialized();
        var encoder = TinyEncoders.Svg(seed: 1);
        var decoderConfig = new LdmDecoderConfig(Ch: 32, ChMult: new[] { 1, 2 }, NumResBlocks: 1, AttnResolutions: Array.Empty<int>(),
                                                 ZChannels: encoder.Channels, Resolution: 8);
        using var a = new SvgAutoencoder(encoder, new LdmDecoder(decoderConfig));
        Assert.Contains("decoder.conv_in.weight", a.state_dict().Keys);
        Assert.Contains("extra_vit.class_token", a.state_dict().Keys);

        using var b = new SvgAutoencoder(TinyEncoders.Svg(seed: 2), new LdmDecoder(decoderConfig));
        StateDict.Load(b, a.state_dict());
        a.eval(); b.eval();
        using var _ = no_grad();
        var x = TinyEncoders.Images(2, 32, 32, seed: 3);
        var za = a.Encode(x);
        Assert.Equal(za.data<float>().ToArray(), b.Encode(x).data<float>().ToArray());
        var img = a.Decode(za);
        Assert.True(img.min().item<float>() >= 0 && img.max().item<float>() <= 1);

        var wrong = new LdmDecoderConfig(32, new[] { 1 }, 1, Array.Empty<int>(), ZChannels: encoder.Channels + 1, Resolution: 8);
        var e = Assert.Throws<ArgumentException>(() => new SvgAutoencoder(encoder, new LdmDecoder(wrong)));
        Assert.Contains("latent channels", e.Message);
    }
}
