using Svg.Quickstart;
using static TorchSharp.torch;

namespace Svg.ML.DenseTasks;

/// <summary>Example figures: rows of image | ground truth | prediction, class maps in a fixed palette, depth in a colour map.</summary>
public static class DenseFigures
{
    /// <summary>Background gray, then ten distinct colours for the Fashion-MNIST classes.</summary>
    static readonly float[,] Palette =
    {
        { 0.25f, 0.25f, 0.25f }, { 0.90f, 0.10f, 0.15f }, { 0.20f, 0.70f, 0.25f }, { 1.00f, 0.85f, 0.10f }, { 0.00f, 0.45f, 0.85f },
        { 0.95f, 0.50f, 0.10f }, { 0.60f, 0.20f, 0.75f }, { 0.25f, 0.90f, 0.90f }, { 0.95f, 0.30f, 0.85f }, { 0.75f, 0.95f, 0.25f },
        { 1.00f, 0.75f, 0.80f },
    };

    /// <summary>A viridis-like ramp: near = yellow, far = dark blue.</summary>
    static readonly float[,] Ramp =
    {
        { 0.99f, 0.91f, 0.14f }, { 0.37f, 0.79f, 0.38f }, { 0.13f, 0.57f, 0.55f }, { 0.23f, 0.32f, 0.55f }, { 0.27f, 0.00f, 0.33f },
    };

    /// <summary>Class map [N, H, W] (integers) → RGB [N, 3, H, W] in [0, 1].</summary>
    public static Tensor ColourClasses(Tensor classes)
    {
        using var scope = NewDisposeScope();
        var palette = tensor(Palette);
        var rgb = palette.index_select(0, classes.to(ScalarType.Int64).flatten().clamp(0, Palette.GetLength(0) - 1));
        return rgb.view(classes.shape[0], classes.shape[1], classes.shape[2], 3).permute(0, 3, 1, 2).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Depth [N, H, W] → RGB [N, 3, H, W] on a ramp over [<paramref name="near"/>, <paramref name="far"/>] metres; unknown (≤ 0) black.</summary>
    public static Tensor ColourDepth(Tensor depth, double near, double far)
    {
        using var scope = NewDisposeScope();
        int stops = Ramp.GetLength(0);
        var t = ((depth - near) / (far - near)).clamp(0, 1) * (stops - 1);
        var lower = t.floor().clamp(0, stops - 2).to(ScalarType.Int64);
        var frac = (t - lower).unsqueeze(-1);
        var ramp = tensor(Ramp);
        var a = ramp.index_select(0, lower.flatten()).view([.. depth.shape, 3]);
        var b = ramp.index_select(0, (lower + 1).flatten()).view([.. depth.shape, 3]);
        var rgb = (a * (1 - frac) + b * frac) * depth.gt(0).unsqueeze(-1);
        return rgb.permute(0, 3, 1, 2).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Saves rows of (image, truth, prediction), all RGB [N, 3, H, W] in [0, 1], as one PNG of three columns.</summary>
    public static void SaveTriptych(Tensor images, Tensor truth, Tensor prediction, string path, int scale = 3)
    {
        using var scope = NewDisposeScope();
        var rows = stack(new[] { images, truth, prediction }, 1).flatten(0, 1);   // image, truth, prediction, image, …
        ImagePng.SaveGrid(rows, 3, path, scale);
    }
}
