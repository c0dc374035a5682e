using Microsoft.ML.Data;
using Svg.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>What happens to an image's alpha channel (ML.NET images hold premultiplied BGRA or RGBA).</summary>
public enum SvgAlphaMode
{
    /// <summary>Drop alpha and keep the colours (un-premultiplied), like PIL's <c>convert("RGB")</c> in the official code. The default.</summary>
    Drop,

    /// <summary>Composite the image over a black background.</summary>
    CompositeOnBlack,

    /// <summary>Composite the image over a white background.</summary>
    CompositeOnWhite,
}

/// <summary>
/// Batched conversions between ML.NET <see cref="MLImage"/> and float image tensors: one memory copy per image, every
/// per-pixel operation (channel order, alpha, scaling, resizing) done by tensor ops on the whole batch.
/// </summary>
internal static class MLImageTensors
{
    /// <summary>An image's pixels copied into a CPU uint8 tensor [H, W, 4], with its channel order.</summary>
    internal readonly record struct StagedImage(Tensor Pixels, MLPixelFormat Format) : IDisposable
    {
        public long Height => Pixels.shape[0];
        public long Width => Pixels.shape[1];
        public void Dispose() => Pixels.Dispose();
    }

    /// <summary>Copies an image's pixels (one memcpy) into a new CPU tensor; the image can be disposed afterwards.</summary>
    public static StagedImage Stage(MLImage image)
    {
        var format = image.PixelFormat;
        if (format is not (MLPixelFormat.Bgra32 or MLPixelFormat.Rgba32))
            throw new InvalidDataException($"unsupported pixel format {format}.");
        if (image.Width <= 0 || image.Height <= 0) throw new InvalidDataException($"empty image ({image.Width}x{image.Height}).");
        var t = empty(new long[] { image.Height, image.Width, 4 }, ScalarType.Byte);
        ReadOnlySpan<byte> src = image.Pixels;
        if (src.Length != image.Width * image.Height * 4)
            throw new InvalidDataException($"pixel buffer holds {src.Length} bytes, expected {image.Width * image.Height * 4}.");
        src.CopyTo(t.bytes);
        // Owned by the kernel until its batch is computed, whatever dispose scope the caller is in.
        return new StagedImage(t.DetachFromDisposeScope(), format);
    }

    /// <summary>
    /// Staged images (any sizes, formats) → RGB float tensor [B, 3, size, size] in [0, 1] on <paramref name="device"/>,
    /// in input order. Images of equal size and format are converted together.
    /// </summary>
    public static Tensor ToRgb01(IReadOnlyList<StagedImage> images, int size, ResizeMode resize, SvgAlphaMode alpha, Device device)
    {
        if (images.Count == 0) throw new ArgumentException("no images", nameof(images));
        using var scope = NewDisposeScope();
        var groups = images.Select((img, i) => (img, i)).GroupBy(x => (x.img.Height, x.img.Width, x.img.Format)).ToList();
        var parts = new List<Tensor>();
        var order = new List<long>();
        foreach (var g in groups)
        {
            var batch = stack(g.Select(x => x.img.Pixels).ToArray()).to(device);          // [n, H, W, 4] uint8
            var rgb = ToRgb01(batch, g.Key.Format, alpha);                                    // [n, 3, H, W]
            parts.Add(ImageTensors.ToSquare(rgb, size, resize));
            order.AddRange(g.Select(x => (long)x.i));
        }
        var all = parts.Count == 1 ? parts[0] : cat(parts, 0);
        if (groups.Count > 1)
        {
            // all[k] is image order[k]: invert the permutation to restore input order.
            var inverse = new long[order.Count];
            for (int k = 0; k < order.Count; k++) inverse[order[k]] = k;
            all = all.index_select(0, tensor(inverse, device: device));
        }
        return all.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>[n, H, W, 4] uint8 (premultiplied BGRA or RGBA) → [n, 3, H, W] float RGB in [0, 1].</summary>
    static Tensor ToRgb01(Tensor pixels, MLPixelFormat format, SvgAlphaMode alpha)
    {
        var x = pixels.permute(0, 3, 1, 2).to(ScalarType.Float32);                        // [n, 4, H, W] in [0, 255]
        var rgb = format == MLPixelFormat.Bgra32 ? x.index_select(1, tensor(new long[] { 2, 1, 0 }, device: x.device)) : x.narrow(1, 0, 3);
        var a = x.narrow(1, 3, 1);
        return alpha switch
        {
            // Premultiplied c = straight * a / 255, so straight / 255 = c / a (clamped: rounding may overshoot by 1 level).
            SvgAlphaMode.Drop => where(a > 0, (rgb / a.clamp_min(1)).clamp_max(1), zeros_like(rgb)),
            SvgAlphaMode.CompositeOnBlack => rgb / 255,
            SvgAlphaMode.CompositeOnWhite => (rgb + (255 - a)) / 255,
            _ => throw new ArgumentOutOfRangeException(nameof(alpha)),
        };
    }

    /// <summary>[B, 3, H, W] float RGB in [0, 1] → CPU bytes, RGBA, [B, H, W, 4], alpha 255 (one array for the batch).</summary>
    public static byte[] ToRgbaBytes(Tensor rgb01)
    {
        using var scope = NewDisposeScope();
        var q = (rgb01.detach().clamp(0, 1) * 255).round().to(ScalarType.Byte);            // [B, 3, H, W]
        var a = full(new long[] { q.shape[0], 1, q.shape[2], q.shape[3] }, 255, ScalarType.Byte, device: q.device);
        var rgba = cat(new[] { q, a }, 1).permute(0, 2, 3, 1).contiguous().cpu();           // [B, H, W, 4]
        return rgba.bytes.ToArray();
    }

    /// <summary>Batched RGB tensor → one <see cref="MLImage"/> per image (RGBA).</summary>
    public static MLImage[] ToImages(Tensor rgb01)
    {
        int b = (int)rgb01.shape[0], h = (int)rgb01.shape[2], w = (int)rgb01.shape[3];
        byte[] bytes = ToRgbaBytes(rgb01);
        int stride = h * w * 4;
        var result = new MLImage[b];
        for (int i = 0; i < b; i++) result[i] = MLImage.CreateFromPixels(w, h, MLPixelFormat.Rgba32, bytes.AsSpan(i * stride, stride));
        return result;
    }

    /// <summary>Images → RGB [B, 3, size, size] in [0, 1] (convenience for the direct APIs).</summary>
    public static Tensor FromImages(IReadOnlyList<MLImage> images, int size, ResizeMode resize, SvgAlphaMode alpha, Device device)
    {
        var staged = images.Select(Stage).ToList();
        try { return ToRgb01(staged, size, resize, alpha, device); }
        finally { foreach (var s in staged) s.Dispose(); }
    }
}
