namespace Svg.ML.Dense.Synthetic;

/// <summary>
/// Geometry and content of the synthetic scenes (<see cref="SceneGenerator"/>). A pinhole camera with focal length
/// <see cref="FocalLength"/>·size pixels looks over a textured ground plane: the bottom row sees the ground at
/// <see cref="NearDepth"/> metres, the top row at <see cref="FarDepth"/> metres (both drawn per scene), so depth grows
/// toward the horizon, which lies above the image. Objects stand on the ground, face the camera (one depth each) and
/// are <see cref="ObjectHeight"/> metres tall, so their size in pixels is <c>f · height / depth</c>.
/// </summary>
public sealed record SceneOptions
{
    /// <summary>Image side in pixels (square scenes).</summary>
    public int Size { get; init; } = 64;

    /// <summary>Fewest and most objects per scene.</summary>
    public int MinObjects { get; init; } = 2;
    public int MaxObjects { get; init; } = 4;

    /// <summary>Range of the ground's depth at the bottom row, metres.</summary>
    public (double Min, double Max) NearDepth { get; init; } = (1.5, 2.5);

    /// <summary>Range of the ground's depth at the top row, metres (below the NYUv2 cap of 10 m).</summary>
    public (double Min, double Max) FarDepth { get; init; } = (6.0, 9.0);

    /// <summary>Range of an object's height, metres.</summary>
    public (double Min, double Max) ObjectHeight { get; init; } = (0.8, 1.4);

    /// <summary>Focal length as a multiple of <see cref="Size"/> (1 ≈ a 53° field of view).</summary>
    public double FocalLength { get; init; } = 1.0;

    /// <summary>Range of the side of one texture tile on the ground, metres.</summary>
    public (double Min, double Max) TileMetres { get; init; } = (0.8, 1.6);

    /// <summary>Share of the fog colour mixed in at the far depth (a depth cue like atmospheric perspective).</summary>
    public double Fog { get; init; } = 0.35;

    /// <summary>A Fashion-MNIST pixel (0..255) belongs to the object when it is at least this bright.</summary>
    public byte MaskThreshold { get; init; } = 48;

    /// <summary>Throws when a setting is out of range.</summary>
    public void Validate()
    {
        if (Size < 8) throw new ArgumentOutOfRangeException(nameof(Size), Size, "scenes need at least 8 pixels per side.");
        if (MinObjects < 0 || MaxObjects < MinObjects)
            throw new ArgumentException($"objects per scene: need 0 ≤ MinObjects ({MinObjects}) ≤ MaxObjects ({MaxObjects}).");
        if (NearDepth.Min <= 0 || NearDepth.Max < NearDepth.Min || FarDepth.Min <= NearDepth.Max || FarDepth.Max < FarDepth.Min)
            throw new ArgumentException($"depths: need 0 < NearDepth {NearDepth} < FarDepth {FarDepth}, each range ordered.");
        if (ObjectHeight.Min <= 0 || ObjectHeight.Max < ObjectHeight.Min) throw new ArgumentException($"ObjectHeight {ObjectHeight} must be a positive range.");
        if (TileMetres.Min <= 0 || TileMetres.Max < TileMetres.Min) throw new ArgumentException($"TileMetres {TileMetres} must be a positive range.");
        if (FocalLength <= 0) throw new ArgumentOutOfRangeException(nameof(FocalLength), FocalLength, "must be positive.");
        if (Fog is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(Fog), Fog, "must lie in [0, 1].");
    }
}
