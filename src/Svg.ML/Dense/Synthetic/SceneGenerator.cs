using Svg.ML.Data;

namespace Svg.ML.Dense.Synthetic;

/// <summary>
/// Deterministic synthetic scenes for segmentation and depth: a textured, tinted ground plane whose depth grows toward
/// the horizon (<see cref="SceneOptions"/> gives the camera), with Fashion-MNIST objects standing on it at random depths,
/// scaled by perspective (side ∝ 1 / depth) and painted far first so nearer objects occlude farther ones. Each scene
/// comes with its class map (0 = background, 1..10 = class + 1) and its metric depth.
/// <para>
/// Scene <c>i</c> depends only on the seed, <c>i</c>, the options, the object pool and the textures: it is drawn from
/// its own random stream, so any range of scenes can be generated in any order with identical results.
/// </para>
/// </summary>
public sealed class SceneGenerator
{
    /// <summary>Class of the ground.</summary>
    public const int BackgroundClass = 0;

    /// <summary>Classes of the class map: background and the ten Fashion-MNIST classes.</summary>
    public const int NumClasses = 11;

    /// <summary>The class map's names: "background", then the Fashion-MNIST class names.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = ["background", .. FashionMnist.ClassNames];

    /// <summary>The textures <see cref="FromSampleData"/> uses (bundled in <c>data/images/</c>).</summary>
    public static IReadOnlyList<string> SampleTextures { get; } = ["brick.png", "grass.png", "gravel.png"];

    static readonly float[] FogColour = [0.78f, 0.82f, 0.88f];

    readonly byte[] _objectPixels;
    readonly long[] _objectLabels;
    readonly int _objectSide;
    readonly IReadOnlyList<GrayTexture> _textures;

    /// <summary>The settings.</summary>
    public SceneOptions Options { get; }

    /// <summary>The seed of every scene's random stream.</summary>
    public long Seed { get; }

    /// <summary>Where the objects and textures came from (for cache keys and reports).</summary>
    public string Identity { get; }

    /// <summary>
    /// Scenes with objects from <paramref name="objects"/> (grayscale, square, labels 0..9, e.g. Fashion-MNIST) on the
    /// given ground <paramref name="textures"/>.
    /// </summary>
    public SceneGenerator(LabeledImages objects, IReadOnlyList<GrayTexture> textures, SceneOptions? options = null, long seed = 0)
    {
        Options = options ?? new SceneOptions();
        Options.Validate();
        if (objects.Count == 0) throw new ArgumentException("the object pool is empty.", nameof(objects));
        if (objects.Channels != 1 || objects.Height != objects.Width)
            throw new ArgumentException($"objects must be square grayscale images, got [{objects.Channels}, {objects.Height}, {objects.Width}].", nameof(objects));
        if (objects.Labels.Any(l => l < 0 || l >= NumClasses - 1))
            throw new ArgumentException($"object labels must lie in [0, {NumClasses - 1}).", nameof(objects));
        if (textures.Count == 0) throw new ArgumentException("at least one ground texture is needed.", nameof(textures));
        _objectPixels = objects.Pixels.contiguous().data<byte>().ToArray();
        _objectLabels = objects.Labels;
        _objectSide = objects.Height;
        _textures = textures;
        Seed = seed;
        Identity = $"scenes-v1(seed {seed}; {Options}; objects {objects.Identity}; textures {string.Join(", ", textures.Select(t => t.Name))})";
    }

    /// <summary>
    /// Scenes from the data bundled with the repository: the first <paramref name="objectImages"/> images of the
    /// Fashion-MNIST training (<paramref name="train"/>) or test split, on the brick, grass and gravel textures.
    /// </summary>
    public static SceneGenerator FromSampleData(bool train, int objectImages = 2000, SceneOptions? options = null, long seed = 0)
    {
        using var objects = FashionMnist.Load(train, objectImages);
        var textures = SampleTextures.Select(name => GrayTexture.Load(SampleData.Image(name))).ToArray();
        return new SceneGenerator(objects, textures, options, seed);
    }

