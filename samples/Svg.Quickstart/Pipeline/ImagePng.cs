using System.Runtime.InteropServices;
using SkiaSharp;
using Svg.ML.Data;
using static TorchSharp.torch;

namespace Svg.Quickstart;

/// <summary>Writes image tensors as PNG files (SkiaSharp).</summary>
public static class ImagePng
{
    /// <summary>
    /// Saves RGB images [N, 3, H, W] in [0, 1] as one PNG grid of <paramref name="columns"/> columns (row-major),
    /// each image enlarged <paramref name="scale"/>× (nearest neighbour) with <paramref name="gap"/> white pixels between.
    /// </summary>
    public static void SaveGrid(Tensor images01, int columns, string path, int scale = 2, int gap = 2)
    {
        if (images01.dim() != 4 || images01.shape[1] != 3) throw new ArgumentException("expected images [N, 3, H, W].", nameof(images01));
        int n = (int)images01.shape[0], h = (int)images01.shape[2] * scale, w = (int)images01.shape[3] * scale;
        int rows = (n + columns - 1) / columns;
        int width = columns * w + (columns + 1) * gap, height = rows * h + (rows + 1) * gap;

        // [N, 3, H, W] → uint8 [N, H·s, W·s, 4] RGBA, opaque.
        byte[] pixels;
        using (var scope = NewDisposeScope())
        {
            var x = ImageTensors.ToBytes(images01.detach().cpu());
            if (scale > 1) x = x.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
            var alpha = full(new long[] { n, 1, h, w }, 255, ScalarType.Byte);
            pixels = cat(new[] { x, alpha }, 1).permute(0, 2, 3, 1).contiguous().bytes.ToArray();
        }

        var canvas = new byte[width * height * 4];
        canvas.AsSpan().Fill(255);
        int imageBytes = h * w * 4, rowBytes = w * 4;
        for (int i = 0; i < n; i++)
        {
            int top = gap + i / columns * (h + gap), left = gap + i % columns * (w + gap);
            for (int y = 0; y < h; y++)
                pixels.AsSpan(i * imageBytes + y * rowBytes, rowBytes)
                      .CopyTo(canvas.AsSpan(((top + y) * width + left) * 4, rowBytes));
        }
        Save(canvas, width, height, path);
    }

    /// <summary>Encodes an RGBA buffer (row-major, 4 bytes per pixel, unpremultiplied) as a PNG file.</summary>
    public static void Save(byte[] rgba, int width, int height, string path)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        try
        {
            using var pixmap = new SKPixmap(info, handle.AddrOfPinnedObject(), width * 4);
            using var data = pixmap.Encode(SKEncodedImageFormat.Png, 100)
                             ?? throw new InvalidOperationException("SkiaSharp could not encode the PNG.");
            string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (dir is not null) Directory.CreateDirectory(dir);
            using var file = File.Create(path);
            data.SaveTo(file);
        }
        finally { handle.Free(); }
    }
}
