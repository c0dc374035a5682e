using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Distributed;
using Svg.ML.Encoders;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Data;

/// <summary>
/// Everything that determines cached features. <see cref="Hash"/> (SHA-256 of all fields) names the cache entry,
/// so a change of any field (other weights, layer, image size, data files, preprocessing) misses the cache.
/// </summary>
/// <param name="EncoderName">The encoder's name, e.g. <see cref="IFrozenEncoder.Name"/>.</param>
/// <param name="WeightsFingerprint">Hash of the encoder weights (<see cref="FingerprintWeights"/>).</param>
/// <param name="EncoderConfig">The encoder's structure and options (layer, patch size, …).</param>
/// <param name="ImageSize">Input size the images are resized to.</param>
/// <param name="DataIdentity">The data (<see cref="LabeledImages.Identity"/>).</param>
/// <param name="Preprocessing">Other preprocessing options (resize mode, normalisation, augmentation).</param>
public sealed record FeatureCacheKey(
    string EncoderName, string WeightsFingerprint, string EncoderConfig, int ImageSize, string DataIdentity, string Preprocessing)
{
    /// <summary>SHA-256 (hex) of the canonical JSON of all fields.</summary>
    public string Hash => Data.DataIdentity.Hash(ToJson().ToJsonString());

    /// <summary>The fields as a JSON object (stored in the manifest).</summary>
    public JsonObject ToJson() => new()
    {
        ["encoder_name"] = EncoderName,
        ["weights_fingerprint"] = WeightsFingerprint,
        ["encoder_config"] = EncoderConfig,
        ["image_size"] = ImageSize,
        ["data_identity"] = DataIdentity,
        ["preprocessing"] = Preprocessing,
    };

    /// <summary>
    /// SHA-256 (hex) over a module's state dict: every entry's name, dtype, shape and bytes, in name order.
    /// </summary>
    public static string FingerprintWeights(nn.Module module)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, t) in module.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes($"{name}|{t.dtype}|{string.Join(",", t.shape)}\n"));
            using var cpu = t.detach().cpu().contiguous();
            sha.AppendData(cpu.bytes);
        }
        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>The key of an encoder's grid features of <paramref name="data"/> at <paramref name="imageSize"/>.</summary>
    public static FeatureCacheKey ForEncoder(IFrozenEncoder encoder, LabeledImages data, int imageSize, string preprocessing = "", string? encoderConfig = null) =>
        new(encoder.Name, FingerprintWeights(encoder.Module),
            encoderConfig ?? DescribeEncoder(encoder), imageSize, data.Identity, preprocessing);

    /// <summary>Type, channels, patch size and (for <see cref="ResNet18"/>) structure and grid layer.</summary>
    public static string DescribeEncoder(IFrozenEncoder encoder) =>
        $"{encoder.GetType().FullName} channels={encoder.Channels} patch={encoder.PatchSize}" +
        (encoder is ResNet18 r ? $" grid={r.GridLayer} {r.Config.Describe()}" : "");
}

/// <summary>
/// A cache entry on disk: a safetensors file holding one tensor "features" [N, ...], read whole or by row ranges
/// (so features larger than memory can be streamed).
/// </summary>
public sealed class CachedFeatures
{
    /// <summary>Path of the safetensors file.</summary>
    public string Path { get; }
    /// <summary>Shape of the stored tensor; <c>Shape[0]</c> is the item count.</summary>
    public long[] Shape { get; }
    /// <summary>Element type.</summary>
    public ScalarType DType { get; }
    /// <summary>The key it was stored under.</summary>
    public FeatureCacheKey Key { get; }

    readonly long _dataStart;

    internal CachedFeatures(string path, long[] shape, ScalarType dtype, long dataStart, FeatureCacheKey key)
    {
        Path = path; Shape = shape; DType = dtype; _dataStart = dataStart; Key = key;
    }

    /// <summary>Items stored.</summary>
    public long Count => Shape[0];

    long RowBytes => Shape.Skip(1).Aggregate(1L, (a, b) => a * b) * FeatureCache.ElementSize(DType);

