using System.Text.Json.Nodes;
using Svg.ML.Checkpoints;
using Svg.ML.Encoders.DinoV3;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Parity;

/// <summary>
/// Golden kind "dinov3": the official <c>DinoVisionTransformer</c> built from <c>config.ctor</c> (the
/// <c>_make_dinov3_vit</c> kwargs). For every input <c>in.&lt;x&gt;</c>: the <c>forward_features</c> entries listed in
/// <c>config.outputs</c>, <c>&lt;x&gt;.intermediate.&lt;i&gt;</c> from <c>get_intermediate_layers(x, n=config.intermediate,
/// reshape=True, norm=True)</c> and <c>&lt;x&gt;.rope_sin/rope_cos</c> from <c>rope_embed(H=h//p, W=w//p)</c> when
/// <c>config.rope</c>.
/// </summary>
public sealed class DinoV3Kind : IGoldenKind
{
    public string Kind => "dinov3";

    public Dictionary<string, Tensor> Run(GoldenCase golden)
    {
        var config = golden.Config;
        var model = new DinoVisionTransformer(FromOfficialKwargs(config["ctor"]!.AsObject()));
        model.eval();
        StateDict.Load(model, golden.Weights, strict: true, source: golden.Name);

        var outputs = config["outputs"]?.AsArray().Select(n => n!.GetValue<string>()).ToArray()
                      ?? ["x_norm_patchtokens", "x_norm_clstoken", "x_storage_tokens", "x_prenorm"];
        var result = new Dictionary<string, Tensor>();
        foreach (var (name, x) in golden.Inputs)
        {
            var features = model.ForwardFeatures(x);
            foreach (var key in outputs)
                result[$"{name}.{key}"] = key switch
                {
                    "x_norm_patchtokens" => features.XNormPatchTokens,
                    "x_norm_clstoken" => features.XNormClsToken,
                    "x_storage_tokens" => features.XStorageTokens,
                    "x_prenorm" => features.XPrenorm,
                    _ => throw new NotSupportedException($"forward_features has no output '{key}'."),
                };

            if (config["intermediate"] is JsonNode intermediate)
            {
                var layers = intermediate is JsonArray list
                    ? model.GetIntermediateLayers(x, list.Select(n => n!.GetValue<int>()).ToArray(), reshape: true, norm: true)
                    : model.GetIntermediateLayers(x, intermediate.GetValue<int>(), reshape: true, norm: true);
                for (int i = 0; i < layers.Length; i++) result[$"{name}.intermediate.{i}"] = layers[i];
            }

            if (config["rope"]?.GetValue<bool>() == true)
            {
                int p = model.Config.PatchSize;
                var (sin, cos) = model.RopeEmbed.forward(x.shape[2] / p, x.shape[3] / p);
                result[$"{name}.rope_sin"] = sin;
                result[$"{name}.rope_cos"] = cos;
            }
        }
        return result;
    }

