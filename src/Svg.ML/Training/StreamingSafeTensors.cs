using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data) written and read
/// one tensor at a time, so that a checkpoint larger than memory allows for one buffer — a DiT-XL with its EMA copy and
/// AdamW moments is about 11 GB — never needs more than one tensor's bytes in managed memory. Files are interchangeable
/// with <see cref="Checkpoints.SafeTensors"/>.
/// </summary>
internal static class StreamingSafeTensors
{
    /// <summary>Writes <paramref name="tensors"/> (any device) in order: the header is computed from shapes and dtypes,
    /// then each tensor is copied to the CPU and written on its own.</summary>
    public static void Write(Stream stream, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var header = new JsonObject();
        if (metadata.Count > 0)
        {
            var m = new JsonObject();
            foreach (var (k, v) in metadata) m[k] = v;
            header["__metadata__"] = m;
        }
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            long bytes = t.numel() * SafeTensors.ElementSize(t.dtype);
            header[name] = new JsonObject
            {
                ["dtype"] = SafeTensors.DTypeName(t.dtype),
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - json.Length % 8) % 8;
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(len, json.Length + pad);
        stream.Write(len);
        stream.Write(json);
        for (int i = 0; i < pad; i++) stream.WriteByte((byte)' ');
        foreach (var (_, t) in tensors)
        {
            using var cpu = t.detach().cpu().contiguous();
            stream.Write(cpu.bytes);
        }
    }

    /// <summary>Reads a safetensors file tensor by tensor (CPU tensors, file order) with its metadata.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        Span<byte> len8 = stackalloc byte[8];
        stream.ReadExactly(len8);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(len8);
        if (headerLength <= 1 || headerLength > 100_000_000 || headerLength > stream.Length - 8)
            throw new InvalidDataException($"not a safetensors file (header length {headerLength}).");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        var header = JsonNode.Parse(headerBytes)!.AsObject();

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
            var type = SafeTensors.ParseDType(o["dtype"]!.GetValue<string>(), name);
            long[] shape = o["shape"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray();
            var off = o["data_offsets"]!.AsArray();
            long begin = off[0]!.GetValue<long>(), end = off[1]!.GetValue<long>();
            if (begin < 0 || end - begin != shape.Aggregate(1L, (a, b) => a * b) * SafeTensors.ElementSize(type))
                throw new InvalidDataException($"tensor '{name}': data size {end - begin} does not match its dtype and shape.");
            entries.Add((name, type, shape, begin, end));
        }
        long dataStart = 8 + headerLength;
        long needed = entries.Count == 0 ? 0 : entries.Max(e => e.End);
        if (stream.Length - dataStart < needed)
            throw new InvalidDataException($"the file is truncated: the data needs {needed} bytes, {stream.Length - dataStart} are present.");

        var tensors = new Dictionary<string, Tensor>();
        try
        {
            foreach (var e in entries.OrderBy(e => e.Begin))
            {
                var t = empty(e.Shape, e.Type);
                tensors[e.Name] = t;
                long size = e.End - e.Begin;
                if (size == 0) continue;
                if (size > Array.MaxLength) throw new InvalidDataException($"tensor '{e.Name}' is larger than 2 GB.");
                var buffer = new byte[size];
                stream.Seek(dataStart + e.Begin, SeekOrigin.Begin);
                stream.ReadExactly(buffer);
                t.bytes = buffer;
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return (tensors, metadata);
    }
}
