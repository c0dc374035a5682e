using Svg.ML.Diffusion;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Parity;

/// <summary>
/// Golden kind "flow_loss": <c>RectifiedFlow(m).forward(x, y, shift)</c> with the random draws replayed from the
/// case (z0, t_raw, and in train mode the label-dropout uniforms); variants <c>eval.*</c> and <c>train.*</c>.
/// </summary>
public sealed class FlowLossKind : IGoldenKind
{
    public string Kind => "flow_loss";

    public Dictionary<string, Tensor> Run(GoldenCase golden)
    {
        using var model = DitKind.Build(golden);
        var flow = new RectifiedFlow(model);
        double shift = golden.Config["shift"]!.GetValue<double>();
        Tensor x = golden.Inputs["x"], y = golden.Inputs["y"];
        var noise = new FlowNoise(Z0: golden.Inputs["z0"], TRaw: golden.Inputs["t_raw"],
                                  LabelDropUniforms: golden.Inputs.GetValueOrDefault("u_label_drop"));
        var result = new Dictionary<string, Tensor>();
        foreach (var (variant, train) in new[] { ("eval", false), ("train", true) })
        {
            model.train(train);
            var r = flow.Loss(x, y, shift, noise);
            result[$"{variant}.loss"] = r.Loss;
            result[$"{variant}.mse"] = r.Mse;
            result[$"{variant}.t_shifted"] = r.TShifted;
            result[$"{variant}.labels_used"] = r.LabelsUsed;
            result[$"{variant}.zt"] = r.Zt;
        }
        return result;
    }
}
