using Svg.ML.Data;

namespace Svg.ML.Dense.Synthetic;

/// <summary>A grayscale texture in [0, 1], row-major, sampled with wrap-around (a tiling ground pattern).</summary>
public sealed class GrayTexture
{
    readonly float[] _values;

    /// <summary>Name for reports (the file name when loaded).</summary>
    public string Name { get; }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Takes <paramref name="values"/> (row-major, <paramref name="height"/> × <paramref name="width"/>, in [0, 1]).</summary>
    public GrayTexture(float[] values, int width, int height, string name)
    {
        if (width <= 0 || height <= 0 || values.Length != width * height)
            throw new ArgumentException($"texture '{name}': {values.Length} values for {width}×{height}.", nameof(values));
        _values = values;
        Width = width;
        Height = height;
        Name = name;
    }

    /// <summary>Decodes an image file; colour images become the mean of their channels.</summary>
    public static GrayTexture Load(string path)
    {
        using var rgb = ImageTensors.Load(path);
        using var gray = rgb.to(TorchSharp.torch.ScalarType.Float32).mean([0]).div_(255f).contiguous();
        return new GrayTexture(gray.data<float>().ToArray(), (int)rgb.shape[2], (int)rgb.shape[1], Path.GetFileName(path));
    }

    /// <summary>Bilinear sample at texel coordinates (<paramref name="u"/> across, <paramref name="v"/> down), wrapping at the edges.</summary>
    public double SampleWrapped(double u, double v)
    {
        double x = u - 0.5, y = v - 0.5;
        double fx = Math.Floor(x), fy = Math.Floor(y);
        double ax = x - fx, ay = y - fy;
        int x0 = Wrap((long)fx, Width), x1 = Wrap((long)fx + 1, Width), y0 = Wrap((long)fy, Height), y1 = Wrap((long)fy + 1, Height);
        double top = _values[y0 * Width + x0] * (1 - ax) + _values[y0 * Width + x1] * ax;
        double bottom = _values[y1 * Width + x0] * (1 - ax) + _values[y1 * Width + x1] * ax;
        return top * (1 - ay) + bottom * ay;
    }

    static int Wrap(long i, int n) => (int)(((i % n) + n) % n);
}
