using System.Security.Cryptography;
using Svg.ML.Data;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Dense;

/// <summary>
/// Training data of a dense head: feature maps <c>[N, C, h, w]</c> (in memory, or streamed from a feature-cache entry
/// so the frozen encoder ran once per image) with per-pixel targets <c>[N, H, W]</c> held on the CPU — int64 class
/// indices (ignore index allowed) for segmentation, float32 metres (0/NaN invalid) for depth.
/// </summary>
public sealed class DenseDataset
{
    readonly Tensor? _features;
    readonly CachedFeatures? _cache;
    readonly Tensor _targets;

    DenseDataset(Tensor? features, CachedFeatures? cache, long[] shape, Tensor targets, string identity)
    {
        if (shape.Length != 4) throw new ArgumentException($"Features must be [N, C, h, w]; got [{string.Join(", ", shape)}].");
        if (targets.dim() != 3 || targets.shape[0] != shape[0])
            throw new ArgumentException($"Targets must be [N, H, W] with N = {shape[0]}; got [{string.Join(", ", targets.shape)}].");
        _features = features;
        _cache = cache;
        _targets = targets;
        Count = shape[0];
        Channels = (int)shape[1];
        GridHeight = (int)shape[2];
        GridWidth = (int)shape[3];
        Height = targets.shape[1];
        Width = targets.shape[2];
        Identity = identity;
    }

    /// <summary>In-memory features and targets (used as they are, not copied: keep them alive and unchanged while
    /// training). <paramref name="identity"/> names the data for resume checks; by default a SHA-256 over the shapes,
    /// the targets and up to 64 evenly spaced feature rows.</summary>
    public static DenseDataset FromTensors(Tensor features, Tensor targets, string? identity = null)
    {
        TorchRuntime.EnsureInitialized();
        if (!features.is_floating_point()) throw new ArgumentException($"Features must be floating point; got {features.dtype}.");
        var f = features.device_type == DeviceType.CPU ? features : features.cpu().DetachFromDisposeScope();
        var t = targets.device_type == DeviceType.CPU ? targets : targets.cpu().DetachFromDisposeScope();
        return new DenseDataset(f, null, features.shape, t, identity ?? Fingerprint(f, t));
    }

    /// <summary>Features streamed from a feature-cache entry; the identity combines the cache key and the targets.</summary>
    public static DenseDataset FromCache(CachedFeatures cache, Tensor targets)
    {
        TorchRuntime.EnsureInitialized();
        var t = targets.device_type == DeviceType.CPU ? targets : targets.cpu().DetachFromDisposeScope();
        return new DenseDataset(null, cache, cache.Shape, t, $"cache:{cache.Key.Hash}|targets:{HashTensor(t)}");
    }

    /// <summary>Samples N.</summary>
    public long Count { get; }

    /// <summary>Feature channels C.</summary>
    public int Channels { get; }

    /// <summary>Feature grid height h.</summary>
    public int GridHeight { get; }

    /// <summary>Feature grid width w.</summary>
    public int GridWidth { get; }

    /// <summary>Target height H.</summary>
    public long Height { get; }

    /// <summary>Target width W.</summary>
    public long Width { get; }

    /// <summary>Names the data (stored in checkpoints; resuming with other data is refused).</summary>
    public string Identity { get; }

    /// <summary>Feature rows <paramref name="indices"/> as float32 <c>[B, C, h, w]</c> on the CPU.</summary>
    public Tensor ReadFeatures(long[] indices)
    {
        using var scope = NewDisposeScope();
        Tensor rows;
        if (_features is not null)
        {
            using var index = tensor(indices);
            rows = _features.index_select(0, index);
        }
        else rows = _cache!.ReadRows(indices);
        return rows.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Target rows <paramref name="indices"/> <c>[B, H, W]</c> on the CPU (their stored type).</summary>
    public Tensor ReadTargets(long[] indices)
    {
        using var index = tensor(indices);
        return _targets.index_select(0, index);
    }

    static string Fingerprint(Tensor features, Tensor targets)
    {
        using var scope = NewDisposeScope();
        long n = features.shape[0];
        var rows = Enumerable.Range(0, (int)Math.Min(64, n)).Select(i => n <= 64 ? i : i * (n - 1) / 63).Distinct().ToArray();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{string.Join(",", features.shape)}|{features.dtype}|{HashTensor(targets)}"));
        sha.AppendData(features.index_select(0, tensor(rows)).contiguous().bytes);
        return "tensors:" + Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    static string HashTensor(Tensor t)
    {
        using var c = t.contiguous();
        return DataIdentity.Hash($"{string.Join(",", t.shape)}|{t.dtype}|") +
               Convert.ToHexString(SHA256.HashData(c.bytes)).ToLowerInvariant()[..32];
    }
}
