using System.Text.Json.Nodes;
using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.Runtime;
using Svg.ML.Tests.Parity;
using TorchSharp;
using Xunit;

namespace Svg.ML.Tests.Encoders;

/// <summary>
/// The released architectures have exactly the official state-dict keys and shapes (tests/Svg.ML.Tests/Golden/
/// keys_official.json, written by the official constructors), so released checkpoints load strictly by name.
/// </summary>
public class EncoderKeysTests
{
    [Fact]
    public void DinoV3_ViTSPlus16_has_the_official_keys_shapes_and_parameter_count()
    {
        TorchRuntime.EnsureInitialized();
        var official = OfficialKeys.Json["dinov3_vits16plus"]!.AsObject();
        using var model = new DinoVisionTransformer(DinoV3Config.ViTSPlus16);
        var keys = OfficialKeys.Shapes(model);
        OfficialKeys.AssertSameKeys(OfficialKeys.Shapes(official["keys"]!.AsArray()), keys, "dinov3_vits16plus");
        Assert.Equal(official["num_tensors"]!.GetValue<int>(), keys.Count);
        Assert.Equal(official["num_params"]!.GetValue<long>(), StateDict.ParameterCount(model));
    }

    [Fact]
    public void SvgEncoder_released_has_the_official_encoder_keys_and_counts()
    {
        TorchRuntime.EnsureInitialized();
        var official = OfficialKeys.Json["svg_autoencoder"]!.AsObject();
        using var svg = SvgEncoder.CreateReleased();
        Assert.True(svg.Config.MaskRatio > 0);
        var keys = OfficialKeys.Shapes(svg);
        var groups = new[] { "mask_token", "encoder", "extra_vit", "norm_vit" };   // "decoder" belongs to the LDM decoder
        var expected = groups.SelectMany(g => OfficialKeys.Shapes(official["keys"]![g]!.AsArray())).ToDictionary(kv => kv.Key, kv => kv.Value);
        OfficialKeys.AssertSameKeys(expected, keys, "svg_autoencoder encoder groups");

        // num_params of keys_official counts every state_dict element of the group (parameters and buffers).
        var state = svg.state_dict();
        foreach (var g in groups)
        {
            long numel = state.Where(kv => kv.Key == g || kv.Key.StartsWith(g + ".")).Sum(kv => kv.Value.numel());
            Assert.Equal(official["num_params"]![g]!.GetValue<long>(), numel);
        }
        Assert.Equal(392, svg.Channels);
    }

    [Fact]
    public void SvgEncoder_without_masking_has_no_mask_token()
    {
        TorchRuntime.EnsureInitialized();
        using var svg = new SvgEncoder(new DinoVisionTransformer(TinyEncoders.Dino),
            new SvgEncoderConfig { Residual = TinyEncoders.Residual, MaskRatio = -1 });
        Assert.DoesNotContain("mask_token", svg.state_dict().Keys);
        Assert.Contains("norm_vit.weight", svg.state_dict().Keys);
    }

    [Fact]
    public void Mlp_presets_use_fc1_fc2_and_SwiGLU_presets_use_w1_w2_w3()
    {
        TorchRuntime.EnsureInitialized();
        using var vits = new DinoVisionTransformer(DinoV3Config.ViTS16);
        var keys = OfficialKeys.Shapes(vits);
        Assert.Equal(new long[] { 1536, 384 }, keys["blocks.11.mlp.fc1.weight"]);
        Assert.Equal(new long[] { 384, 1536 }, keys["blocks.11.mlp.fc2.weight"]);
        Assert.DoesNotContain(keys.Keys, k => k.Contains(".mlp.w"));
        Assert.Equal(8 + 12 * 15, keys.Count);   // 8 global tensors + 15 per block (ViT-S+ has 17: three FFN linears)
        Assert.Equal(1536, DinoV3Config.ViTSPlus16.SwiGluHiddenDim);
        Assert.Equal(512, (DinoV3Config.ViTSPlus16 with { EmbedDim = 128, NumHeads = 2 }).SwiGluHiddenDim);
        Assert.Equal(768, (DinoV3Config.ViTSPlus16 with { EmbedDim = 192, NumHeads = 3 }).SwiGluHiddenDim);
        Assert.Equal(3072, DinoV3Config.ViTB16.FfnHiddenDim);
        Assert.Equal(4096, DinoV3Config.ViTL16.FfnHiddenDim);
    }

    [Fact]
    public void Residual_encoder_keys_follow_torchvision()
    {
        TorchRuntime.EnsureInitialized();
        using var model = new ResidualEncoder(ResidualEncoderConfig.Released with { NumLayers = 2 });
        var keys = OfficialKeys.Shapes(model);
        Assert.Equal(new long[] { 1, 257, 384 }, keys["encoder.pos_embedding"]);
        Assert.Equal(new long[] { 1152, 384 }, keys["encoder.layers.encoder_layer_1.self_attention.in_proj_weight"]);
        Assert.Equal(new long[] { 1536, 384 }, keys["encoder.layers.encoder_layer_1.mlp.0.weight"]);
        Assert.Equal(new long[] { 384, 1536 }, keys["encoder.layers.encoder_layer_1.mlp.3.weight"]);
        Assert.Equal(new long[] { 8, 384 }, keys["heads.2.weight"]);
        Assert.Equal(3 + 1 + 2 * 12 + 2 + 4, keys.Count);
    }
}
