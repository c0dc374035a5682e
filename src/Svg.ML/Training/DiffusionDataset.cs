using System.Security.Cryptography;
using Svg.ML.Autoencoder;
using Svg.ML.Data;
using Svg.ML.Diffusion;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// The training data of stage 2: SVG features with one class label each, held in memory
/// (<see cref="FromFeatures(Tensor, long[], int, string?)"/>) or streamed row by row from a feature-cache file (<see cref="FromCache"/>).
/// Features are latents <c>[N, C, h, w]</c> (as <see cref="Autoencoder.SvgEncoder"/> gives them) or tokens
/// <c>[N, T, C]</c>; batches are always returned as float32 tokens <c>[B, h·w, C]</c> on the CPU.
/// </summary>
public sealed class DiffusionDataset
{
    readonly Tensor? _features;          // in memory (not owned)
    readonly CachedFeatures? _cache;     // streamed
    readonly bool _latentLayout;         // [N, C, h, w] (true) or [N, T, C]
    readonly long[] _labels;

    DiffusionDataset(Tensor? features, CachedFeatures? cache, long[] shape, long[] labels, int numClasses, string identity)
    {
        _features = features;
        _cache = cache;
        if (shape.Length is not (3 or 4))
            throw new ArgumentException($"Features must be latents [N, C, h, w] or tokens [N, T, C]; got [{string.Join(", ", shape)}].");
        _latentLayout = shape.Length == 4;
        Count = shape[0];
        if (Count == 0) throw new ArgumentException("The feature set is empty.");
        if (labels.Length != Count) throw new ArgumentException($"{Count} feature rows but {labels.Length} labels.");
        if (numClasses <= 0) throw new ArgumentException("numClasses must be positive.");
        int bad = Array.FindIndex(labels, l => l < 0 || l >= numClasses);
        if (bad >= 0) throw new ArgumentException($"Label {labels[bad]} (row {bad}) lies outside [0, {numClasses}).");
        _labels = labels;
        NumClasses = numClasses;
        if (_latentLayout)
        {
            Channels = (int)shape[1];
            GridHeight = (int)shape[2];
            GridWidth = (int)shape[3];
        }
        else
        {
            Channels = (int)shape[2];
            int side = (int)Math.Round(Math.Sqrt(shape[1]));
            if ((long)side * side != shape[1])
                throw new ArgumentException($"Token features [N, T, C] need a square number of tokens; got T = {shape[1]}.");
            GridHeight = GridWidth = side;
        }
        Identity = identity;
    }

    /// <summary>
    /// In-memory features (used as they are, not copied: keep the tensor alive and unchanged while training).
    /// <paramref name="identity"/> names the data for checkpoint compatibility checks; by default a SHA-256 over the
    /// shape, the labels and 64 evenly spaced rows.
    /// </summary>
    public static DiffusionDataset FromFeatures(Tensor features, long[] labels, int numClasses, string? identity = null)
    {
        TorchRuntime.EnsureInitialized();
        if (!features.is_floating_point()) throw new ArgumentException($"Features must be floating point; got {features.dtype}.");
        var labelArray = labels.ToArray();
        var cpu = features.device_type == DeviceType.CPU ? features : features.cpu().DetachFromDisposeScope();
        return new DiffusionDataset(cpu, null, features.shape, labelArray, numClasses,
                                    identity ?? Fingerprint(cpu, labelArray, numClasses));
    }

    /// <summary>In-memory features with labels as an int64 tensor <c>[N]</c>.</summary>
    public static DiffusionDataset FromFeatures(Tensor features, Tensor labels, int numClasses, string? identity = null) =>
        FromFeatures(features, labels.to(ScalarType.Int64).cpu().data<long>().ToArray(), numClasses, identity);

