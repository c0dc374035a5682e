using Svg.ML.Diffusion;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Diffusion;

/// <summary>Small randomised models for fast unit tests.</summary>
static class TinyModels
{
    /// <summary>A 4×4-grid DiT (6 channels, width 32, 1 block, 3 classes).</summary>
    public static SvgDiTConfig Config { get; } = new(InChannels: 6, HiddenSize: 32, Depth: 1, NumHeads: 2, NumClasses: 3, GridSize: 4);

    /// <summary>
    /// A DiT whose parameters (except the frozen position embedding) are all N(0, 0.3²), so that every path —
    /// including the zero-initialised adaLN and output layers — affects the output.
    /// </summary>
    public static SvgDiT RandomDiT(SvgDiTConfig? config = null, long seed = 1)
    {
        TorchRuntime.EnsureInitialized();
        torch.manual_seed(seed);
        var model = new SvgDiT(config ?? Config);
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name != "pos_embed") nn.init.normal_(p, 0, 0.3);
        model.eval();
        return model;
    }

    /// <summary>Equal shapes and bit-identical values.</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a - b).abs().max().to(float64).item<double>() == 0;

    /// <summary>Max absolute difference.</summary>
    public static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().to(float64).item<double>();
}
