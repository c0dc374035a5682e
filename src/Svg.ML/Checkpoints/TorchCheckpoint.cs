using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Checkpoints;

/// <summary>
/// A file written by <c>torch.save</c> (the zip format of PyTorch ≥ 1.6: <c>&lt;name&gt;/data.pkl</c>,
/// <c>&lt;name&gt;/data/&lt;key&gt;</c> storages, <c>byteorder</c>, <c>version</c>), opened safely.
/// </summary>
/// <remarks>
/// <para><see cref="Open"/> parses the whole pickle with an inert interpreter that builds only data and refuses any
/// global outside the <see cref="PickleAllowList"/> (<see cref="UnsafeCheckpointException"/>). No tensor data is
/// read at that point: tensors are <see cref="TensorRef"/>s (storage key, offset, shape, stride). Only what is asked
/// for is materialised (<see cref="ReadTensor"/>, <see cref="ReadStateDict"/>), so a Lightning checkpoint's
/// optimizer moments or loss networks are never loaded when only the weights are wanted.</para>
/// <para>Tensors come back on the CPU, contiguous, in the stored dtype, and independent of one another (views that
/// shared a storage in Python are copied apart).</para>
/// </remarks>
public sealed class TorchCheckpoint : IDisposable
{
    readonly FileStream _file;
    readonly ZipArchive _zip;
    readonly string _prefix;
    readonly Dictionary<string, StorageRef> _storages = new(StringComparer.Ordinal);

    /// <summary>The file.</summary>
    public string FilePath { get; }

    /// <summary>The unpickled object: usually a <see cref="PickleDict"/> (a state dict, <c>{"ema": …}</c>, a Lightning checkpoint).</summary>
    public object? Root { get; private set; }

    /// <summary>Every (allowed) global the pickle referenced, as <c>module.name</c>.</summary>
    public IReadOnlyCollection<string> Globals { get; private set; } = Array.Empty<string>();

    /// <summary>The string keys of <see cref="Root"/> when it is a dict, else empty.</summary>
    public IReadOnlyList<string> TopLevelKeys => Root is PickleDict d ? d.StringKeys.ToList() : [];

    TorchCheckpoint(string path, FileStream file, ZipArchive zip, string prefix)
    {
        FilePath = path; _file = file; _zip = zip; _prefix = prefix;
    }