    /// <summary>
    /// <see cref="DinoV3Config"/> from the kwargs of the official <c>dinov3.hub.backbones._make_dinov3_vit</c>; absent
    /// keys take that function's defaults. Hub-only keys (weights, hash, …) are ignored; unknown keys fail.
    /// </summary>
    internal static DinoV3Config FromOfficialKwargs(JsonObject kw)
    {
        // _make_dinov3_vit defaults
        var c = new DinoV3Config
        {
            ImageSize = 224, PatchSize = 16, InChannels = 3, EmbedDim = 768, Depth = 12, NumHeads = 12, FfnRatio = 4,
            FfnLayer = DinoV3FfnLayer.Mlp, SwiGluAlignTo = 8, QkvBias = true, ProjBias = true, FfnBias = true,
            MaskKBias = false, LayerScaleInit = null, NormEps = 1e-6, NStorageTokens = 0, RopeBase = 100,
            RopeNormalizeCoords = RopeCoordinateNormalization.Separate, RopeRescaleCoords = null,
            RopeDtype = ScalarType.Float32, DropPathRate = 0,
        };
        string[] hubOnly = ["pretrained", "weights", "compact_arch_name", "check_hash", "hash", "version", "device"];
        foreach (var (key, node) in kw)
        {
            c = key switch
            {
                "img_size" => c with { ImageSize = Int(node) },
                "patch_size" => c with { PatchSize = Int(node) },
                "in_chans" => c with { InChannels = Int(node) },
                "embed_dim" => c with { EmbedDim = Int(node) },
                "depth" => c with { Depth = Int(node) },
                "num_heads" => c with { NumHeads = Int(node) },
                "ffn_ratio" => c with { FfnRatio = Num(node)!.Value },
                "qkv_bias" => c with { QkvBias = node!.GetValue<bool>() },
                "proj_bias" => c with { ProjBias = node!.GetValue<bool>() },
                "ffn_bias" => c with { FfnBias = node!.GetValue<bool>() },
                "mask_k_bias" => c with { MaskKBias = node!.GetValue<bool>() },
                "drop_path_rate" => c with { DropPathRate = Num(node)!.Value },
                "layerscale_init" => c with { LayerScaleInit = Num(node) },
                "n_storage_tokens" => c with { NStorageTokens = Int(node) },
                "untie_cls_and_patch_norms" => c with { UntieClsAndPatchNorms = node!.GetValue<bool>() },
                "untie_global_and_local_cls_norm" => c with { UntieGlobalAndLocalClsNorm = node!.GetValue<bool>() },
                "norm_layer" => c with
                {
                    NormEps = Str(node) switch
                    {
                        "layernorm" => 1e-6,
                        "layernormbf16" => 1e-5,
                        var other => throw new NotSupportedException($"norm_layer '{other}' is not supported."),
                    },
                },
                "ffn_layer" => Str(node) switch
                {
                    "mlp" => c with { FfnLayer = DinoV3FfnLayer.Mlp },
                    "swiglu" => c with { FfnLayer = DinoV3FfnLayer.SwiGlu, SwiGluAlignTo = 8 },
                    var s when s.StartsWith("swiglu") => c with { FfnLayer = DinoV3FfnLayer.SwiGlu, SwiGluAlignTo = int.Parse(s[6..]) },
                    var other => throw new NotSupportedException($"ffn_layer '{other}' is not supported."),
                },
                "pos_embed_rope_base" => c with { RopeBase = Num(node) },
                "pos_embed_rope_min_period" => c with { RopeMinPeriod = Num(node) },
                "pos_embed_rope_max_period" => c with { RopeMaxPeriod = Num(node) },
                "pos_embed_rope_shift_coords" => c with { RopeShiftCoords = Num(node) },
                "pos_embed_rope_jitter_coords" => c with { RopeJitterCoords = Num(node) },
                "pos_embed_rope_rescale_coords" => c with { RopeRescaleCoords = Num(node) },
                "pos_embed_rope_normalize_coords" => c with
                {
                    RopeNormalizeCoords = Str(node) switch
                    {
                        "min" => RopeCoordinateNormalization.Min,
                        "max" => RopeCoordinateNormalization.Max,
                        "separate" => RopeCoordinateNormalization.Separate,
                        var other => throw new NotSupportedException($"normalize_coords '{other}'."),
                    },
                },
                "pos_embed_rope_dtype" => c with
                {
                    RopeDtype = Str(node) switch
                    {
                        "fp32" => ScalarType.Float32,
                        "bf16" => ScalarType.BFloat16,
                        "fp16" => ScalarType.Float16,
                        var other => throw new NotSupportedException($"rope dtype '{other}'."),
                    },
                },
                _ when hubOnly.Contains(key) => c,
                _ => throw new NotSupportedException($"Unknown DINOv3 constructor argument '{key}'."),
            };
        }
        return c;
    }

    static int Int(JsonNode? n) => n!.GetValue<int>();
    static double? Num(JsonNode? n) => n is null ? null : n.GetValue<double>();
    static string Str(JsonNode? n) => n!.GetValue<string>();
}
