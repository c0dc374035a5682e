using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Checkpoints;

/// <summary>The container formats <see cref="Checkpoint"/> recognises.</summary>
public enum CheckpointFormat
{
    /// <summary>A <c>torch.save</c> zip archive (<c>.pth</c>, <c>.pt</c>, <c>.ckpt</c>, <c>.bin</c>).</summary>
    TorchZip,
    /// <summary>A safetensors file (Hugging Face exports, this library's own weights).</summary>
    SafeTensors,
    /// <summary>A Hugging Face model folder: <c>model.safetensors</c>, a sharded <c>model.safetensors.index.json</c>, or <c>pytorch_model.bin</c>.</summary>
    HuggingFaceFolder,
}

/// <summary>
/// Format-agnostic reading of state dicts, and saving/loading of this library's own module weights (safetensors).
/// Everything returns CPU tensors under the keys found in the file, ready for <see cref="StateDict.Load"/>.
/// </summary>
public static class Checkpoint
{
    /// <summary>
    /// The entries tried, in this order, when a <c>torch.save</c> file holds a dict of several things instead of a
    /// bare state dict: <c>ema</c> (the EMA weights used for sampling, as in DiT/SiT/SVG training checkpoints),
    /// <c>model</c>, <c>state_dict</c> (PyTorch Lightning), <c>module</c>.
    /// </summary>
    public static IReadOnlyList<string> StateDictEntryOrder { get; } = ["ema", "model", "state_dict", "module"];