    /// <summary>
    /// Opens <paramref name="path"/>, checks it is a complete torch zip archive and parses its pickle safely.
    /// Throws <see cref="FileNotFoundException"/>, <see cref="CheckpointFormatException"/> (empty, truncated, not a
    /// torch archive, corrupt pickle, missing storage) or <see cref="UnsafeCheckpointException"/>.
    /// </summary>
    public static TorchCheckpoint Open(string path, PickleAllowList? allowList = null)
    {
        var format = Checkpoint.DetectFormat(path);
        if (format != CheckpointFormat.TorchZip)
            throw new CheckpointFormatException(path, $"expected a torch.save zip archive, found a {format} file.");
        Runtime.TorchRuntime.EnsureInitialized();
        var file = File.OpenRead(path);
        try
        {
            ZipArchive zip;
            try { zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true); }
            catch (InvalidDataException e)
            {
                throw new CheckpointFormatException(path, $"not a complete zip archive (truncated or corrupt: {e.Message})", e);
            }
            var pickles = zip.Entries.Where(e => e.Name == "data.pkl" && e.FullName.Count(c => c == '/') == 1).ToList();
            if (pickles.Count != 1)
                throw new CheckpointFormatException(path, pickles.Count == 0
                    ? "a zip archive but not a torch.save checkpoint (no <name>/data.pkl entry)."
                    : $"a zip archive with {pickles.Count} <name>/data.pkl entries; expected one.");
            var pkl = pickles[0];
            string prefix = pkl.FullName[..^"data.pkl".Length];
            var ckpt = new TorchCheckpoint(path, file, zip, prefix);
            ckpt.CheckByteOrder();
            ckpt.Parse(pkl, allowList ?? PickleAllowList.Default);
            return ckpt;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    void CheckByteOrder()
    {
        var entry = _zip.GetEntry(_prefix + "byteorder");
        if (entry is null) return; // written since PyTorch 1.9; older files are little-endian
        var text = Encoding.ASCII.GetString(ReadEntry(entry, 16)).Trim();
        if (text == "big")
            throw new CheckpointFormatException(FilePath, "was saved on a big-endian machine; only little-endian checkpoints are supported.");
        if (text != "little")
            throw new CheckpointFormatException(FilePath, $"has an unknown byteorder record '{text}'.");
    }

    void Parse(ZipArchiveEntry pkl, PickleAllowList allow)
    {
        if (pkl.Length > int.MaxValue) throw new CheckpointFormatException(FilePath, "data.pkl is larger than 2 GiB.");
        var bytes = ReadEntry(pkl, pkl.Length);
        var unpickler = new RestrictedUnpickler(bytes, FilePath, allow, PersistentLoad);
        Root = unpickler.Load();
        Globals = unpickler.GlobalsSeen;
    }

    // torch.save's persistent id: ("storage", torch.<Type>Storage, key, location, numel).
    object? PersistentLoad(object? pid)
    {
        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage")
            throw new CheckpointFormatException(FilePath, $"unsupported persistent id {PickleValue.Describe(pid)} in data.pkl (expected a torch storage).");
        if (t[1] is not PickleGlobal type || TorchZip.DTypeFromStorage(type.Name) is not { } dtype)
            throw new CheckpointFormatException(FilePath, $"unsupported storage type {PickleValue.Describe(t[1])}.");
        if (t[2] is not string key || key.Length == 0 || key.Contains('/') || key.Contains('\\') || key.Contains(".."))
            throw new CheckpointFormatException(FilePath, $"invalid storage key {PickleValue.Describe(t[2])}.");
        if (!PickleValue.TryGetLong(t[4], out long numel) || numel < 0)
            throw new CheckpointFormatException(FilePath, $"storage '{key}' has an invalid element count.");
        string location = t[3] as string ?? "cpu";

        if (_storages.TryGetValue(key, out var known))
        {
            if (known.DType != dtype || known.Numel != numel)
                throw new CheckpointFormatException(FilePath, $"storage '{key}' is referenced as {known.DType}[{known.Numel}] and as {dtype}[{numel}].");
            return known;
        }
        var entry = _zip.GetEntry(_prefix + "data/" + key)
            ?? throw new CheckpointFormatException(FilePath, $"the storage 'data/{key}' referenced by data.pkl is missing from the archive.");
        long needed = numel * TorchZip.ElementSize(dtype);
        if (entry.Length < needed)
            throw new CheckpointFormatException(FilePath, $"the storage 'data/{key}' holds {entry.Length} bytes but {needed} are needed (truncated).");
        var s = new StorageRef(key, dtype, numel, location);
        _storages[key] = s;
        return s;
    }

    /// <summary>Reads one tensor (a contiguous CPU copy in the stored dtype).</summary>
    public Tensor ReadTensor(TensorRef tensor)
    {
        using var scope = NewDisposeScope();
        var storage = ReadStorage(tensor.Storage, tensor.DType);
        return Materialize(storage, tensor, soleUser: false, "tensor").MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Materialises a state dict: <paramref name="node"/> must be a dict from string keys to tensors. Only keys
    /// accepted by <paramref name="include"/> (all when null) are read; the others are never loaded.
    /// </summary>
    public Dictionary<string, Tensor> ReadStateDict(object? node, Func<string, bool>? include = null, string what = "state dict")
    {
        if (node is not PickleDict dict)
            throw new CheckpointFormatException(FilePath, $"the {what} is {PickleValue.Describe(node)}, not a dict of tensors.");
        var refs = new List<(string Key, TensorRef Ref)>();
        var bad = new List<string>();
        foreach (var (k, v) in dict)
        {
            if (k is not string key) { bad.Add($"{PickleValue.Describe(k)} (non-string key)"); continue; }
            if (include is not null && !include(key)) continue;
            if (v is TensorRef r) refs.Add((key, r));
            else bad.Add($"'{key}' ({PickleValue.Describe(v)})");
        }
        if (bad.Count > 0)
            throw new CheckpointFormatException(FilePath, $"the {what} has {bad.Count} entr{(bad.Count == 1 ? "y" : "ies")} that are not tensors: " +
                string.Join(", ", bad.Take(10)) + (bad.Count > 10 ? ", …" : "") + ".");

        var users = refs.GroupBy(r => (r.Ref.Storage.Key, r.Ref.DType)).ToDictionary(g => g.Key, g => g.Count());
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var scope = NewDisposeScope();
        var cache = new Dictionary<(string, ScalarType), Tensor>();
        foreach (var (key, r) in refs)
        {
            var id = (r.Storage.Key, r.DType);
            if (!cache.TryGetValue(id, out var storage)) cache[id] = storage = ReadStorage(r.Storage, r.DType);
            result[key] = Materialize(storage, r, users[id] == 1, $"'{key}'");
        }
        foreach (var t in result.Values) t.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>The value of a top-level entry of <see cref="Root"/> (null when absent or when the root is not a dict).</summary>
    public object? Entry(string key) => Root is PickleDict d && d.TryGetValue(key, out var v) ? v : null;

    // Reads data/<key> into a new CPU tensor of `dtype` (the storage's own, or the dtype of a _rebuild_tensor_v3 over
    // an untyped byte storage), straight into the tensor's memory, in chunks of at most 1 GiB.
    Tensor ReadStorage(StorageRef s, ScalarType dtype)
    {
        var entry = _zip.GetEntry(_prefix + "data/" + s.Key)!;
        long nbytes = s.Numel * TorchZip.ElementSize(s.DType), size = TorchZip.ElementSize(dtype);
        if (nbytes % size != 0)
            throw new CheckpointFormatException(FilePath, $"the storage 'data/{s.Key}' ({nbytes} bytes) cannot hold {dtype} elements.");
        var t = empty(nbytes / size, dtype);
        if (nbytes == 0) return t;
        try
        {
            using var stream = entry.Open();
            long chunk = (1L << 30) / size;
            for (long start = 0; start < t.numel(); start += chunk)
            {
                using var part = t.narrow(0, start, Math.Min(chunk, t.numel() - start));
                stream.ReadExactly(part.bytes);
            }
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or IOException)
        {
            t.Dispose();
            throw new CheckpointFormatException(FilePath, $"cannot read the storage 'data/{s.Key}' ({e.Message}); the file is truncated or corrupt.", e);
        }
        return t;
    }

    Tensor Materialize(Tensor source, TensorRef r, bool soleUser, string what)
    {
        long numel = r.Numel;
        if (numel > 0)
        {
            long last;
            try { last = checked(r.StorageOffset + r.Shape.Zip(r.Stride).Sum(p => checked((p.First - 1) * p.Second))); }
            catch (OverflowException) { last = long.MaxValue; }
            if (last >= source.numel())
                throw new CheckpointFormatException(FilePath, $"tensor {what} {r.ShapeText} reaches element {last} of storage 'data/{r.Storage.Key}', which has {source.numel()}.");
        }
        bool contiguous = IsContiguous(r.Shape, r.Stride);
        if (soleUser && r.StorageOffset == 0 && contiguous && numel == source.numel())
            return source.reshape(r.Shape);
        var view = source.as_strided(r.Shape, r.Stride, r.StorageOffset);
        return view.is_contiguous() ? view.clone() : view.contiguous();
    }

    static bool IsContiguous(long[] shape, long[] stride)
    {
        long expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 1) continue;
            if (stride[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    byte[] ReadEntry(ZipArchiveEntry entry, long length)
    {
        try
        {
            using var s = entry.Open();
            var bytes = new byte[Math.Min(length, entry.Length)];
            s.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or IOException)
        {
            throw new CheckpointFormatException(FilePath, $"cannot read '{entry.FullName}' ({e.Message}); the file is truncated or corrupt.", e);
        }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose()
    {
        _zip.Dispose();
        _file.Dispose();
    }
}

/// <summary>dtype tables of the torch zip format.</summary>
static class TorchZip
{
    public static ScalarType? DTypeFromStorage(string storageClass) => storageClass switch
    {
        "FloatStorage" => ScalarType.Float32,
        "DoubleStorage" => ScalarType.Float64,
        "HalfStorage" => ScalarType.Float16,
        "BFloat16Storage" => ScalarType.BFloat16,
        "LongStorage" => ScalarType.Int64,
        "IntStorage" => ScalarType.Int32,
        "ShortStorage" => ScalarType.Int16,
        "CharStorage" => ScalarType.Int8,
        "ByteStorage" or "UntypedStorage" => ScalarType.Byte,
        "BoolStorage" => ScalarType.Bool,
        "ComplexFloatStorage" => ScalarType.ComplexFloat32,
        "ComplexDoubleStorage" => ScalarType.ComplexFloat64,
        _ => null,
    };

    public static ScalarType? DTypeFromName(string dtypeName) => dtypeName switch
    {
        "float32" or "float" => ScalarType.Float32,
        "float64" or "double" => ScalarType.Float64,
        "float16" or "half" => ScalarType.Float16,
        "bfloat16" => ScalarType.BFloat16,
        "int64" or "long" => ScalarType.Int64,
        "int32" or "int" => ScalarType.Int32,
        "int16" or "short" => ScalarType.Int16,
        "int8" => ScalarType.Int8,
        "uint8" => ScalarType.Byte,
        "bool" => ScalarType.Bool,
        "complex64" or "cfloat" => ScalarType.ComplexFloat32,
        "complex128" or "cdouble" => ScalarType.ComplexFloat64,
        _ => null,
    };

    public static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.ComplexFloat64 => 16,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };
}
