using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Checkpoints;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>
/// The zip layout of a saved Svg.ML transformer: <c>manifest.json</c> (format name, format version, kind, options)
/// and <c>weights.safetensors</c>.
/// </summary>
internal static class SvgArchive
{
    public const string Format = "Svg.ML.Transformer";
    public const int FormatVersion = 1;
    const string ManifestEntry = "manifest.json";
    const string WeightsEntry = "weights.safetensors";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Serialises a value (config records, options) to a JSON node.</summary>
    public static JsonNode ToNode<T>(T value) => JsonSerializer.SerializeToNode(value, Json)!;

    /// <summary>Reads a value written by <see cref="ToNode{T}"/>.</summary>
    public static T FromNode<T>(JsonNode? node, string what) =>
        node is null ? throw new InvalidDataException($"the manifest lacks '{what}'.")
                     : node.Deserialize<T>(Json) ?? throw new InvalidDataException($"the manifest's '{what}' is empty.");

    public sealed class Writer : IDisposable
    {
        readonly ZipArchive _zip;
        public JsonObject Manifest { get; }
        public List<KeyValuePair<string, Tensor>> Tensors { get; } = new();

        public Writer(Stream stream, string kind)
        {
            _zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            Manifest = new JsonObject { ["format"] = Format, ["formatVersion"] = FormatVersion, ["kind"] = kind };
        }

        public void AddTensors(string prefix, IEnumerable<KeyValuePair<string, Tensor>> tensors)
        {
            foreach (var (k, v) in tensors) Tensors.Add(new(prefix + k, v));
        }

        public void Dispose()
        {
            using (var s = _zip.CreateEntry(ManifestEntry, CompressionLevel.Optimal).Open())
                s.Write(System.Text.Encoding.UTF8.GetBytes(Manifest.ToJsonString(Json)));
            using (var s = _zip.CreateEntry(WeightsEntry, CompressionLevel.NoCompression).Open())
                SafeTensors.Save(s, Tensors);
            _zip.Dispose();
        }
    }

    public sealed class Reader : IDisposable
    {
        public JsonObject Manifest { get; }
        public string Kind { get; }
        public Dictionary<string, Tensor> Tensors { get; }

        /// <summary>Opens an archive that must hold a transformer of <paramref name="expectedKind"/> (TorchSharp initialised first).</summary>
        public static Reader Open(Stream stream, string expectedKind)
        {
            ArgumentNullException.ThrowIfNull(stream);
            Runtime.TorchRuntime.EnsureInitialized();
            var r = new Reader(stream);
            if (r.Kind == expectedKind) return r;
            r.Dispose();
            throw new InvalidDataException($"the archive holds a {r.Kind}, not an {expectedKind}.");
        }

        public Reader(Stream stream)
        {
            ZipArchive zip;
            try { zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true); }
            catch (InvalidDataException e) { throw new InvalidDataException("not an Svg.ML model file (not a zip archive).", e); }
            using (zip)
            {
                var m = zip.GetEntry(ManifestEntry) ?? throw new InvalidDataException($"not an Svg.ML transformer file (no {ManifestEntry}).");
                using (var s = m.Open()) Manifest = JsonNode.Parse(s)?.AsObject() ?? throw new InvalidDataException("empty manifest.");
                string? format = Manifest["format"]?.GetValue<string>();
                if (format != Format) throw new InvalidDataException($"not an Svg.ML transformer file (format '{format}').");
                int version = Manifest["formatVersion"]?.GetValue<int>() ?? 0;
                if (version < 1 || version > FormatVersion)
                    throw new InvalidDataException($"Svg.ML transformer format version {version} is not supported by this Svg.ML (reads 1..{FormatVersion}).");
                Kind = Manifest["kind"]?.GetValue<string>() ?? throw new InvalidDataException("the manifest names no kind.");
                var w = zip.GetEntry(WeightsEntry) ?? throw new InvalidDataException($"no {WeightsEntry} in the archive.");
                using var ws = w.Open();
                using var ms = new MemoryStream();
                ws.CopyTo(ms);
                ms.Position = 0;
                Tensors = SafeTensors.Load(ms).Tensors;
            }
        }

        /// <summary>The tensors under <paramref name="prefix"/>, prefix removed.</summary>
        public Dictionary<string, Tensor> WithPrefix(string prefix) => StateDict.WithPrefix(Tensors, prefix);

        public Tensor Tensor(string name) =>
            Tensors.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"the archive lacks tensor '{name}'.");

        public void Dispose()
        {
            foreach (var t in Tensors.Values) t.Dispose();
        }
    }
}
