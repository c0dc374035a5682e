using Microsoft.ML.Data;
using Svg.ML.Data;

namespace Svg.ML.Dense.Data;

/// <summary>How a mask PNG stores classes.</summary>
public enum MaskFormat
{
    /// <summary>ADE20K (<c>ADEChallengeData2016</c>): grey values 0..K with 0 = "other"; as mmseg's
    /// <c>reduce_zero_label</c>, 0 → ignore (255) and v → v − 1.</summary>
    Ade20k,

    /// <summary>Pascal VOC: palette (or grey) PNG of class indices, 255 = boundary/ignore.</summary>
    Voc,
}

/// <summary>One image with its mask (or depth) file.</summary>
public sealed record DensePair(string ImagePath, string TargetPath);

/// <summary>
/// Readers for the dense-task layouts: paired image/annotation folders (ADE20K <c>images/&lt;split&gt;/*.jpg</c> +
/// <c>annotations/&lt;split&gt;/*.png</c>), class masks (<see cref="MaskFormat"/>) and depth maps stored as 16-bit PNG
/// with a scale (NYUv2 as commonly distributed: millimetres, scale 1e-3; 0 = invalid) or as float maps (<c>.npy</c>,
/// <c>.npz</c>, <c>.pfm</c>; see <see cref="ReadDepth"/>). Every error names the file.
/// </summary>
public static class DenseReaders
{
    /// <summary>The ignore value masks are mapped to.</summary>
    public const int Ignore = (int)DenseLosses.IgnoreIndex;

    /// <summary>
    /// Pairs <c>{root}/images/{split}/X.*</c> with <c>{root}/annotations/{split}/X.png</c> (ADE20K layout; split
    /// "training" or "validation"), sorted by name. An image without annotation throws, naming it — or, with
    /// <paramref name="skipBadRows"/>, is left out and counted in <paramref name="skipped"/>.
    /// </summary>
    public static IReadOnlyList<DensePair> PairedFolders(string root, string split, bool skipBadRows, out int skipped,
                                                         string imagesFolder = "images", string targetsFolder = "annotations")
    {
        string images = Path.Combine(root, imagesFolder, split), targets = Path.Combine(root, targetsFolder, split);
        if (!Directory.Exists(images)) throw new DirectoryNotFoundException($"No image folder '{images}'.");
        if (!Directory.Exists(targets)) throw new DirectoryNotFoundException($"No annotation folder '{targets}'.");
        var pairs = new List<DensePair>();
        skipped = 0;
        foreach (var image in Directory.EnumerateFiles(images).Where(IsImage).Order(StringComparer.Ordinal))
        {
            string target = Path.Combine(targets, Path.GetFileNameWithoutExtension(image) + ".png");
            if (File.Exists(target)) pairs.Add(new DensePair(image, target));
            else if (skipBadRows) skipped++;
            else throw new FileNotFoundException($"'{image}' has no annotation '{target}'.", target);
        }
        return pairs;
    }