    /// <summary>Renders scene <paramref name="index"/>.</summary>
    public Scene Generate(int index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "scene indices are non-negative.");
        var rng = new Random(StreamSeed(Seed, index));
        int s = Options.Size;
        double near = Uniform(rng, Options.NearDepth), far = Uniform(rng, Options.FarDepth);
        var camera = new GroundCamera(s, Options.FocalLength * s, near, far);
        var rgb = new float[3 * s * s];
        var classes = new byte[s * s];
        var depth = new float[s * s];
        PaintGround(rng, camera, rgb, depth);
        var objects = PlaceObjects(rng, camera);
        foreach (var o in objects) PaintObject(o, rgb, classes, depth);
        var bytes = new byte[rgb.Length];
        for (int i = 0; i < rgb.Length; i++) bytes[i] = (byte)Math.Round(Math.Clamp(rgb[i], 0f, 1f) * 255f);
        return new Scene { Size = s, Rgb = bytes, Classes = classes, Depth = depth, NearDepth = near, FarDepth = far, Objects = objects };
    }

    /// <summary>Scenes [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) as tensors.</summary>
    public SceneSet GenerateSet(int start, int count)
    {
        var scenes = new Scene[count];
        Parallel.For(0, count, i => scenes[i] = Generate(start + i));
        return SceneSet.From(scenes, $"{Identity}[{start}, {start + count})");
    }

    /// <summary>The pixels of the image where <paramref name="o"/> is opaque, as a Size × Size mask (clipped to the image).</summary>
    public bool[] ObjectMask(SceneObject o)
    {
        int s = Options.Size;
        var mask = new bool[s * s];
        ForEachOpaquePixel(o, (y, x, _) => mask[y * s + x] = true);
        return mask;
    }

    void PaintGround(Random rng, GroundCamera camera, float[] rgb, float[] depth)
    {
        int s = Options.Size;
        var texture = _textures[rng.Next(_textures.Count)];
        double tile = Uniform(rng, Options.TileMetres), u0 = rng.NextDouble(), v0 = rng.NextDouble();
        var tint = Tint(rng, 0.55);
        for (int y = 0; y < s; y++)
        {
            double z = camera.GroundDepth(y + 0.5);
            float fog = (float)(Options.Fog * (z - camera.Near) / (camera.Far - camera.Near));
            for (int x = 0; x < s; x++)
            {
                depth[y * s + x] = (float)z;
                double g = 0;   // 2×2 supersampling against the aliasing of far texture
                for (int sy = 0; sy < 2; sy++)
                    for (int sx = 0; sx < 2; sx++)
                    {
                        double zs = camera.GroundDepth(y + 0.25 + 0.5 * sy);
                        double xs = (x + 0.25 + 0.5 * sx - s / 2.0) * zs / camera.Focal;
                        g += texture.SampleWrapped((xs / tile + u0) * texture.Width, (zs / tile + v0) * texture.Height);
                    }
                for (int c = 0; c < 3; c++)
                    rgb[(c * s + y) * s + x] = (1 - fog) * (float)(g / 4) * tint[c] + fog * FogColour[c];
            }
        }
    }

    /// <summary>Draws the objects and returns them far first (ties keep the draw order).</summary>
    List<SceneObject> PlaceObjects(Random rng, GroundCamera camera)
    {
        int s = Options.Size;
        int n = rng.Next(Options.MinObjects, Options.MaxObjects + 1);
        var objects = new List<SceneObject>(n);
        for (int k = 0; k < n; k++)
        {
            int source = rng.Next(_objectLabels.Length);
            double lo = camera.Near + 0.05 * (camera.Far - camera.Near), hi = camera.Far - 0.05 * (camera.Far - camera.Near);
            double d = lo + rng.NextDouble() * (hi - lo);
            double height = Uniform(rng, Options.ObjectHeight);
            int side = Math.Max(3, (int)Math.Round(camera.Focal * height / d));
            int bottom = (int)Math.Round(camera.GroundRow(d) - 0.5);   // the row whose centre sees the ground at depth d
            int left = rng.Next(-side / 4, Math.Max(-side / 4, s - side + side / 4) + 1);
            objects.Add(new SceneObject((int)_objectLabels[source], d, bottom - side + 1, left, side, source, Tint(rng, 0.35)));
        }
        return objects.Select((o, i) => (o, i)).OrderByDescending(t => t.o.Depth).ThenBy(t => t.i).Select(t => t.o).ToList();
    }

    void PaintObject(SceneObject o, float[] rgb, byte[] classes, float[] depth)
    {
        int s = Options.Size;
        ForEachOpaquePixel(o, (y, x, v) =>
        {
            int p = y * s + x;
            classes[p] = (byte)(o.Label + 1);
            depth[p] = (float)o.Depth;
            float shade = (float)(0.25 + 0.75 * v / 255);
            for (int c = 0; c < 3; c++) rgb[c * s * s + p] = shade * o.Tint[c];
        });
    }

    /// <summary>Calls <paramref name="action"/>(row, column, value 0..255) for every in-image pixel where the object is opaque.</summary>
    void ForEachOpaquePixel(SceneObject o, Action<int, int, double> action)
    {
        int s = Options.Size, n = _objectSide;
        int offset = o.SourceIndex * n * n;
        double scale = (double)n / o.Side;
        for (int i = Math.Max(0, -o.Top); i < o.Side && o.Top + i < s; i++)
            for (int j = Math.Max(0, -o.Left); j < o.Side && o.Left + j < s; j++)
            {
                double v = Bilinear(_objectPixels, offset, n, (i + 0.5) * scale - 0.5, (j + 0.5) * scale - 0.5);
                if (v >= Options.MaskThreshold) action(o.Top + i, o.Left + j, v);
            }
    }

    /// <summary>Bilinear sample of an n×n byte image at (row, column), edges clamped.</summary>
    static double Bilinear(byte[] pixels, int offset, int n, double r, double c)
    {
        r = Math.Clamp(r, 0, n - 1);
        c = Math.Clamp(c, 0, n - 1);
        int r0 = (int)r, c0 = (int)c, r1 = Math.Min(r0 + 1, n - 1), c1 = Math.Min(c0 + 1, n - 1);
        double fr = r - r0, fc = c - c0;
        double top = pixels[offset + r0 * n + c0] * (1 - fc) + pixels[offset + r0 * n + c1] * fc;
        double bottom = pixels[offset + r1 * n + c0] * (1 - fc) + pixels[offset + r1 * n + c1] * fc;
        return top * (1 - fr) + bottom * fr;
    }

    static double Uniform(Random rng, (double Min, double Max) range) => range.Min + rng.NextDouble() * (range.Max - range.Min);

    static float[] Tint(Random rng, double min) => [(float)(min + rng.NextDouble() * (1 - min)), (float)(min + rng.NextDouble() * (1 - min)), (float)(min + rng.NextDouble() * (1 - min))];

    /// <summary>A 31-bit seed for scene <paramref name="index"/>'s stream (SplitMix64 of the seed and the index).</summary>
    static int StreamSeed(long seed, int index)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)index + 0x632BE59BD9B4E019UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (int)((z ^ (z >> 31)) & 0x7FFFFFFF);
    }

    /// <summary>
    /// The ground seen by a level pinhole camera: rows are pixel rows (centres at r + 0.5); the ground at image row r
    /// lies at depth <c>fH / (r − horizon)</c>, with the horizon row above the image chosen so that the bottom row
    /// sees <paramref name="Near"/> and the top row <paramref name="Far"/> metres.
    /// </summary>
    readonly record struct GroundCamera(int Size, double Focal, double Near, double Far)
    {
        double Horizon => (0.5 * Far - (Size - 0.5) * Near) / (Far - Near);
        double FocalTimesHeight => Near * (Size - 0.5 - Horizon);

        /// <summary>Depth of the ground seen at (continuous) row <paramref name="row"/>.</summary>
        public double GroundDepth(double row) => FocalTimesHeight / (row - Horizon);

        /// <summary>The (continuous) row that sees the ground at <paramref name="depth"/>.</summary>
        public double GroundRow(double depth) => FocalTimesHeight / depth + Horizon;
    }
}
