using System.Security.Cryptography;
using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.Data;
using Svg.ML.Distributed;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>
/// Images featurized once into the on-disk feature cache, for the estimators that train on <see cref="SvgFeaturizerTransformer"/>'s
/// feature map (<see cref="SvgDiffusionTrainer"/>, the dense heads): the key names the featurizer's weights and settings
/// and every image's pixels, so a second Fit on the same images reads the cache instead of running the encoder, and
/// several ranks of a <see cref="ProcessGroup"/> each encode a share.
/// </summary>
internal static class FeaturizedImages
{
    /// <summary>
    /// The cache entry of <paramref name="count"/> rows of <paramref name="featureCol"/> (column of <paramref name="view"/>,
    /// the featurizer's output over <paramref name="input"/>), computed chunk by chunk in row order when absent.
    /// <paramref name="labelName"/>, when given, is a key-typed column of <paramref name="input"/> hashed into the key too.
    /// </summary>
    public static CachedFeatures GetOrCompute(IDataView input, SvgFeaturizerTransformer featurizer, IDataView view,
        DataViewSchema.Column featureCol, int[] dims, long count, string cacheDirectory, ProcessGroup group, Action<string> log,
        string? labelName = null)
    {
        var key = CacheKey(input, featurizer, labelName);
        return ShardedFeaturization.GetOrCompute(new FeatureCache(cacheDirectory), key, count, Math.Max(1, featurizer.BatchSize),
                                                 ChunkReader(view, featureCol, dims, count), group, log);
    }

    /// <summary>Sequential chunks of the feature column for the feature cache (which asks for them in order).</summary>
    static Func<long, long, Tensor> ChunkReader(IDataView view, DataViewSchema.Column featureCol, int[] dims, long total)
    {
        DataViewRowCursor? cursor = null;
        ValueGetter<VBuffer<float>>? getter = null;
        long next = 0;
        int size = dims[0] * dims[1] * dims[2];
        return (start, count) =>
        {
            if (start < next) throw new InvalidOperationException("feature chunks must be read in order");
            cursor ??= view.GetRowCursor(new[] { featureCol });
            getter ??= cursor.GetGetter<VBuffer<float>>(featureCol);
            for (; next < start; next++)   // rows of other ranks' shares (sharded featurization): moved over, not read
                if (!cursor.MoveNext()) throw new InvalidOperationException("the data has fewer rows than counted");
            var data = new float[count * size];
            VBuffer<float> v = default;
            for (long i = 0; i < count; i++)
            {
                if (!cursor.MoveNext()) throw new InvalidOperationException("the data has fewer rows than counted");
                getter(ref v);
                if (v.Length != size) throw new SvgDataException(featureCol.Name, cursor.Position, $"the vector has {v.Length} values, expected {size}.");
                v.CopyTo(data.AsSpan((int)(i * size), size));
            }
            next = start + count;
            if (next >= total) cursor.Dispose();
            return tensor(data).reshape(count, dims[0], dims[1], dims[2]);
        };
    }

    /// <summary>
    /// The cache key of the featurized images: the featurizer's weights and settings, and a SHA-256 over every image's
    /// size and pixels (and label, when given), in one decoding pass with no encoder forward.
    /// </summary>
    static FeatureCacheKey CacheKey(IDataView input, SvgFeaturizerTransformer featurizer, string? labelName)
    {
        var imageCol = input.Schema[featurizer.InputColumnName];
        var labelCol = labelName is null ? (DataViewSchema.Column?)null : input.Schema[labelName];
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long count = 0;
        using (var cursor = input.GetRowCursor(labelCol is { } l ? new[] { imageCol, l } : new[] { imageCol }))
        {
            var getImage = cursor.GetGetter<MLImage>(imageCol);
            var getLabel = labelCol is { } lc ? cursor.GetGetter<uint>(lc) : null;
            MLImage? image = null;
            var header = new byte[16];
            while (cursor.MoveNext())
            {
                uint label = 0;
                getLabel?.Invoke(ref label);
                try { getImage(ref image!); }
                catch (Exception e) when (e is not OperationCanceledException) { image = null; sha.AppendData(System.Text.Encoding.UTF8.GetBytes(e.GetType().Name)); }
                BitConverter.TryWriteBytes(header.AsSpan(0), image?.Width ?? -1);
                BitConverter.TryWriteBytes(header.AsSpan(4), image?.Height ?? -1);
                BitConverter.TryWriteBytes(header.AsSpan(8), image is null ? -1 : (int)image.PixelFormat);
                BitConverter.TryWriteBytes(header.AsSpan(12), label);
                sha.AppendData(header);
                if (image is not null) sha.AppendData(image.Pixels);
                count++;
            }
        }
        string identity = $"images:{count}:" + Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
        return new FeatureCacheKey("SvgFeaturizer", featurizer.WeightsFingerprint(), featurizer.SettingsDescription(),
                                   featurizer.ImageSize, identity, "SvgFeaturizer feature map");
    }
}
