namespace Svg.ML.Dense.Synthetic;

/// <summary>One object of a scene: a Fashion-MNIST image standing on the ground, facing the camera.</summary>
/// <param name="Label">Fashion-MNIST class 0..9 (class map value <c>Label + 1</c>).</param>
/// <param name="Depth">Distance of its (fronto-parallel) plane, metres: the depth of every pixel it shows.</param>
/// <param name="Top">Row of the sprite's top edge (may be negative: clipped).</param>
/// <param name="Left">Column of the sprite's left edge (may be negative or run past the right edge: clipped).</param>
/// <param name="Side">Sprite side in pixels, <c>round(f · height / depth)</c>.</param>
/// <param name="SourceIndex">Index of the image in the generator's object pool.</param>
/// <param name="Tint">RGB colour multiplying the grayscale image.</param>
public sealed record SceneObject(int Label, double Depth, int Top, int Left, int Side, int SourceIndex, float[] Tint);

/// <summary>
/// A rendered scene: RGB bytes, the per-pixel class map (0 = background, 1..10 = Fashion-MNIST class + 1) and the
/// per-pixel metric depth (metres), all row-major; the objects are listed far first (the painting order).
/// </summary>
public sealed class Scene
{
    /// <summary>Image side in pixels.</summary>
    public required int Size { get; init; }

    /// <summary>RGB, channel-major: <c>Rgb[(c · Size + y) · Size + x]</c>.</summary>
    public required byte[] Rgb { get; init; }

    /// <summary>Class of each pixel, <c>Classes[y · Size + x]</c>.</summary>
    public required byte[] Classes { get; init; }

    /// <summary>Depth of each pixel in metres, <c>Depth[y · Size + x]</c>.</summary>
    public required float[] Depth { get; init; }

    /// <summary>Ground depth at the bottom and top rows, metres.</summary>
    public required double NearDepth { get; init; }
    public required double FarDepth { get; init; }

    /// <summary>The objects in painting order (far first).</summary>
    public required IReadOnlyList<SceneObject> Objects { get; init; }
}
