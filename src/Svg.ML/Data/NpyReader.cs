using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Svg.ML.Data;

/// <summary>
/// Reads NumPy arrays: <c>.npy</c> files (format versions 1–3: magic <c>\x93NUMPY</c>, version, header length, a Python
/// dict literal with <c>descr</c>, <c>fortran_order</c> and <c>shape</c>, then the raw little-endian data) and arrays
/// inside <c>.npz</c> archives (a zip of <c>.npy</c> files, e.g. <c>arr_0.npy</c>). C-order arrays of float32/64,
/// uint8/16 and int16/32/64 become tensors of the same dtype (uint16 as int32) on the CPU.
/// </summary>
public static partial class NpyReader
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads the .npy file at <paramref name="path"/>.</summary>
    public static Tensor Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Reads array <paramref name="name"/> (default: the archive's only or first array, e.g. <c>arr_0</c>) from the .npz at <paramref name="path"/>.</summary>
    public static Tensor ReadNpz(string path, string? name = null)
    {
        using var zip = ZipFile.OpenRead(path);
        var entry = name is null ? zip.Entries.FirstOrDefault(e => e.Name.EndsWith(".npy", StringComparison.Ordinal))
                                 : zip.GetEntry(name.EndsWith(".npy", StringComparison.Ordinal) ? name : name + ".npy");
        if (entry is null)
            throw new InvalidDataException($"{path}: no array {(name is null ? "" : $"'{name}' ")}in the archive (entries: {string.Join(", ", zip.Entries.Select(e => e.FullName))}).");
        using var stream = entry.Open();
        return Read(stream, $"{path}:{entry.FullName}");
    }

    /// <summary>Reads one .npy array from <paramref name="stream"/>; <paramref name="source"/> names it in errors.</summary>
    public static Tensor Read(Stream stream, string source = "stream")
    {
        var prefix = ReadExactly(stream, 8, source);
        if (!prefix.AsSpan(0, 6).SequenceEqual(Magic)) throw new InvalidDataException($"{source}: not a .npy array (no \\x93NUMPY magic).");
        int major = prefix[6];
        int headerLength = major switch
        {
            1 => BitConverter.ToUInt16(ReadExactly(stream, 2, source)),
            2 or 3 => checked((int)BitConverter.ToUInt32(ReadExactly(stream, 4, source))),
            _ => throw new InvalidDataException($"{source}: .npy format version {major}.{prefix[7]} is not supported (1, 2, 3)."),
        };
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(ReadExactly(stream, headerLength, source));
        string descr = Field(DescrPattern(), header, source, "descr");
        if (Field(FortranPattern(), header, source, "fortran_order") == "True")
            throw new InvalidDataException($"{source}: Fortran-order arrays are not supported (save with C order).");
        long[] shape = Field(ShapePattern(), header, source, "shape").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                                                                     .Select(long.Parse).ToArray();
        var (type, itemSize) = descr switch
        {
            "<f4" => (ScalarType.Float32, 4),
            "<f8" => (ScalarType.Float64, 8),
            "|u1" or "<u1" => (ScalarType.Byte, 1),
            "<u2" => (ScalarType.Int32, 2),   // no uint16 tensors: widened below
            "<i2" => (ScalarType.Int16, 2),
            "<i4" => (ScalarType.Int32, 4),
            "<i8" => (ScalarType.Int64, 8),
            _ => throw new InvalidDataException($"{source}: dtype '{descr}' is not supported (little-endian float32/64, uint8/16, int16/32/64)."),
        };
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var data = ReadExactly(stream, checked((int)(count * itemSize)), source);
        if (descr == "<u2")
        {
            var widened = new int[count];
            for (long i = 0; i < count; i++) widened[i] = BitConverter.ToUInt16(data, (int)(2 * i));
            return tensor(widened, shape);
        }
        var result = empty(shape, type);
        result.bytes = data;
        return result;
    }

    static string Field(Regex pattern, string header, string source, string name)
    {
        var m = pattern.Match(header);
        return m.Success ? m.Groups[1].Value : throw new InvalidDataException($"{source}: the .npy header has no '{name}': {header.Trim()}");
    }

    static byte[] ReadExactly(Stream stream, int count, string source)
    {
        var buffer = new byte[count];
        try { stream.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw new InvalidDataException($"{source}: the .npy data ends early (expected {count} more bytes)."); }
        return buffer;
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
