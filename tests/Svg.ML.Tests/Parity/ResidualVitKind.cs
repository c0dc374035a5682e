using System.Text.Json.Nodes;
using Svg.ML.Checkpoints;
using Svg.ML.Encoders;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Parity;

/// <summary>
/// Golden kind "residual_vit": the official <c>create_small_vit_s(output_dim, patch_size, img_size)</c> truncated to
/// <c>num_layers_kept</c> encoder layers, weights under <c>key_prefix</c>; <c>out.h_vit = v(in.x)</c> ([B, out, N]).
/// </summary>
public sealed class ResidualVitKind : IGoldenKind
{
    public string Kind => "residual_vit";

    public Dictionary<string, Tensor> Run(GoldenCase golden)
    {
        var config = golden.Config;
        var model = new ResidualEncoder(ConfigFrom(config));
        model.eval();
        string prefix = config["key_prefix"]?.GetValue<string>() ?? "";
        StateDict.Load(model, StateDict.WithPrefix(golden.Weights, prefix), strict: true, source: golden.Name);

        var result = new Dictionary<string, Tensor>();
        foreach (var (name, x) in golden.Inputs)
            result[golden.Inputs.Count == 1 ? "h_vit" : $"{name}.h_vit"] = model.forward(x);
        return result;
    }

    /// <summary>The residual encoder sizes from a golden config (<c>output_dim</c>, <c>patch_size</c>, <c>img_size</c>,
    /// <c>num_layers_kept</c>; the rest is hard-coded in the official function).</summary>
    internal static ResidualEncoderConfig ConfigFrom(JsonObject c) => ResidualEncoderConfig.Released with
    {
        OutputDim = c["output_dim"]!.GetValue<int>(),
        PatchSize = c["patch_size"]!.GetValue<int>(),
        ImageSize = c["img_size"]!.GetValue<int>(),
        NumLayers = c["num_layers_kept"]?.GetValue<int>() ?? ResidualEncoderConfig.Released.NumLayers,
    };
}
