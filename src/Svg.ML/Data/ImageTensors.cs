using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Svg.ML.Data;

/// <summary>How an image of another size is brought to a square target size (<see cref="ImageTensors.ToSquare"/>).</summary>
public enum ResizeMode
{
    /// <summary>
    /// Scale the shorter side to the target size, then crop the centre square: the official SVG/ADM data pipeline
    /// (<c>center_crop_arr</c>). The default.
    /// </summary>
    CenterCrop,

    /// <summary>Scale both sides to the target size, ignoring the aspect ratio (the DINOv3 README's transform).</summary>
    Stretch,
}

/// <summary>Conversions between decoded images, byte tensors and float image tensors.</summary>
public static class ImageTensors
{
    /// <summary>
    /// A decoded <see cref="MLImage"/> → uint8 tensor [3, H, W] in RGB order. MLImage keeps 32-bit pixels
    /// (BGRA or RGBA); alpha is dropped (SkiaSharp decodes with premultiplied alpha, so transparent pixels come out dark).
    /// </summary>
    public static Tensor FromMLImage(MLImage image)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        int w = image.Width, h = image.Height;
        var pixels = image.Pixels;
        int rowBytes = pixels.Length / h;
        if (rowBytes < w * 4) throw new InvalidDataException($"image buffer of {pixels.Length} bytes is too small for {w}×{h}×4.");
        using var scope = NewDisposeScope();
        var hwc = empty(new long[] { h, rowBytes }, ScalarType.Byte);
        // The setter only reads the span (it copies into the tensor).
        hwc.bytes = System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(pixels), rowBytes * h);
        var px = hwc.narrow(1, 0, (long)w * 4).view(h, w, 4);
        long[] order = image.PixelFormat == MLPixelFormat.Bgra32 ? new long[] { 2, 1, 0 } : new long[] { 0, 1, 2 };
        using var idx = tensor(order);
        return px.index_select(2, idx).permute(2, 0, 1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Decodes an image file (PNG, JPEG, BMP, GIF, WebP: what SkiaSharp reads) → uint8 [3, H, W] RGB.</summary>
    public static Tensor Load(string path)
    {
        using var image = MLImage.CreateFromFile(path);
        return FromMLImage(image);
    }

    /// <summary>
    /// uint8 [N, C, H, W] (C = 1 or 3) → float32 [N, 3, size, size] in [0, 1]: grayscale repeated to 3 channels,
    /// brought to size² with <see cref="ToSquare"/> when <paramref name="size"/> is given.
    /// </summary>
    public static Tensor ToFloat01(Tensor bytes, int? size = null, ResizeMode mode = ResizeMode.CenterCrop)
    {
        using var scope = NewDisposeScope();
        if (bytes.dim() != 4) throw new ArgumentException($"expected [N, C, H, W], got [{string.Join(",", bytes.shape)}].", nameof(bytes));
        var x = bytes.to(ScalarType.Float32) / 255f;
        x = ToThreeChannels(x);
        if (size is int s) x = ToSquare(x, s, mode);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>[N, 1, H, W] → [N, 3, H, W] (repeated); [N, 3, H, W] unchanged.</summary>
    public static Tensor ToThreeChannels(Tensor images) => images.shape[1] switch
    {
        3 => images.alias(),
        1 => images.expand(-1, 3, -1, -1).contiguous(),
        _ => throw new ArgumentException($"expected 1 or 3 channels, got {images.shape[1]}.", nameof(images)),
    };

    /// <summary>
    /// Dataset images [N, C, H, W] in [0, 1] → [N, C, size, size], as the official pipeline prepares an encoder input
    /// (one implementation for training data and the ML.NET featurizer, so features match between them):
    /// bicubic, antialiased scaling of the shorter side (<see cref="ResizeMode.CenterCrop"/>) or of both sides
    /// (<see cref="ResizeMode.Stretch"/>), values clamped and rounded to 8-bit levels (the official code resizes 8-bit
    /// PIL images), then the centre square. Images already size² are returned as they are.
    /// </summary>
    public static Tensor ToSquare(Tensor images01, int size, ResizeMode mode = ResizeMode.CenterCrop)
    {
        long h = images01.shape[2], w = images01.shape[3];
        if (h == size && w == size) return images01.alias();
        using var scope = NewDisposeScope();
        long nh = size, nw = size;
        if (mode == ResizeMode.CenterCrop)
        {
            double scale = (double)size / Math.Min(h, w);
            nh = Math.Max(size, (long)Math.Round(h * scale));
            nw = Math.Max(size, (long)Math.Round(w * scale));
        }
        var x = images01;
        if (nh != h || nw != w)
        {
            x = F.interpolate(x.contiguous(), new long[] { nh, nw }, mode: InterpolationMode.Bicubic, align_corners: false, antialias: true);
            x = (x.clamp(0, 1) * 255).round() / 255;
        }
        long top = (nh - size) / 2, left = (nw - size) / 2;
        return x.narrow(2, top, size).narrow(3, left, size).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Resizes float images [N, C, H, W] to height × width with bilinear interpolation (align_corners = false),
    /// antialiased when shrinking (as torchvision / PIL do), clamped to [0, 1].
    /// <see cref="ResizeMode.CenterCrop"/> first crops the central region of the target aspect ratio. A tensor operation
    /// for scaling inside a model (e.g. enlarging images for a base encoder); dataset images go through
    /// <see cref="ToSquare"/>.
    /// </summary>
    public static Tensor Resize(Tensor images, int height, int width, ResizeMode mode = ResizeMode.CenterCrop)
    {
        using var scope = NewDisposeScope();
        var x = images;
        long h = x.shape[2], w = x.shape[3];
        if (mode == ResizeMode.CenterCrop && h * width != w * height)
        {
            // Largest central crop with aspect width:height.
            long cropH = Math.Min(h, (long)Math.Round((double)w * height / width));
            long cropW = Math.Min(w, (long)Math.Round((double)h * width / height));
            x = x.narrow(2, (h - cropH) / 2, cropH).narrow(3, (w - cropW) / 2, cropW);
            (h, w) = (cropH, cropW);
        }
        if (h == height && w == width) return x.contiguous().MoveToOuterDisposeScope();
        bool shrink = height < h || width < w;
        var y = F.interpolate(x.contiguous(), new long[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false, antialias: shrink);
        return y.clamp(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>float [.., C, H, W] in [0, 1] → uint8 (rounded).</summary>
    public static Tensor ToBytes(Tensor images01)
    {
        using var scope = NewDisposeScope();
        return (images01.clamp(0, 1) * 255f).round().to(ScalarType.Byte).MoveToOuterDisposeScope();
    }
}
