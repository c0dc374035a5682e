using Svg.ML.Data;
using static TorchSharp.torch;

namespace Svg.ML.DenseTasks;

/// <summary>
/// The Middlebury 2014 "Motorcycle" stereo scene as shipped by scikit-image (Debian <c>python3-skimage</c>):
/// <c>motorcycle_left.png</c> (741×500, 4× down-sampled) and <c>motorcycle_disp.npz</c> (its ground-truth disparity,
/// <c>inf</c> where unknown). Depth = f·B / (d + doffs) with the down-sampled calibration from scikit-image's
/// <c>stereo_motorcycle</c> docstring: f = 994.978 px, baseline B = 193.001 mm, doffs = 31.086 px (the full-size
/// values 3979.911 px and 124.343 px divided by 4).
/// </summary>
public static class Middlebury
{
    public const string DebianDirectory = "/usr/lib/python3/dist-packages/skimage/data";
    public const double FocalPixels = 994.978, BaselineMetres = 0.193001, DisparityOffset = 31.086;

    public const string InstallHint = "apt-get install python3-skimage (the Middlebury files are not bundled in data/: their terms are the Middlebury dataset's own)";

    public static bool IsPresent(string directory) =>
        File.Exists(Path.Combine(directory, "motorcycle_left.png")) && File.Exists(Path.Combine(directory, "motorcycle_disp.npz"));

    /// <summary>Left image float [3, H, W] in [0, 1] and depth [H, W] in metres (0 = unknown), both at half the shipped size.</summary>
    public static (Tensor Image, Tensor Depth) Load(string directory)
    {
        using var scope = NewDisposeScope();
        var image = ImageTensors.Load(Path.Combine(directory, "motorcycle_left.png"));   // uint8 [3, 500, 741]
        var disparity = NpyReader.ReadNpz(Path.Combine(directory, "motorcycle_disp.npz"), "arr_0");   // [500, 741]
        if (disparity.shape[0] != image.shape[1] || disparity.shape[1] != image.shape[2])
            throw new InvalidDataException($"{directory}: disparity [{string.Join(", ", disparity.shape)}] does not match the image [{string.Join(", ", image.shape)}].");
        var depth = (FocalPixels * BaselineMetres) / (disparity + DisparityOffset);
        depth = where(disparity.isfinite() & disparity.gt(0), depth, zeros_like(depth));
        // Halve: even size, the image antialiased, the depth subsampled (averaging would mix unknown pixels in).
        long h = image.shape[1] / 2 * 2, w = image.shape[2] / 2 * 2;
        var rgb = ImageTensors.ToFloat01(image.narrow(1, 0, h).narrow(2, 0, w).unsqueeze(0));
        rgb = ImageTensors.Resize(rgb, (int)h / 2, (int)w / 2, ResizeMode.Stretch)[0];
        depth = depth.narrow(0, 0, h).narrow(1, 0, w).slice(0, 0, h, 2).slice(1, 0, w, 2).contiguous();
        return (rgb.MoveToOuterDisposeScope(), depth.to(ScalarType.Float32).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Tiles of <paramref name="size"/>² from the left two thirds of the columns (training, stride size/4) and from the
    /// right third (held out, stride size/2, the last tile flush with the edge): images [N, 3, s, s], depth [N, s, s].
    /// </summary>
    public static (Tensor Images, Tensor Depth, Tensor TestImages, Tensor TestDepth, int SplitColumn) Tiles(Tensor image, Tensor depth, int size)
    {
        long h = image.shape[1], w = image.shape[2];
        int split = (int)(w * 2 / 3);
        var train = Corners(0, (int)h - size, size / 4).SelectMany(r => Corners(0, split - size, size / 4).Select(c => (r, c))).ToArray();
        var test = Corners(0, (int)h - size, size / 2).SelectMany(r => Corners(split, (int)w - size, size / 2).Select(c => (r, c))).ToArray();
        Tensor Crop(Tensor t, (int R, int C)[] at) => stack(at.Select(p => t.narrow(-2, p.R, size).narrow(-1, p.C, size)).ToArray()).contiguous();
        return (Crop(image, train), Crop(depth, train), Crop(image, test), Crop(depth, test), split);
    }

    /// <summary>Start positions from <paramref name="first"/> to <paramref name="last"/> every <paramref name="stride"/>, plus <paramref name="last"/>.</summary>
    static IEnumerable<int> Corners(int first, int last, int stride)
    {
        if (last < first) throw new ArgumentException($"the region is smaller than one tile ({first}..{last}).");
        for (int p = first; p < last; p += stride) yield return p;
        yield return last;
    }
}
