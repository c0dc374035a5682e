using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.Data;

namespace Svg.ML.Dense.Data;

/// <summary>One row of a dense-task data view: the image file and its target map (size × size, row-major).</summary>
public sealed class DenseRow
{
    /// <summary>The image file (load it with <c>LoadImages</c>, then <c>SvgFeaturize</c>).</summary>
    public string ImagePath { get; set; } = "";

    /// <summary>The target map: class indices (segmentation, ignore value included) or metres (depth, 0 = invalid).</summary>
    public float[] Target { get; set; } = [];
}

/// <summary>
/// Dense-task files as an ML.NET <see cref="IDataView"/> with columns <c>ImagePath</c> (text) and <c>Target</c>
/// (Single vector [size, size]), ready for <c>LoadImages → SvgFeaturize → SvgSegmentation / SvgDepth</c>. Images of any
/// size and aspect: each target is cut to the same central square the featurizer's <see cref="ResizeMode.CenterCrop"/>
/// keeps (or stretched, with <see cref="ResizeMode.Stretch"/>) and sampled to size × size with nearest neighbours
/// (class indices and depth must not be blended). Targets are read when the view is made (size² floats per row in
/// memory); a bad pair throws naming its file, or with <c>skipBadRows</c> is left out and described in <c>problems</c>.
/// </summary>
public static class DenseDataViews
{
    /// <summary>Segmentation rows from class masks (<see cref="DenseReaders.ReadMask"/>), checked against their images' sizes.</summary>
    public static IDataView Segmentation(MLContext ml, IEnumerable<DensePair> pairs, MaskFormat format, int numClasses, int size,
                                         bool skipBadRows, out List<string> problems, ResizeMode mode = ResizeMode.CenterCrop)
    {
        var rows = DenseReaders.ReadMasks(pairs, format, numClasses, skipBadRows, out problems)
            .Select(m => new DenseRow { ImagePath = m.Pair.ImagePath, Target = Sample(m.Classes.Select(c => (float)c).ToArray(), m.Width, m.Height, size, mode) });
        return View(ml, rows.ToList(), size);
    }

    /// <summary>Depth rows from depth files (<see cref="DenseReaders.ReadDepth"/>: 16-bit PNG × <paramref name="pngScale"/>,
    /// or float maps × <paramref name="floatScale"/>), checked against their images' sizes.</summary>
    public static IDataView Depth(MLContext ml, IEnumerable<DensePair> pairs, int size, bool skipBadRows, out List<string> problems,
                                  double pngScale = 1e-3, double floatScale = 1.0, ResizeMode mode = ResizeMode.CenterCrop)
    {
        var rows = new List<DenseRow>();
        problems = new List<string>();
        foreach (var pair in pairs)
        {
            try
            {
                var (w, h, metres) = DenseReaders.ReadDepth(pair.TargetPath, pngScale, floatScale);
                DenseReaders.CheckSameSize(pair, w, h);
                rows.Add(new DenseRow { ImagePath = pair.ImagePath, Target = Sample(metres, w, h, size, mode) });
            }
            catch (Exception e) when (skipBadRows && e is InvalidDataException or IOException or NotSupportedException)
            {
                problems.Add(e.Message);
            }
        }
        return View(ml, rows, size);
    }

    /// <summary>
    /// Nearest-neighbour sampling of a width × height map to size × size: output pixel (x, y) takes the source pixel under
    /// its centre, <c>floor(offset + (x + ½)·extent / size)</c>, where the extent is the central square's side
    /// (<see cref="ResizeMode.CenterCrop"/>, offset half the excess) or the whole side (<see cref="ResizeMode.Stretch"/>).
    /// </summary>
    public static float[] Sample(float[] map, int width, int height, int size, ResizeMode mode = ResizeMode.CenterCrop)
    {
        if (map.Length != width * height) throw new ArgumentException($"The map has {map.Length} values, not {width}×{height}.");
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size));
        int side = Math.Min(width, height);
        double extentX = mode == ResizeMode.CenterCrop ? side : width, extentY = mode == ResizeMode.CenterCrop ? side : height;
        double left = mode == ResizeMode.CenterCrop ? (width - side) / 2.0 : 0, top = mode == ResizeMode.CenterCrop ? (height - side) / 2.0 : 0;
        var columns = Enumerable.Range(0, size).Select(x => Math.Min(width - 1, (int)Math.Floor(left + (x + 0.5) * extentX / size))).ToArray();
        var result = new float[size * size];
        for (int y = 0; y < size; y++)
        {
            int row = Math.Min(height - 1, (int)Math.Floor(top + (y + 0.5) * extentY / size)) * width;
            for (int x = 0; x < size; x++) result[y * size + x] = map[row + columns[x]];
        }
        return result;
    }

    static IDataView View(MLContext ml, List<DenseRow> rows, int size)
    {
        var schema = SchemaDefinition.Create(typeof(DenseRow));
        schema[nameof(DenseRow.Target)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size, size);
        return ml.Data.LoadFromEnumerable(rows, schema);
    }
}
