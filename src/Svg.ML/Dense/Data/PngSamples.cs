using System.Buffers.Binary;
using System.IO.Compression;

namespace Svg.ML.Dense.Data;

/// <summary>
/// Reads the first sample of every pixel of a PNG at its stored bit depth — 16-bit depth maps keep all 16 bits (an
/// 8-bit decode would drop the low byte), palette PNGs give the palette index (VOC masks), greyscale PNGs the grey
/// value (ADE20K masks). Non-interlaced PNGs of bit depth 8 or 16 (palette: 8) are supported; zlib and the five
/// scanline filters are decoded here with System.IO.Compression.
/// </summary>
public static class PngSamples
{
    static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    /// <summary>Width, height and the first sample of each pixel, row-major.</summary>
    public static (int Width, int Height, ushort[] Samples) Read(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            return Read(f);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or NotSupportedException)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
    }

    /// <inheritdoc cref="Read(string)"/>
    public static (int Width, int Height, ushort[] Samples) Read(Stream stream)
    {
        var sig = new byte[8];
        stream.ReadExactly(sig);
        if (!sig.AsSpan().SequenceEqual(Signature)) throw new InvalidDataException("not a PNG file.");
        int width = 0, height = 0, depth = 0, colorType = 0;
        using var idat = new MemoryStream();
        var head = new byte[8];
        while (true)
        {
            stream.ReadExactly(head);
            int length = BinaryPrimitives.ReadInt32BigEndian(head);
            string type = System.Text.Encoding.ASCII.GetString(head, 4, 4);
            if (length < 0) throw new InvalidDataException("corrupt chunk length.");
            var data = new byte[length];
            stream.ReadExactly(data);
            stream.ReadExactly(head.AsSpan(0, 4));   // CRC (not checked: zlib's Adler-32 guards the pixels)
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4));
                depth = data[8];
                colorType = data[9];
                if (data[12] != 0) throw new NotSupportedException("interlaced PNGs are not supported.");
                if (depth is not (8 or 16)) throw new NotSupportedException($"bit depth {depth} is not supported (8 or 16).");
            }
            else if (type == "IDAT") idat.Write(data);
            else if (type == "IEND") break;
        }
        int channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => throw new InvalidDataException($"colour type {colorType}.") };
        int bpp = channels * depth / 8, stride = width * bpp;
        var raw = new byte[(long)height * (stride + 1)];
        idat.Position = 0;
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.ReadExactly(raw);
        var prev = new byte[stride];
        var line = new byte[stride];
        var samples = new ushort[(long)width * height];
        for (int y = 0; y < height; y++)
        {
            int filter = raw[(long)y * (stride + 1)];
            raw.AsSpan((int)((long)y * (stride + 1) + 1), stride).CopyTo(line);
            Unfilter(filter, line, prev, bpp);
            for (int x = 0; x < width; x++)
                samples[(long)y * width + x] = depth == 16
                    ? BinaryPrimitives.ReadUInt16BigEndian(line.AsSpan(x * bpp))
                    : line[x * bpp];
            (prev, line) = (line, prev);
        }
        return (width, height, samples);
    }

    static void Unfilter(int filter, byte[] line, byte[] prev, int bpp)
    {
        for (int i = 0; i < line.Length; i++)
        {
            int a = i >= bpp ? line[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
            line[i] = (byte)(line[i] + filter switch
            {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => Paeth(a, b, c),
                _ => throw new InvalidDataException($"unknown scanline filter {filter}."),
            });
        }
    }

    static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
