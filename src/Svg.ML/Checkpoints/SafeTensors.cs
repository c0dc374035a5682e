using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Checkpoints;

/// <summary>
/// Reads and writes the safetensors format: an 8-byte little-endian header length, a JSON header
/// (<c>{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}</c>), then raw little-endian data.
/// Tensors are created on the CPU; insertion order is kept.
/// </summary>
public static class SafeTensors
{
    /// <summary>A loaded file: tensors in file order plus the string metadata.</summary>
    public sealed record Contents(Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata);

    public static Contents Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Safetensors file not found: {path}", path);
        using var stream = File.OpenRead(path);
        try { return Load(stream); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    public static Contents Load(Stream stream)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        Span<byte> len8 = stackalloc byte[8];
        ReadExactly(stream, len8, "header length");
        long headerLength = BitConverter.ToInt64(len8);
        long remaining = stream.CanSeek ? stream.Length - 8 : long.MaxValue;
        if (headerLength <= 1 || headerLength > 100_000_000 || headerLength > remaining)
            throw new InvalidDataException($"not a safetensors file (header length {headerLength}).");
        var headerBytes = new byte[headerLength];
        ReadExactly(stream, headerBytes, "header");
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes)!.AsObject(); }
        catch (JsonException e) { throw new InvalidDataException("corrupt safetensors header: " + e.Message); }

        var metadata = new Dictionary<string, string>();
        var entries = new List<(string Name, ScalarType Type, long[] Shape, long Begin, long End)>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                foreach (var (k, v) in node!.AsObject()) metadata[k] = v?.GetValue<string>() ?? "";
                continue;
            }
            var o = node!.AsObject();
            var type = ParseDType(o["dtype"]!.GetValue<string>(), name);
            long[] shape = o["shape"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray();
            var off = o["data_offsets"]!.AsArray();
            long begin = off[0]!.GetValue<long>(), end = off[1]!.GetValue<long>();
            long expected = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(type);
            if (end - begin != expected || begin < 0)
                throw new InvalidDataException($"tensor '{name}': data size {end - begin} does not match dtype and shape [{string.Join(",", shape)}].");
            entries.Add((name, type, shape, begin, end));
        }

        long dataLength = entries.Count == 0 ? 0 : entries.Max(e => e.End);
        if (stream.CanSeek && stream.Length - 8 - headerLength < dataLength)
            throw new InvalidDataException($"file is truncated: data needs {dataLength} bytes, {stream.Length - 8 - headerLength} present.");
        var data = new byte[dataLength];
        ReadExactly(stream, data, "tensor data");

        var tensors = new Dictionary<string, Tensor>();
        foreach (var e in entries.OrderBy(e => e.Begin))
        {
            var t = empty(e.Shape, e.Type);
            if (e.End > e.Begin) t.bytes = data.AsSpan((int)e.Begin, (int)(e.End - e.Begin));
            tensors[e.Name] = t;
        }
        return new Contents(tensors, metadata);
    }

    static void ReadExactly(Stream s, Span<byte> buffer, string what)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = s.Read(buffer[read..]);
            if (n == 0) throw new InvalidDataException($"file is truncated (while reading the {what}).");
            read += n;
        }
    }

    /// <summary>Writes tensors (any device; copied to CPU, made contiguous) in the given order.</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        string tmp = path + ".tmp";
        using (var f = File.Create(tmp)) Save(f, tensors, metadata);
        File.Move(tmp, path, overwrite: true);
    }

    public static void Save(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var m = new JsonObject();
            foreach (var (k, v) in metadata) m[k] = v;
            header["__metadata__"] = m;
        }
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (name, tensor) in tensors)
        {
            using var cpuT = tensor.detach().cpu().contiguous();
            byte[] bytes = cpuT.bytes.ToArray();
            header[name] = new JsonObject
            {
                ["dtype"] = DTypeName(cpuT.dtype),
                ["shape"] = new JsonArray(cpuT.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes.Length),
            };
            offset += bytes.Length;
            blobs.Add(bytes);
        }
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - json.Length % 8) % 8;
        stream.Write(BitConverter.GetBytes((long)(json.Length + pad)));
        stream.Write(json);
        for (int i = 0; i < pad; i++) stream.WriteByte((byte)' ');
        foreach (var b in blobs) stream.Write(b);
    }

    internal static ScalarType ParseDType(string s, string name) => s switch
    {
        "F32" => ScalarType.Float32, "F64" => ScalarType.Float64, "F16" => ScalarType.Float16, "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64, "I32" => ScalarType.Int32, "I16" => ScalarType.Int16, "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte, "BOOL" => ScalarType.Bool,
        _ => throw new InvalidDataException($"tensor '{name}': unsupported dtype '{s}'."),
    };

    internal static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "F32", ScalarType.Float64 => "F64", ScalarType.Float16 => "F16", ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64", ScalarType.Int32 => "I32", ScalarType.Int16 => "I16", ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8", ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"dtype {t} cannot be written to safetensors."),
    };

    internal static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };
}
