using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Svg.ML.Data;

/// <summary>
/// Reads Portable Float Maps (<c>.pfm</c>, the format of Middlebury disparities and many depth datasets): a text header
/// <c>Pf</c> (one channel) or <c>PF</c> (three), then <c>width height</c>, then a scale whose sign gives the byte order
/// (negative: little-endian), each on its own line; then float32 rows from the <b>bottom</b> of the image to the top.
/// Returned row-major from the top, as images are.
/// </summary>
public static class PfmReader
{
    /// <summary>The map at <paramref name="path"/>: width, height, channels and the values (row-major from the top, channels interleaved).</summary>
    public static (int Width, int Height, int Channels, float[] Values) Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Reads a map from <paramref name="stream"/>; <paramref name="source"/> names it in errors.</summary>
    public static (int Width, int Height, int Channels, float[] Values) Read(Stream stream, string source = "stream")
    {
        string magic = Token(stream, source);
        int channels = magic switch
        {
            "Pf" => 1,
            "PF" => 3,
            _ => throw new InvalidDataException($"{source}: not a PFM file (header '{magic}', expected 'Pf' or 'PF')."),
        };
        int width = Positive(Token(stream, source), source, "width");
        int height = Positive(Token(stream, source), source, "height");
        if (!double.TryParse(Token(stream, source), NumberStyles.Float, CultureInfo.InvariantCulture, out double scale) || scale == 0)
            throw new InvalidDataException($"{source}: the PFM scale must be a non-zero number (its sign gives the byte order).");
        bool littleEndian = scale < 0;

        int rowValues = checked(width * channels);
        var bytes = new byte[checked(rowValues * height * 4)];
        ReadData(stream, bytes, source);
        var values = new float[rowValues * height];
        for (int row = 0; row < height; row++)        // file row 0 is the bottom of the image
        {
            var src = bytes.AsSpan(row * rowValues * 4, rowValues * 4);
            var dst = values.AsSpan((height - 1 - row) * rowValues, rowValues);
            for (int i = 0; i < rowValues; i++)
            {
                int bits = littleEndian ? BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]) : BinaryPrimitives.ReadInt32BigEndian(src[(4 * i)..]);
                dst[i] = BitConverter.Int32BitsToSingle(bits);
            }
        }
        return (width, height, channels, values);
    }

    /// <summary>Fills <paramref name="bytes"/> with the pixel data, or fails naming the source when it is truncated.</summary>
    static void ReadData(Stream stream, byte[] bytes, string source)
    {
        int read = 0;
        while (read < bytes.Length)
        {
            int n = stream.Read(bytes, read, bytes.Length - read);
            if (n == 0) throw new InvalidDataException($"{source}: the PFM data is truncated ({read} of {bytes.Length} bytes).");
            read += n;
        }
    }

    static int Positive(string token, string source, string what) =>
        int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0
            ? v : throw new InvalidDataException($"{source}: the PFM {what} '{token}' is not a positive integer.");

    /// <summary>The next whitespace-separated header token; the single whitespace byte after it is consumed.</summary>
    static string Token(Stream stream, string source)
    {
        var sb = new StringBuilder();
        int b;
        while ((b = stream.ReadByte()) >= 0 && char.IsWhiteSpace((char)b) && sb.Length == 0) { }
        for (; b >= 0 && !char.IsWhiteSpace((char)b); b = stream.ReadByte())
        {
            if (sb.Length > 32) throw new InvalidDataException($"{source}: not a PFM file (header too long).");
            sb.Append((char)b);
        }
        if (sb.Length == 0) throw new InvalidDataException($"{source}: the PFM header ends early.");
        return sb.ToString();
    }
}
