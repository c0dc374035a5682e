using System.IO.Compression;
using Microsoft.ML.Data;
using Svg.ML.Autoencoder;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.Runtime;
using static TorchSharp.torch;

namespace Svg.ML.Tests.MLNet;

/// <summary>Tiny random-weight Svg.ML modules (real classes, small sizes) for the ML.NET tests.</summary>
public static class TinyModels
{
    /// <summary>Input size of the tiny encoders: 32×32 pixels, patch 8 → a 4×4 grid.</summary>
    public const int ImageSize = 32;

    public static DinoV3Config Dino => DinoV3Config.ViTSPlus16 with
    {
        Name = "DINOv3 tiny", EmbedDim = 32, Depth = 2, NumHeads = 2, PatchSize = 8, FfnRatio = 2, LayerScaleInit = 1.0,
    };

    public static SvgEncoderConfig Encoder => SvgEncoderConfig.Released with
    {
        Residual = ResidualEncoderConfig.Released with
        {
            ImageSize = ImageSize, PatchSize = 8, NumLayers = 1, NumHeads = 2, HiddenDim = 16, MlpDim = 32, OutputDim = 8,
        },
        MaskRatio = 0,
    };

    /// <summary>Latent channels of the tiny SVG encoder: 32 + 8.</summary>
    public const int Channels = 40;

    public static LdmDecoderConfig Decoder => new(Ch: 32, ChMult: [1, 1], NumResBlocks: 0, AttnResolutions: [], ZChannels: Channels, Resolution: 8);

    public static DinoVisionTransformer CreateDino(long seed = 1)
    {
        TorchRuntime.EnsureInitialized();
        manual_seed(seed);
        return new DinoVisionTransformer(Dino, ImageSize);
    }

    public static SvgEncoder CreateEncoder(long seed = 1, SvgEncoderConfig? config = null)
    {
        var dino = CreateDino(seed);
        manual_seed(seed + 100);
        return new SvgEncoder(dino, config ?? Encoder);
    }

    public static LdmDecoder CreateDecoder(long seed = 3)
    {
        TorchRuntime.EnsureInitialized();
        manual_seed(seed);
        return new LdmDecoder(Decoder);
    }
}

/// <summary>Image files for tests: PNG writing (8-bit grayscale, RGBA) and Fashion-MNIST IDX decoding.</summary>
public static class TestImages
{

    /// <summary>A fresh temp folder, deleted by the caller.</summary>
    public static string TempFolder()
    {
        string dir = Path.Combine(Path.GetTempPath(), "svgml-mlnet-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Decodes Fashion-MNIST images [skip, skip + count) of a split (Svg.ML's IDX reader) into 8-bit grayscale PNGs.</summary>
    public static List<(string Path, uint Label)> FashionMnistPngs(string folder, int count, bool train, int skip = 0)
    {
        using var data = Svg.ML.Data.FashionMnist.Load(train, limit: skip + count);
        string prefix = train ? "train" : "t10k";
        var result = new List<(string, uint)>();
        for (int i = skip; i < data.Count; i++)
        {
            string path = Path.Combine(folder, $"{prefix}-{i:D5}.png");
            using var gray = data.Pixels[i].contiguous();
            WriteGrayPng(path, data.Width, data.Height, gray.bytes);
            result.Add((path, (uint)data.Labels[i]));
        }
        return result;
    }

    /// <summary>Writes an 8-bit grayscale PNG (colour type 0), the format of many real-world grayscale images.</summary>
    public static void WriteGrayPng(string path, int width, int height, ReadOnlySpan<byte> gray)
    {
        var raw = new byte[height * (width + 1)];
        for (int y = 0; y < height; y++)
        {
            raw[y * (width + 1)] = 0;  // filter: none
            gray.Slice(y * width, width).CopyTo(raw.AsSpan(y * (width + 1) + 1));
        }
        using var zs = new MemoryStream();
        using (var z = new ZLibStream(zs, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw);
        var ihdr = new byte[13];
        WriteBigEndian(ihdr, 0, width);
        WriteBigEndian(ihdr, 4, height);
        ihdr[8] = 8; ihdr[9] = 0;   // bit depth 8, grayscale
        using var f = File.Create(path);
        f.Write(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 });
        Chunk(f, "IHDR", ihdr);
        Chunk(f, "IDAT", zs.ToArray());
        Chunk(f, "IEND", Array.Empty<byte>());
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        var len = new byte[4];
        WriteBigEndian(len, 0, data.Length);
        s.Write(len);
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typed);
        var crc = new byte[4];
        WriteBigEndian(crc, 0, (int)Crc32(typed));
        s.Write(crc);
    }

    static void WriteBigEndian(byte[] b, int o, int v)
    {
        b[o] = (byte)(v >> 24); b[o + 1] = (byte)(v >> 16); b[o + 2] = (byte)(v >> 8); b[o + 3] = (byte)v;
    }

    static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    /// <summary>Writes an RGBA PNG (through ML.NET's MLImage) from straight (non-premultiplied) RGBA bytes.</summary>
    public static void WriteRgbaPng(string path, int width, int height, byte[] rgba)
    {
        // MLImage holds premultiplied pixels: premultiply so the file stores the straight values given.
        var pre = (byte[])rgba.Clone();
        for (int i = 0; i < pre.Length; i += 4)
            for (int c = 0; c < 3; c++) pre[i + c] = (byte)Math.Round(rgba[i + c] * rgba[i + 3] / 255.0);
        using var im = MLImage.CreateFromPixels(width, height, MLPixelFormat.Rgba32, pre);
        im.Save(path);
    }

    /// <summary>A deterministic colour test image (straight RGBA).</summary>
    public static byte[] Pattern(int width, int height, int seed, bool alpha = false)
    {
        var rng = new Random(seed);
        var px = new byte[width * height * 4];
        rng.NextBytes(px);
        if (!alpha) for (int i = 3; i < px.Length; i += 4) px[i] = 255;
        return px;
    }
}
