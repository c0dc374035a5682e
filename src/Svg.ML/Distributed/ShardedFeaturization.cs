using Svg.ML.Data;
using static TorchSharp.torch;

namespace Svg.ML.Distributed;

/// <summary>
/// Featurization into a <see cref="FeatureCache"/> shared by N ranks (a folder every rank sees): the chunks of the
/// one-process computation are split into N contiguous runs (<see cref="DataSharding.Shard"/> over chunk indices), rank
/// r computes its run into a part entry, rank 0 concatenates the parts in order into the entry of the key and removes
/// them. Each chunk holds the same rows as in one process, so the entry equals the one a single process writes (the
/// same bytes when the encoder gives the same numbers on every rank — same device kind and thread count).
/// A failure on any rank is reported on every rank (no rank waits forever).
/// </summary>
public static class ShardedFeaturization
{
    /// <summary>
    /// <see cref="FeatureCache.GetOrCompute(FeatureCacheKey, long, int, Func{long, long, Tensor})"/> with the work
    /// split over the ranks of <paramref name="group"/>; every rank calls it with the same arguments and gets the entry.
    /// </summary>
    public static CachedFeatures GetOrCompute(FeatureCache cache, FeatureCacheKey key, long count, int chunkSize,
                                              Func<long, long, Tensor> computeChunk, ProcessGroup group, Action<string>? log = null)
    {
        if (group.WorldSize == 1) return cache.GetOrCompute(key, count, chunkSize, computeChunk);
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize));
        if (!group.Any(cache.TryOpen(key) is null)) return cache.TryOpen(key)!;

        var parts = Enumerable.Range(0, group.WorldSize).Select(r =>
        {
            var (start, n) = RankRows(count, chunkSize, r, group.WorldSize);
            return (Start: start, Count: n, Key: key with { Preprocessing = $"{key.Preprocessing} | part {r} of {group.WorldSize}, rows [{start}, {start + n})" });
        }).ToArray();

        var mine = parts[group.Rank];
        if (group.IsWriter) log?.Invoke($"Featurizing {count} items on {group.WorldSize} ranks ({mine.Count} on this one)…");
        Exception? failure = null;
        try
        {
            if (mine.Count > 0)
                cache.GetOrCompute(mine.Key, mine.Count, chunkSize, (s, n) => computeChunk(mine.Start + s, n));
        }
        catch (Exception e) { failure = e; }
        Agree(group, failure, "featurizing its part");

        if (group.IsWriter)
        {
            try
            {
                var opened = parts.Where(p => p.Count > 0)
                                  .Select(p => (p.Start, Entry: cache.TryOpen(p.Key) ?? throw new IOException($"part entry of rows from {p.Start} is missing in {cache.Directory} (is the folder shared by all ranks?)")))
                                  .ToArray();
                cache.GetOrCompute(key, count, chunkSize, (s, n) =>
                {
                    var (start, entry) = opened.Last(p => p.Start <= s);   // chunks never straddle parts
                    return entry.Read(s - start, n);
                });
                foreach (var p in parts) cache.Remove(p.Key);
            }
            catch (Exception e) { failure = e; }
        }
        Agree(group, failure, "merging the parts");
        return cache.TryOpen(key) ?? throw new IOException($"The feature cache entry {key.Hash} is not readable on rank {group.Rank} (is {cache.Directory} shared by all ranks?).");
    }

    /// <summary>
    /// The rows rank <paramref name="rank"/> encodes: its contiguous run of the <paramref name="chunkSize"/>-row chunks
    /// (<see cref="DataSharding.Shard"/> over chunk indices; the last chunk may be short; a rank may get none: [count, count)).
    /// </summary>
    public static (long Start, long Count) RankRows(long count, int chunkSize, int rank, int worldSize)
    {
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize));
        var (first, n) = DataSharding.Shard((count + chunkSize - 1) / chunkSize, rank, worldSize);
        long start = Math.Min(count, first * chunkSize), end = Math.Min(count, (first + n) * chunkSize);
        return (start, end - start);
    }

    /// <summary>Throws on every rank when any rank failed (its own exception where it failed).</summary>
    static void Agree(ProcessGroup group, Exception? failure, string what)
    {
        if (!group.Any(failure is not null)) return;
        if (failure is not null) throw new InvalidOperationException($"Rank {group.Rank} failed {what}: {failure.Message}", failure);
        throw new InvalidOperationException($"Another rank failed {what}; see its error.");
    }
}