    /// <summary>
    /// Identifies the container of <paramref name="path"/> from its first bytes (or a folder). Throws
    /// <see cref="FileNotFoundException"/> when it does not exist, and <see cref="CheckpointFormatException"/> when it
    /// is empty, a legacy (pre-1.6) <c>torch.save</c> file, a bare pickle, or anything else.
    /// </summary>
    public static CheckpointFormat DetectFormat(string path)
    {
        if (Directory.Exists(path)) return CheckpointFormat.HuggingFaceFolder;
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint file not found: '{path}'.", path);
        Span<byte> head = stackalloc byte[16];
        long length;
        int n;
        using (var f = File.OpenRead(path))
        {
            length = f.Length;
            n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        if (length == 0) throw new CheckpointFormatException(path, "the file is empty (0 bytes).");
        head = head[..n];
        if (n >= 4 && head[0] == 'P' && head[1] == 'K' && ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6)))
            return CheckpointFormat.TorchZip;
        if (n >= 9 && head[8] == '{')
        {
            long headerLength = BitConverter.ToInt64(head[..8]);
            if (headerLength >= 2 && headerLength <= length - 8) return CheckpointFormat.SafeTensors;
            throw new CheckpointFormatException(path, $"a truncated safetensors file (the header needs {headerLength} bytes, {length - 8} present).");
        }
        if (n >= 2 && head[0] == 0x80 && head[1] <= 5)
        {
            // The legacy torch.save stream starts with the pickled magic number 0x1950a86a20f9469cfc6c (LONG1, 10 bytes).
            bool legacy = n >= 13 && head[2] == 0x8a && head[3] == 0x0a && head[4] == 0x6c && head[5] == 0xfc && head[6] == 0x9c;
            throw new CheckpointFormatException(path, legacy
                ? "written in the legacy (PyTorch < 1.6) torch.save format, which is not supported; re-save it with a current torch.save."
                : "a bare pickle, not a torch.save zip archive; only torch.save checkpoints and safetensors are supported.");
        }
        throw new CheckpointFormatException(path, "not a checkpoint: neither a torch.save zip archive nor a safetensors file " +
                                                  $"(starts with {Convert.ToHexString(head[..Math.Min(n, 8)])}).");
    }

    /// <summary>
    /// Reads the state dict held by <paramref name="path"/>: a <c>torch.save</c> archive (a bare state dict, or the
    /// entry named <paramref name="entry"/>, or else the first of <see cref="StateDictEntryOrder"/>), a safetensors
    /// file, or a Hugging Face folder. Tensors keep their stored dtype.
    /// </summary>
    /// <param name="path">A file or a Hugging Face folder.</param>
    /// <param name="entry">For a <c>torch.save</c> dict: the entry holding the state dict (e.g. <c>"model"</c>); null to choose automatically.</param>
    /// <param name="allowList">The globals a pickle may name; null for <see cref="PickleAllowList.Default"/>.</param>
    public static Dictionary<string, Tensor> ReadTensors(string path, string? entry = null, PickleAllowList? allowList = null) =>
        ReadTensors(path, entry, out _, allowList);

    /// <summary>As <see cref="ReadTensors(string, string?, PickleAllowList?)"/>; <paramref name="chosenEntry"/> names the entry that was read ("" for a bare state dict or a safetensors file).</summary>
    public static Dictionary<string, Tensor> ReadTensors(string path, string? entry, out string chosenEntry, PickleAllowList? allowList = null)
    {
        switch (DetectFormat(path))
        {
            case CheckpointFormat.SafeTensors:
                chosenEntry = "";
                return ReadSafeTensors(path).Tensors;
            case CheckpointFormat.HuggingFaceFolder:
                chosenEntry = "";
                return ReadFolder(path, allowList);
            default:
                using (var ckpt = TorchCheckpoint.Open(path, allowList))
                {
                    var node = SelectStateDict(ckpt, entry, out chosenEntry);
                    return ckpt.ReadStateDict(node, what: chosenEntry.Length == 0 ? "state dict" : $"'{chosenEntry}' state dict");
                }
        }
    }

    /// <summary>
    /// Saves <paramref name="module"/>'s state dict (parameters and buffers, by name) as safetensors, with
    /// <paramref name="metadata"/> (string pairs, e.g. a JSON config) plus <c>format=pt</c>. Written to a temporary file first.
    /// </summary>
    public static void SaveModule(nn.Module module, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        SafeTensors.Save(path, module.state_dict(), meta);
    }

    /// <summary>
    /// Loads weights into <paramref name="module"/> by name from any supported file (see <see cref="ReadTensors(string, string?, PickleAllowList?)"/>),
    /// strictly by default (<see cref="CheckpointMismatchException"/> lists every missing, unexpected and mis-shaped key).
    /// Returns the safetensors metadata (empty for other formats).
    /// </summary>
    public static IReadOnlyDictionary<string, string> LoadModule(nn.Module module, string path, bool strict = true, string? entry = null, PickleAllowList? allowList = null)
    {
        IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
        Dictionary<string, Tensor> weights;
        if (DetectFormat(path) == CheckpointFormat.SafeTensors)
        {
            var contents = ReadSafeTensors(path);
            weights = contents.Tensors;
            metadata = contents.Metadata;
        }
        else weights = ReadTensors(path, entry, allowList);
        try { StateDict.Load(module, weights, strict, path); }
        finally { foreach (var t in weights.Values) t.Dispose(); }
        return metadata;
    }

    /// <summary>Reads a safetensors file, reporting problems as <see cref="CheckpointFormatException"/>.</summary>
    internal static SafeTensors.Contents ReadSafeTensors(string path)
    {
        using var stream = File.OpenRead(path);
        try { return SafeTensors.Load(stream); }
        // SafeTensors.Load reports a malformed header as InvalidData/Json errors, a missing or mistyped field as
        // NullReference/InvalidOperation/Format errors: all mean "not a valid safetensors file".
        catch (Exception e) when (e is InvalidDataException or JsonException or InvalidOperationException or FormatException or NullReferenceException)
        {
            throw new CheckpointFormatException(path, "invalid safetensors file: " + e.Message, e);
        }
    }

    internal static object? SelectStateDict(TorchCheckpoint ckpt, string? entry, out string chosen)
    {
        var root = ckpt.Root;
        string keys = root is PickleDict rd ? "[" + string.Join(", ", rd.Keys.Take(12).Select(k => k is string s ? s : PickleValue.Describe(k))) + "]" : PickleValue.Describe(root);
        if (entry is not null)
        {
            if (root is PickleDict d && d.TryGetValue(entry, out var v)) { chosen = entry; return v; }
            throw new CheckpointFormatException(ckpt.FilePath, $"has no entry '{entry}'; its top-level entries are {keys}.");
        }
        if (root is PickleDict dict)
        {
            if (dict.Count > 0 && dict.All(kv => kv.Value is TensorRef)) { chosen = ""; return dict; }
            foreach (var name in StateDictEntryOrder)
                if (dict.TryGetValue(name, out var v) && v is PickleDict) { chosen = name; return v; }
        }
        throw new CheckpointFormatException(ckpt.FilePath, $"holds no state dict: it is not a dict of tensors and has none of the entries " +
                                                           $"{string.Join(", ", StateDictEntryOrder)}; its top-level entries are {keys}.");
    }

    static Dictionary<string, Tensor> ReadFolder(string folder, PickleAllowList? allowList)
    {
        string single = Path.Combine(folder, "model.safetensors");
        string index = Path.Combine(folder, "model.safetensors.index.json");
        string bin = Path.Combine(folder, "pytorch_model.bin");
        if (File.Exists(single)) return ReadTensors(single, null, allowList);
        if (File.Exists(index))
        {
            JsonObject map;
            try { map = JsonNode.Parse(File.ReadAllText(index))!["weight_map"]!.AsObject(); }
            catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException)
            {
                throw new CheckpointFormatException(index, "invalid safetensors index (no weight_map): " + e.Message, e);
            }
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var shard in map.Select(kv => kv.Value!.GetValue<string>()).Distinct())
            {
                if (Path.GetFileName(shard) != shard) throw new CheckpointFormatException(index, $"shard name '{shard}' is not a plain file name.");
                foreach (var (k, t) in ReadTensors(Path.Combine(folder, shard), null, allowList)) result[k] = t;
            }
            var missing = map.Select(kv => kv.Key).Where(k => !result.ContainsKey(k)).ToList();
            if (missing.Count > 0)
            {
                foreach (var t in result.Values) t.Dispose();
                throw new CheckpointFormatException(index, $"the shards lack {missing.Count} tensor(s) listed in the index: {string.Join(", ", missing.Take(10))}.");
            }
            return result;
        }
        if (File.Exists(bin)) return ReadTensors(bin, null, allowList);
        throw new CheckpointFormatException(folder, "a folder without model.safetensors, model.safetensors.index.json or pytorch_model.bin.");
    }

    /// <summary>
    /// Removes a wrapper prefix that every key carries (<c>module.</c> from DistributedDataParallel,
    /// <c>_orig_mod.</c> from torch.compile), repeatedly; returns the same dict when there is none.
    /// </summary>
    public static Dictionary<string, Tensor> StripWrapperPrefixes(Dictionary<string, Tensor> weights)
    {
        foreach (var _ in Enumerable.Range(0, 4))
        {
            var prefix = new[] { "module.", "_orig_mod." }.FirstOrDefault(p => weights.Count > 0 && weights.Keys.All(k => k.StartsWith(p, StringComparison.Ordinal)));
            if (prefix is null) break;
            weights = StateDict.WithPrefix(weights, prefix);
        }
        return weights;
    }
}