    /// <summary>Rows [start, start + count) as a CPU tensor.</summary>
    public Tensor Read(long start, long count)
    {
        if (start < 0 || count < 0 || start + count > Count) throw new ArgumentOutOfRangeException(nameof(count), $"rows [{start}, {start + count}) outside [0, {Count}).");
        var shape = Shape.ToArray();
        shape[0] = count;
        var t = empty(shape, DType);
        long bytes = count * RowBytes;
        if (bytes == 0) return t;
        if (bytes > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(count), "read fewer rows at a time (over 2 GB).");
        var buffer = new byte[bytes];
        using (var f = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            f.Seek(_dataStart + start * RowBytes, SeekOrigin.Begin);
            f.ReadExactly(buffer);
        }
        t.bytes = buffer;
        return t;
    }

    /// <summary>
    /// Rows <paramref name="indices"/> (any order, repeats allowed) as one CPU tensor in that order: one read per row,
    /// in ascending file order.
    /// </summary>
    public Tensor ReadRows(long[] indices)
    {
        using var scope = NewDisposeScope();
        var order = Enumerable.Range(0, indices.Length).OrderBy(i => indices[i]).ToArray();
        var parts = new Tensor[indices.Length];
        foreach (int i in order) parts[i] = Read(indices[i], 1);
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    /// <summary>All rows as one CPU tensor.</summary>
    public Tensor ReadAll()
    {
        long perChunk = Math.Max(1, (256L << 20) / Math.Max(1, RowBytes));
        if (Count <= perChunk) return Read(0, Count);
        var all = empty(Shape, DType);
        foreach (var (start, chunk) in Chunks((int)Math.Min(perChunk, int.MaxValue)))
            using (chunk) all.narrow(0, start, chunk.shape[0]).copy_(chunk);
        return all;
    }

    /// <summary>Consecutive row chunks (start row, tensor); the caller disposes each tensor.</summary>
    public IEnumerable<(long Start, Tensor Rows)> Chunks(int chunkSize)
    {
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize));
        for (long s = 0; s < Count; s += chunkSize)
            yield return (s, Read(s, Math.Min(chunkSize, Count - s)));
    }
}

/// <summary>
/// On-disk feature cache ("featurize once, train many"). An entry is <c>&lt;hash&gt;.safetensors</c> (tensor "features")
/// plus <c>&lt;hash&gt;.json</c> (manifest: the key's fields, shape, dtype), named by <see cref="FeatureCacheKey.Hash"/>.
/// Both are written to temporary files and renamed into place (data first, manifest last), so an interrupted write
/// leaves no entry; an entry whose manifest, header or file size does not match is recomputed.
/// Computing streams chunk by chunk to disk, so memory holds one chunk at a time.
/// </summary>
public sealed class FeatureCache
{
    const string TensorName = "features";
    const string Format = "svg.ml feature cache v1";

    /// <summary>The cache folder.</summary>
    public string Directory { get; }

