using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Data;

/// <summary>
/// Reads a folder with one subfolder per class (torchvision's <c>ImageFolder</c> layout): class names are the
/// subfolder names sorted ordinally, label i = i-th name; images are the files with a known image extension
/// anywhere below a class folder, sorted by relative path. Decoding uses ML.NET's <see cref="Microsoft.ML.Data.MLImage"/>.
/// </summary>
public static class ImageFolder
{
    /// <summary>File extensions read as images (case-insensitive).</summary>
    public static readonly IReadOnlyList<string> Extensions = new[] { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    /// <summary>The (file, label) list and the class names, without decoding anything.</summary>
    public static (IReadOnlyList<(string Path, long Label)> Files, IReadOnlyList<string> ClassNames) List(string root)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"Image folder not found: {root}");
        var classes = Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>()
                               .Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0) throw new InvalidDataException($"{root} has no class subfolders (expected root/<class>/<image>).");
        var files = new List<(string, long)>();
        for (int c = 0; c < classes.Length; c++)
        {
            string dir = Path.Combine(root, classes[c]);
            files.AddRange(Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                                    .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                                    .Order(StringComparer.Ordinal)
                                    .Select(f => (f, (long)c)));
        }
        if (files.Count == 0) throw new InvalidDataException($"{root} has no image files ({string.Join(", ", Extensions)}).");
        return (files, classes);
    }

    /// <summary>
    /// Decodes every image, brings it to <paramref name="imageSize"/>² RGB (<see cref="ImageTensors.ToSquare"/>, as the
    /// ML.NET featurizer does; <paramref name="mode"/> decides crop or stretch) and stores it as bytes.
    /// With <paramref name="imageSize"/> null all images must share one size. <paramref name="limitPerClass"/> keeps the
    /// first files of each class.
    /// </summary>
    public static LabeledImages Load(string root, int? imageSize, ResizeMode mode = ResizeMode.CenterCrop, int? limitPerClass = null)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        var (all, classNames) = List(root);
        var files = limitPerClass is int k ? all.GroupBy(f => f.Label).SelectMany(g => g.Take(k)).ToList() : all.ToList();
        var items = new List<Tensor>(files.Count);
        try
        {
            foreach (var (path, _) in files)
            {
                using var scope = NewDisposeScope();
                Tensor rgb;
                try { rgb = ImageTensors.Load(path); }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or InvalidDataException)
                { throw new InvalidDataException($"cannot decode image {path}: {e.Message}", e); }
                if (imageSize is int s && (rgb.shape[1] != s || rgb.shape[2] != s))
                {
                    var f = ImageTensors.ToSquare(rgb.unsqueeze(0).to(ScalarType.Float32) / 255f, s, mode);
                    rgb = ImageTensors.ToBytes(f).squeeze(0);
                }
                else if (items.Count > 0 && (rgb.shape[1] != items[0].shape[1] || rgb.shape[2] != items[0].shape[2]))
                    throw new InvalidDataException($"{path} is {rgb.shape[2]}×{rgb.shape[1]}, the first image {items[0].shape[2]}×{items[0].shape[1]}: give an image size.");
                items.Add(rgb.MoveToOuterDisposeScope());
            }
            var pixels = stack(items);
            string identity = $"imagefolder:{DataIdentity.OfFiles(files.Select(f => f.Path), root)}|size={imageSize?.ToString() ?? "native"}|square={mode}|limit={limitPerClass?.ToString() ?? "all"}";
            return new LabeledImages(pixels, files.Select(f => f.Label).ToArray(), classNames, identity);
        }
        finally { foreach (var t in items) t.Dispose(); }
    }
}