    /// <summary>
    /// Features streamed from a feature-cache entry (rows read on demand, so the set may exceed memory).
    /// The identity combines the cache key's hash and the labels.
    /// </summary>
    public static DiffusionDataset FromCache(CachedFeatures cache, long[] labels, int numClasses)
    {
        TorchRuntime.EnsureInitialized();
        var labelArray = labels.ToArray();
        string identity = $"cache:{cache.Key.Hash}|labels:{HashLabels(labelArray, numClasses)}";
        return new DiffusionDataset(null, cache, cache.Shape, labelArray, numClasses, identity);
    }

    /// <summary>
    /// Encodes <paramref name="images"/> with a (trained) <see cref="SvgEncoder"/> — evaluation mode, no gradients, in
    /// batches of <paramref name="batchSize"/> on the encoder's device — into SVG latents <c>[N, C, h, w]</c> with the
    /// images' labels (classes = <see cref="LabeledImages.ClassNames"/>). With <paramref name="cache"/>, the latents are
    /// stored there ("featurize once, train many": the key covers the encoder's weights, configuration and alignment
    /// statistics, the images and the resize) and streamed from disk; otherwise they are held in memory.
    /// With <see cref="ResidualAlignment.BatchStatistics"/> (the official mode) a row's residual channels depend on
    /// the other images of its batch; <see cref="ResidualAlignment.Stored"/> makes rows independent.
    /// With a cache and a multi-rank <paramref name="group"/>, the ranks encode shares of the batches
    /// (<see cref="Distributed.ShardedFeaturization"/>; the cache folder must be shared).
    /// </summary>
    public static DiffusionDataset Encode(SvgEncoder encoder, LabeledImages images, int batchSize = 32, int? imageSize = null,
                                          ResizeMode resize = ResizeMode.CenterCrop, FeatureCache? cache = null,
                                          Distributed.ProcessGroup? group = null)
    {
        TorchRuntime.EnsureInitialized();
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize));
        int size = imageSize ?? encoder.Config.Residual.ImageSize;
        var device = encoder.ResidualEncoder.parameters().First().device;
        int numClasses = images.ClassNames.Count;
        Tensor EncodeRows(long start, long count)
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var rgb = images.Images(start, count, size, resize).to(device);
            return encoder.Encode(rgb).cpu().MoveToOuterDisposeScope();
        }

        bool wasTraining = encoder.training;
        encoder.eval();
        try
        {
            if (cache is not null)
            {
                string config = System.Text.Json.JsonSerializer.Serialize(encoder.Config) +
                                (encoder.Statistics is { } st ? "|stored:" + string.Join(",", st.ToMetadata().OrderBy(kv => kv.Key).Select(kv => kv.Value)) : "");
                var key = new FeatureCacheKey($"SvgEncoder({encoder.BaseEncoder.Name})", FeatureCacheKey.FingerprintWeights(encoder),
                                              config, size, images.Identity, $"rgb01 square={resize} (bicubic, 8-bit); SvgEncoder.Encode batch={batchSize}");
                var cached = Distributed.ShardedFeaturization.GetOrCompute(cache, key, images.Count, batchSize, EncodeRows,
                                                                           group ?? Distributed.ProcessGroup.Single);
                return FromCache(cached, images.Labels, numClasses);
            }
            Tensor? all = null;
            for (long start = 0; start < images.Count; start += batchSize)
            {
                long n = Math.Min(batchSize, images.Count - start);
                using var rows = EncodeRows(start, n);
                all ??= empty([images.Count, rows.shape[1], rows.shape[2], rows.shape[3]], rows.dtype).DetachFromDisposeScope();
                all.narrow(0, start, n).copy_(rows);
            }
            string identity = $"svg:{images.Identity}|{size}|{resize}|batch={batchSize}|{FeatureCacheKey.FingerprintWeights(encoder)[..16]}|{encoder.Config.Alignment}|{encoder.Statistics}";
            return new DiffusionDataset(all!, null, all!.shape, images.Labels, numClasses, identity);
        }
        finally
        {
            encoder.train(wasTraining);
        }
    }

    /// <summary>Samples.</summary>
    public long Count { get; }

    /// <summary>Channels per token (C).</summary>
    public int Channels { get; }

    /// <summary>Latent grid height (h).</summary>
    public int GridHeight { get; }

    /// <summary>Latent grid width (w).</summary>
    public int GridWidth { get; }

    /// <summary>Tokens per sample (h·w).</summary>
    public int Tokens => GridHeight * GridWidth;

    /// <summary>Number of classes; labels lie in [0, NumClasses).</summary>
    public int NumClasses { get; }

    /// <summary>The class of each sample.</summary>
    public IReadOnlyList<long> Labels => _labels;

    /// <summary>Names the data (stored in checkpoints; resuming with other data is refused).</summary>
    public string Identity { get; }

    /// <summary>True when rows are read from a file on demand.</summary>
    public bool IsStreamed => _cache is not null;

    /// <summary>Rows <paramref name="indices"/> as float32 tokens <c>[B, T, C]</c> on the CPU.</summary>
    public Tensor ReadTokens(long[] indices)
    {
        using var scope = NewDisposeScope();
        Tensor rows;
        if (_features is not null)
        {
            using var index = tensor(indices);
            rows = _features.index_select(0, index);
        }
        else rows = _cache!.ReadRows(indices);
        var tokens = _latentLayout ? LatentTokens.ToTokens(rows) : rows.contiguous();
        return tokens.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Labels of rows <paramref name="indices"/> as int64 <c>[B]</c>.</summary>
    public Tensor ReadLabels(long[] indices) => tensor(indices.Select(i => _labels[i]).ToArray());

    /// <summary>
    /// Per-channel statistics over all tokens of all samples (mean and unbiased std, accumulated in float64 chunk by
    /// chunk with Chan et al.'s merge), as the official <c>dinov3_sp_stats</c> normalisation uses.
    /// </summary>
    public FeatureNormalizer FitNormalizer(int chunkRows = 256)
    {
        using var scope = NewDisposeScope();
        Tensor? mean = null, m2 = null;
        long n = 0;
        for (long start = 0; start < Count; start += chunkRows)
        {
            long count = Math.Min(chunkRows, Count - start);
            var idx = Enumerable.Range(0, (int)count).Select(i => start + i).ToArray();
            using var chunkScope = NewDisposeScope();
            var flat = ReadTokens(idx).reshape(-1, Channels).to(ScalarType.Float64);
            long nb = flat.shape[0];
            var meanB = flat.mean([0]);
            var m2B = (flat - meanB).pow(2).sum([0]);
            if (mean is null)
            {
                mean = meanB.MoveToOuterDisposeScope();
                m2 = m2B.MoveToOuterDisposeScope();
            }
            else
            {
                var delta = meanB - mean;
                long total = n + nb;
                var newMean = mean + delta * ((double)nb / total);
                var newM2 = m2! + m2B + delta.pow(2) * ((double)n * nb / total);
                mean.Dispose(); m2!.Dispose();
                mean = newMean.MoveToOuterDisposeScope();
                m2 = newM2.MoveToOuterDisposeScope();
            }
            n += nb;
        }
        var std = n > 1 ? (m2! / (n - 1)).sqrt() : ones_like(mean!);
        return new FeatureNormalizer(mean!.to(ScalarType.Float32), std.to(ScalarType.Float32));
    }

    static string Fingerprint(Tensor features, long[] labels, int numClasses)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{features.dtype}|{string.Join(",", features.shape)}|{HashLabels(labels, numClasses)}\n"));
        long n = features.shape[0];
        int rows = (int)Math.Min(64, n);
        for (int i = 0; i < rows; i++)
        {
            long row = rows == 1 ? 0 : i * (n - 1) / (rows - 1);
            using var r = features[row].contiguous();
            sha.AppendData(r.bytes);
        }
        return "memory:" + Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    static string HashLabels(long[] labels, int numClasses)
    {
        var bytes = new byte[labels.Length * sizeof(long)];
        Buffer.BlockCopy(labels, 0, bytes, 0, bytes.Length);
        return $"{numClasses}:{Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant()}";
    }
}