    /// <summary>
    /// <c>$SVG_ML_FEATURE_CACHE</c> when set, else <c>$XDG_CACHE_HOME/svg.ml/features</c>, else <c>~/.cache/svg.ml/features</c>.
    /// </summary>
    public static string DefaultDirectory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("SVG_ML_FEATURE_CACHE");
            if (!string.IsNullOrEmpty(env)) return env;
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string baseDir = !string.IsNullOrEmpty(xdg) ? xdg : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return System.IO.Path.Combine(baseDir, "svg.ml", "features");
        }
    }

    /// <summary>A cache in <paramref name="directory"/> (default <see cref="DefaultDirectory"/>), created when first written.</summary>
    public FeatureCache(string? directory = null) => Directory = directory ?? DefaultDirectory;

    string DataPath(FeatureCacheKey key) => System.IO.Path.Combine(Directory, key.Hash + ".safetensors");
    string ManifestPath(FeatureCacheKey key) => System.IO.Path.Combine(Directory, key.Hash + ".json");

    /// <summary>The entry of <paramref name="key"/>, or null when absent or invalid.</summary>
    public CachedFeatures? TryOpen(FeatureCacheKey key)
    {
        string data = DataPath(key), manifestPath = ManifestPath(key);
        if (!File.Exists(data) || !File.Exists(manifestPath)) return null;
        try
        {
            var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
            if (manifest["format"]?.GetValue<string>() != Format) return null;
            if (!JsonNode.DeepEquals(manifest["key"], key.ToJson())) return null;
            long[] shape = manifest["shape"]!.AsArray().Select(n => n!.GetValue<long>()).ToArray();
            var dtype = Enum.Parse<ScalarType>(manifest["dtype"]!.GetValue<string>());

            using var f = File.OpenRead(data);
            Span<byte> len8 = stackalloc byte[8];
            f.ReadExactly(len8);
            long headerLength = BitConverter.ToInt64(len8);
            if (headerLength <= 0 || headerLength > f.Length - 8) return null;
            var header = new byte[headerLength];
            f.ReadExactly(header);
            var entry = JsonNode.Parse(header)!.AsObject()[TensorName]!.AsObject();
            long[] fileShape = entry["shape"]!.AsArray().Select(n => n!.GetValue<long>()).ToArray();
            if (!fileShape.SequenceEqual(shape) || entry["dtype"]!.GetValue<string>() != DTypeName(dtype)) return null;
            long expected = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(dtype);
            if (f.Length != 8 + headerLength + expected) return null;
            return new CachedFeatures(data, shape, dtype, 8 + headerLength, key);
        }
        catch (Exception e) when (e is JsonException or IOException or NullReferenceException or InvalidOperationException or ArgumentException or FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// The cached tensor of <paramref name="key"/>, or <paramref name="compute"/>'s result, stored first.
    /// For data that fits in memory; otherwise use the chunked overload.
    /// </summary>
    public Tensor GetOrCompute(FeatureCacheKey key, Func<Tensor> compute)
    {
        if (TryOpen(key) is { } hit) return hit.ReadAll();
        var t = compute();
        Write(key, t.shape[0], new[] { t }, disposeChunks: false);
        return t;
    }

    /// <summary>
    /// The entry of <paramref name="key"/>; when absent, computes <paramref name="count"/> items in chunks of
    /// <paramref name="chunkSize"/> with <paramref name="computeChunk"/>(start, count) → [count, ...] and streams them to disk.
    /// Each chunk runs in its own dispose scope and is disposed once written.
    /// </summary>
    public CachedFeatures GetOrCompute(FeatureCacheKey key, long count, int chunkSize, Func<long, long, Tensor> computeChunk)
    {
        if (TryOpen(key) is { } hit) return hit;
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize));
        IEnumerable<Tensor> Chunks()
        {
            for (long s = 0; s < count; s += chunkSize)
            {
                using var scope = NewDisposeScope();
                long n = Math.Min(chunkSize, count - s);
                var chunk = computeChunk(s, n);
                if (chunk.shape.Length == 0 || chunk.shape[0] != n)
                    throw new InvalidOperationException($"computeChunk({s}, {n}) returned shape [{string.Join(",", chunk.shape)}], expected {n} rows.");
                yield return chunk.MoveToOuterDisposeScope();
            }
        }
        Write(key, count, Chunks(), disposeChunks: true);
        return TryOpen(key) ?? throw new IOException($"feature cache entry {DataPath(key)} could not be read back.");
    }

    /// <summary>
    /// Grid features <c>encoder.EncodeGrid(encoder.Preprocess(images))</c> of every image of <paramref name="data"/>
    /// at <paramref name="imageSize"/> (default: the encoder's), computed in batches without gradients, cached.
    /// With a multi-rank <paramref name="group"/>, every rank encodes a share (<see cref="ShardedFeaturization"/>).
    /// </summary>
    public CachedFeatures GetOrEncode(IFrozenEncoder encoder, LabeledImages data, int? imageSize = null, int batchSize = 32,
                                      ResizeMode mode = ResizeMode.CenterCrop, Device? device = null, ProcessGroup? group = null)
    {
        int size = imageSize ?? encoder.DefaultImageSize;
        var key = FeatureCacheKey.ForEncoder(encoder, data, size, preprocessing: $"rgb01 square={mode} (bicubic, 8-bit); encoder.Preprocess");
        Tensor Chunk(long start, long n)
        {
            using var _ = no_grad();
            var images = data.Images(start, n, size, mode);
            if (device is not null) images = images.to(device);
            return encoder.EncodeGrid(encoder.Preprocess(images)).cpu();
        }
        return group is { WorldSize: > 1 } ? ShardedFeaturization.GetOrCompute(this, key, data.Count, batchSize, Chunk, group)
                                            : GetOrCompute(key, data.Count, batchSize, Chunk);
    }

    /// <summary>Deletes the entry of <paramref name="key"/>; true when there was one.</summary>
    public bool Remove(FeatureCacheKey key)
    {
        bool any = File.Exists(ManifestPath(key)) || File.Exists(DataPath(key));
        File.Delete(ManifestPath(key));
        File.Delete(DataPath(key));
        return any;
    }

    void Write(FeatureCacheKey key, long count, IEnumerable<Tensor> chunks, bool disposeChunks)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string data = DataPath(key), manifestPath = ManifestPath(key);
        File.Delete(manifestPath); // an entry without its manifest is no entry while it is rewritten
        string suffix = $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        string tmpData = data + suffix, tmpManifest = manifestPath + suffix;
        long[]? shape = null; ScalarType dtype = default;
        long written = 0;
        try
        {
            using (var f = new FileStream(tmpData, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                foreach (var chunk in chunks)
                {
                    try
                    {
                        using var cpu = chunk.detach().cpu().contiguous();
                        if (shape is null)
                        {
                            shape = cpu.shape.ToArray();
                            shape[0] = count;
                            dtype = cpu.dtype;
                            WriteHeader(f, shape, dtype, key);
                        }
                        else if (!cpu.shape.Skip(1).SequenceEqual(shape.Skip(1)) || cpu.dtype != dtype)
                            throw new InvalidOperationException($"chunk [{string.Join(",", cpu.shape)}] {cpu.dtype} differs from the first chunk [{string.Join(",", shape.Skip(1))}] {dtype}.");
                        f.Write(cpu.bytes);
                        written += cpu.shape[0];
                    }
                    finally { if (disposeChunks) chunk.Dispose(); }
                }
                if (shape is null) throw new InvalidOperationException("nothing to cache: no items.");
                if (written != count) throw new InvalidOperationException($"{written} rows computed, {count} expected.");
                f.Flush(flushToDisk: true);
            }
            var manifest = new JsonObject
            {
                ["format"] = Format,
                ["key"] = key.ToJson(),
                ["hash"] = key.Hash,
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["dtype"] = dtype.ToString(),
                ["created_utc"] = DateTime.UtcNow.ToString("O"),
            };
            File.WriteAllText(tmpManifest, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Move(tmpData, data, overwrite: true);
            File.Move(tmpManifest, manifestPath, overwrite: true);
        }
        finally
        {
            File.Delete(tmpData);
            File.Delete(tmpManifest);
        }
    }

    static void WriteHeader(Stream f, long[] shape, ScalarType dtype, FeatureCacheKey key)
    {
        long bytes = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(dtype);
        var header = new JsonObject
        {
            ["__metadata__"] = new JsonObject { ["format"] = Format, ["key_hash"] = key.Hash },
            [TensorName] = new JsonObject
            {
                ["dtype"] = DTypeName(dtype),
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(0L, bytes),
            },
        };
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - json.Length % 8) % 8;
        f.Write(BitConverter.GetBytes((long)(json.Length + pad)));
        f.Write(json);
        for (int i = 0; i < pad; i++) f.WriteByte((byte)' ');
    }

    static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "F32", ScalarType.Float64 => "F64", ScalarType.Float16 => "F16", ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64", ScalarType.Int32 => "I32", ScalarType.Byte => "U8",
        _ => throw new NotSupportedException($"dtype {t} cannot be cached."),
    };

    internal static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Byte => 1,
        _ => throw new NotSupportedException($"dtype {t} cannot be cached."),
    };
}