    static bool IsImage(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".jpg" or ".jpeg" or ".png" or ".bmp" or ".webp";

    /// <summary>
    /// A class mask as int class indices in [0, <paramref name="numClasses"/>) or <see cref="Ignore"/>, row-major.
    /// A value outside that range throws <see cref="InvalidDataException"/> naming the file, the value and its pixel.
    /// </summary>
    public static (int Width, int Height, int[] Classes) ReadMask(string path, MaskFormat format, int numClasses)
    {
        var (w, h, samples) = PngSamples.Read(path);
        var classes = new int[samples.Length];
        for (int i = 0; i < samples.Length; i++)
        {
            int v = samples[i];
            int c = format == MaskFormat.Ade20k ? (v == 0 ? Ignore : v - 1) : v;
            if (c != Ignore && (uint)c >= (uint)numClasses)
                throw new InvalidDataException(
                    $"'{path}': class value {v} at pixel ({i % w}, {i / w}) is outside the {numClasses} classes ({format} mask).");
            classes[i] = c;
        }
        return (w, h, classes);
    }

    /// <summary>A 16-bit PNG depth map in metres (<c>value × scale</c>; NYUv2 millimetres: 1e-3); 0 stays 0 (invalid).</summary>
    public static (int Width, int Height, float[] Metres) ReadDepth16(string path, double scale = 1e-3)
    {
        var (w, h, samples) = PngSamples.Read(path);
        return (w, h, samples.Select(s => (float)(s * scale)).ToArray());
    }

    /// <summary>
    /// A depth map in metres, by extension: <c>.png</c> 16-bit samples × <paramref name="pngScale"/> (NYUv2 millimetres:
    /// 1e-3); <c>.npy</c> / <c>.npz</c> (first array) / <c>.pfm</c> float maps × <paramref name="floatScale"/> (1: the
    /// file holds metres). A float map must be 2-D [H, W] (or [1, H, W], [H, W, 1]); NaN, ±∞ and values ≤ 0 become 0,
    /// the invalid marker.
    /// </summary>
    public static (int Width, int Height, float[] Metres) ReadDepth(string path, double pngScale = 1e-3, double floatScale = 1.0)
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".png") return ReadDepth16(path, pngScale);
        var (w, h, values) = ext switch
        {
            ".pfm" => PfmDepth(path),
            ".npy" or ".npz" => NpyDepth(path, ext),
            _ => throw new NotSupportedException($"'{path}': depth files must be .png (16-bit), .npy, .npz or .pfm."),
        };
        float s = (float)floatScale;
        for (int i = 0; i < values.Length; i++)
            values[i] = float.IsFinite(values[i]) && values[i] > 0 ? values[i] * s : 0f;
        return (w, h, values);
    }

    static (int, int, float[]) PfmDepth(string path)
    {
        var (w, h, channels, values) = PfmReader.Read(path);
        if (channels != 1) throw new InvalidDataException($"'{path}': a depth map has one channel (PFM 'Pf'); this one has {channels}.");
        return (w, h, values);
    }

    static (int, int, float[]) NpyDepth(string path, string ext)
    {
        using var array = ext == ".npz" ? NpyReader.ReadNpz(path) : NpyReader.Read(path);
        var shape = array.shape.Where(d => d != 1).ToArray();
        if (shape.Length != 2 || !array.is_floating_point())
            throw new InvalidDataException($"'{path}': a depth map is a 2-D float array; this one is {array.dtype} [{string.Join(", ", array.shape)}].");
        using var f = array.to(TorchSharp.torch.ScalarType.Float32).contiguous();
        return ((int)shape[1], (int)shape[0], f.data<float>().ToArray());
    }

    /// <summary>
    /// Reads the masks of <paramref name="pairs"/>, checking each against its image's size. A bad pair (unreadable
    /// file, size mismatch, class out of range) throws naming the file — or, with <paramref name="skipBadRows"/>, is
    /// skipped, counted and described in <paramref name="problems"/>.
    /// </summary>
    public static IReadOnlyList<(DensePair Pair, int[] Classes, int Width, int Height)> ReadMasks(
        IEnumerable<DensePair> pairs, MaskFormat format, int numClasses, bool skipBadRows, out List<string> problems)
    {
        var rows = new List<(DensePair, int[], int, int)>();
        problems = new List<string>();
        foreach (var pair in pairs)
        {
            try
            {
                var (w, h, classes) = ReadMask(pair.TargetPath, format, numClasses);
                CheckSameSize(pair, w, h);
                rows.Add((pair, classes, w, h));
            }
            catch (Exception e) when (skipBadRows && e is InvalidDataException or IOException or NotSupportedException)
            {
                problems.Add(e.Message);
            }
        }
        return rows;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming both files when the target's size is not its image's.</summary>
    internal static void CheckSameSize(DensePair pair, int width, int height)
    {
        var (iw, ih) = ImageSize(pair.ImagePath);
        if (iw != width || ih != height)
            throw new InvalidDataException($"'{pair.TargetPath}' is {width}×{height} but its image '{pair.ImagePath}' is {iw}×{ih}.");
    }

    static (int W, int H) ImageSize(string path)
    {
        try
        {
            using var image = MLImage.CreateFromFile(path);
            return (image.Width, image.Height);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new InvalidDataException($"'{path}': the image cannot be read ({e.Message}).", e);
        }
    }
}
