using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Checkpoints;

/// <summary>A checkpoint that does not fit the module: every missing, unexpected and mis-shaped key, listed at once.</summary>
public sealed class CheckpointMismatchException : Exception
{
    public IReadOnlyList<string> Missing { get; }
    public IReadOnlyList<string> Unexpected { get; }
    public IReadOnlyList<string> ShapeMismatches { get; }

    public CheckpointMismatchException(string source, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> shapes)
        : base(Describe(source, missing, unexpected, shapes))
    {
        Missing = missing; Unexpected = unexpected; ShapeMismatches = shapes;
    }

    static string Describe(string source, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> shapes)
    {
        var parts = new List<string>();
        if (shapes.Count > 0) parts.Add($"{shapes.Count} shape mismatch(es): {string.Join("; ", shapes.Take(20))}{More(shapes)}");
        if (missing.Count > 0) parts.Add($"{missing.Count} missing key(s): {string.Join(", ", missing.Take(20))}{More(missing)}");
        if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected key(s): {string.Join(", ", unexpected.Take(20))}{More(unexpected)}");
        return $"Checkpoint {source} does not fit the model. " + string.Join(". ", parts) + ".";
    }

    static string More(IReadOnlyList<string> l) => l.Count > 20 ? $" (and {l.Count - 20} more)" : "";
}

/// <summary>Loads state dicts into modules by their official key names.</summary>
public static class StateDict
{
    /// <summary>
    /// Copies <paramref name="weights"/> into <paramref name="module"/>'s parameters and buffers by name.
    /// Strict (the default): any missing, unexpected or shape-mismatched key fails with one
    /// <see cref="CheckpointMismatchException"/> listing all of them, before anything is copied.
    /// Non-strict: only keys present on both sides with equal shapes are copied; shape mismatches still fail.
    /// Values are converted to the target's dtype and device.
    /// </summary>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> weights, bool strict = true, string source = "(in memory)")
    {
        var target = module.state_dict();
        var missing = target.Keys.Where(k => !weights.ContainsKey(k)).ToList();
        var unexpected = weights.Keys.Where(k => !target.ContainsKey(k)).ToList();
        var shapes = target.Where(kv => weights.TryGetValue(kv.Key, out var w) && !w.shape.SequenceEqual(kv.Value.shape))
                           .Select(kv => $"{kv.Key}: checkpoint [{string.Join(",", weights[kv.Key].shape)}] vs model [{string.Join(",", kv.Value.shape)}]")
                           .ToList();
        if (shapes.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new CheckpointMismatchException(source, missing, unexpected, shapes);
        using var _ = no_grad();
        foreach (var (key, dst) in target)
            if (weights.TryGetValue(key, out var src))
                dst.copy_(src.to(dst.dtype, dst.device));
    }

    /// <summary>The entries whose key starts with <paramref name="prefix"/>, with the prefix removed.</summary>
    public static Dictionary<string, Tensor> WithPrefix(IReadOnlyDictionary<string, Tensor> weights, string prefix) =>
        weights.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
               .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);

    /// <summary>Number of elements over all parameters.</summary>
    public static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());
}
