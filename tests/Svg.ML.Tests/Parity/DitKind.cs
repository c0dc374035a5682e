using System.Text.Json.Nodes;
using Svg.ML.Checkpoints;
using Svg.ML.Diffusion;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Parity;

/// <summary>Golden kind "dit": <c>models_SVG.DiT(**config.dit)</c>; outputs the model output and the t / y embeddings.</summary>
public sealed class DitKind : IGoldenKind
{
    public string Kind => "dit";

    /// <summary>
    /// An <see cref="SvgDiTConfig"/> from the official constructor kwargs. The grid side is 16: the official model
    /// fixes 256 tokens whatever <c>input_size</c> says.
    /// </summary>
    public static SvgDiTConfig FromOfficial(JsonObject dit) => new(
        InChannels: dit["in_channels"]!.GetValue<int>(),
        HiddenSize: dit["hidden_size"]!.GetValue<int>(),
        Depth: dit["depth"]!.GetValue<int>(),
        NumHeads: dit["num_heads"]!.GetValue<int>(),
        MlpRatio: dit["mlp_ratio"]!.GetValue<double>(),
        NumClasses: dit["num_classes"]!.GetValue<int>(),
        ClassDropoutProb: dit["class_dropout_prob"]!.GetValue<double>(),
        LearnSigma: dit["learn_sigma"]!.GetValue<bool>(),
        QkNorm: dit["qk_norm"]?.GetValue<bool>() ?? false,
        GridSize: 16,
        PatchSize: dit["patch_size"]!.GetValue<int>(),
        HeadDim: dit["head_dim"] is JsonValue hd ? hd.GetValue<int>() : null);

    /// <summary>Builds the DiT of a case (its own <c>config.dit</c>, or the one of its <c>weights_from</c> case) and loads its weights.</summary>
    public static SvgDiT Build(GoldenCase golden)
    {
        JsonObject? dit = golden.Config["dit"]?.AsObject();
        if (dit is null)
        {
            string from = golden.Sidecar["weights_from"]!.GetValue<string>();
            var source = new GoldenCase(GoldenCase.Folder, Path.GetFileNameWithoutExtension(from));
            dit = source.Config["dit"]!.AsObject();
        }
        var model = new SvgDiT(FromOfficial(dit));
        StateDict.Load(model, golden.Weights, source: golden.Name);
        model.eval();
        return model;
    }

    public Dictionary<string, Tensor> Run(GoldenCase golden)
    {
        using var model = Build(golden);
        Tensor x = golden.Inputs["x"], t = golden.Inputs["t"], y = golden.Inputs["y"];
        return new()
        {
            ["y"] = model.forward(x, t, y),
            ["t_emb"] = model.TimeEmbedder.forward(t),
            ["y_emb"] = model.LabelEmbedder.forward(y),
        };
    }
}
