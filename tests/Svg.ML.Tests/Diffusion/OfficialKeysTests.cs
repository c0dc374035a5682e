using System.Text.Json.Nodes;
using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Diffusion;
using Svg.ML.Runtime;
using Svg.ML.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Diffusion;

/// <summary>
/// The released architectures have exactly the official state-dict keys and shapes (from
/// <c>Golden/keys_official.json</c>, made by the official constructors). Built on the meta device: no memory, fast.
/// </summary>
public class OfficialKeysTests
{
    static JsonObject Keys => OfficialKeys.Json;
    static Dictionary<string, long[]> Shapes(JsonArray keys) => OfficialKeys.Shapes(keys);
    static void AssertSameKeys(Dictionary<string, long[]> expected, nn.Module module) => OfficialKeys.AssertSameKeys(expected, module, module.GetName());

    [Fact]
    public void DiT_XL_from_its_released_config_has_the_official_keys_shapes_and_parameter_count()
    {
        TorchRuntime.EnsureInitialized();
        var entry = Keys["dit_xl"]!.AsObject();
        var config = DitKind.FromOfficial(entry["config"]!.AsObject());
        Assert.Equal(SvgDiTConfig.XL, config);   // the preset is the released configuration

        using var model = new SvgDiT(config, device: torch.META);
        var expected = Shapes(entry["keys"]!.AsArray());
        Assert.Equal(entry["num_tensors"]!.GetValue<int>(), expected.Count);
        AssertSameKeys(expected, model);
        Assert.Equal(entry["num_params"]!.GetValue<long>(), StateDict.ParameterCount(model));
        Assert.False(model.PositionEmbedding.requires_grad);   // frozen, as the official
    }

    [Fact]
    public void Released_LdmDecoder_has_the_official_decoder_keys_shapes_and_parameter_count()
    {
        TorchRuntime.EnsureInitialized();
        var entry = Keys["svg_autoencoder"]!.AsObject();
        // The preset is the released ddconfig (records compare lists by reference: compare them element-wise).
        var dd = LdmDecoderKind.FromDdConfig(entry["config"]!["ddconfig"]!.AsObject());
        var released = LdmDecoderConfig.Released;
        Assert.Equal(released, dd with { ChMult = released.ChMult, AttnResolutions = released.AttnResolutions });
        Assert.Equal(released.ChMult, dd.ChMult);
        Assert.Equal(released.AttnResolutions, dd.AttnResolutions);

        using var decoder = new LdmDecoder(LdmDecoderConfig.Released, device: torch.META);
        var expected = Shapes(entry["keys"]!["decoder"]!.AsArray())
            .ToDictionary(kv => kv.Key["decoder.".Length..], kv => kv.Value);
        AssertSameKeys(expected, decoder);
        Assert.Equal(entry["num_params"]!["decoder"]!.GetValue<long>(), StateDict.ParameterCount(decoder));
    }
}
