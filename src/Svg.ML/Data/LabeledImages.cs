using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Data;

/// <summary>
/// A labelled image set held compactly as bytes: <see cref="Pixels"/> uint8 [N, C, H, W] (C = 1 for grayscale, 3 for RGB),
/// one class index per image and the class names. Training reads it in batches of float images
/// [B, 3, size, size] in [0, 1] (<see cref="Batches"/>), converted and resized per batch, so memory stays that of the bytes.
/// <see cref="Identity"/> describes where the data came from, for feature-cache keys.
/// </summary>
public sealed class LabeledImages : IDisposable
{
    /// <summary>uint8 [N, C, H, W] on the CPU.</summary>
    public Tensor Pixels { get; }

    /// <summary>Class index of each image.</summary>
    public long[] Labels { get; }

    /// <summary>Class names; label i names <c>ClassNames[i]</c>.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Data identity (source files with sizes and times, or a content hash, and the selection), for cache keys.</summary>
    public string Identity { get; }

    /// <summary>Takes ownership of <paramref name="pixels"/>.</summary>
    public LabeledImages(Tensor pixels, long[] labels, IReadOnlyList<string> classNames, string identity)
    {
        if (pixels.dtype != ScalarType.Byte || pixels.dim() != 4 || (pixels.shape[1] != 1 && pixels.shape[1] != 3))
            throw new ArgumentException($"pixels must be uint8 [N, 1|3, H, W], got {pixels.dtype} [{string.Join(",", pixels.shape)}].", nameof(pixels));
        if (pixels.shape[0] != labels.Length)
            throw new ArgumentException($"{pixels.shape[0]} images but {labels.Length} labels.", nameof(labels));
        if (labels.Any(l => l < 0 || l >= classNames.Count))
            throw new ArgumentException($"a label lies outside [0, {classNames.Count}).", nameof(labels));
        Pixels = pixels.DetachFromDisposeScope(); // owned by this object until Dispose
        Labels = labels;
        ClassNames = classNames;
        Identity = identity;
    }

    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>Stored channels (1 or 3).</summary>
    public int Channels => (int)Pixels.shape[1];

    /// <summary>Stored height.</summary>
    public int Height => (int)Pixels.shape[2];

    /// <summary>Stored width.</summary>
    public int Width => (int)Pixels.shape[3];

    /// <summary>Images [start, start + count) as float [count, 3, size, size] in [0, 1] (stored size when <paramref name="size"/> is null).</summary>
    public Tensor Images(long start, long count, int? size = null, ResizeMode mode = ResizeMode.CenterCrop)
    {
        using var slice = Pixels.narrow(0, start, count);
        return ImageTensors.ToFloat01(slice, size, mode);
    }

    /// <summary>Labels [start, start + count) as an int64 tensor.</summary>
    public Tensor LabelTensor(long start, long count) => tensor(Labels.AsSpan((int)start, (int)count).ToArray());

    /// <summary>
    /// Batches of (float images [B, 3, size, size] in [0, 1], int64 labels [B]); the last batch may be smaller.
    /// With <paramref name="shuffle"/>, the order is a permutation drawn from <paramref name="seed"/>.
    /// The caller owns (and disposes) the yielded tensors.
    /// </summary>
    public IEnumerable<(Tensor Images, Tensor Labels)> Batches(int batchSize, int? size = null, bool shuffle = false, long seed = 0, ResizeMode mode = ResizeMode.CenterCrop)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize));
        long[] order;
        if (shuffle)
        {
            var g = new Generator((ulong)seed);
            using var perm = randperm(Count, generator: g);
            order = perm.data<long>().ToArray();
        }
        else order = Enumerable.Range(0, Count).Select(i => (long)i).ToArray();

        for (int start = 0; start < Count; start += batchSize)
        {
            int n = Math.Min(batchSize, Count - start);
            var idx = order.AsSpan(start, n).ToArray();
            Tensor images, labels;
            using (var scope = NewDisposeScope())
            {
                var picked = Pixels.index_select(0, tensor(idx));
                images = ImageTensors.ToFloat01(picked, size, mode).MoveToOuterDisposeScope();
                labels = tensor(idx.Select(i => Labels[i]).ToArray()).MoveToOuterDisposeScope();
            }
            yield return (images, labels);
        }
    }

    /// <summary>
    /// Writes images [start, start + count) as PNG files <c>{prefix}{index:D5}.png</c> in <paramref name="folder"/>
    /// (RGBA, grayscale repeated), so that file-based pipelines (ML.NET <c>LoadImages</c>) can read them.
    /// Returns each file's path and label.
    /// </summary>
    public List<(string Path, long Label)> SavePngs(string folder, string prefix = "", int start = 0, int? count = null)
    {
        int n = Math.Min(count ?? Count - start, Count - start);
        Directory.CreateDirectory(folder);
        using var scope = NewDisposeScope();
        var rgb = Pixels.narrow(0, start, n).expand(-1, 3, -1, -1);                               // [n, 3, H, W]
        var alpha = full(new long[] { n, 1, Height, Width }, 255, ScalarType.Byte);
        byte[] rgba = cat(new[] { rgb, alpha }, 1).permute(0, 2, 3, 1).contiguous().bytes.ToArray(); // [n, H, W, 4]
        int stride = Height * Width * 4;
        var files = new List<(string, long)>(n);
        for (int i = 0; i < n; i++)
        {
            string path = System.IO.Path.Combine(folder, $"{prefix}{start + i:D5}.png");
            using (var image = Microsoft.ML.Data.MLImage.CreateFromPixels(Width, Height, Microsoft.ML.Data.MLPixelFormat.Rgba32, rgba.AsSpan(i * stride, stride)))
                image.Save(path);
            files.Add((path, Labels[start + i]));
        }
        return files;
    }

    /// <summary>The first <paramref name="count"/> images (a copy; the identity records the selection).</summary>
    public LabeledImages Take(int count)
    {
        count = Math.Min(count, Count);
        return new LabeledImages(Pixels.narrow(0, 0, count).clone(), Labels[..count], ClassNames, $"{Identity}|take={count}");
    }

    public void Dispose() => Pixels.Dispose();
}
